from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.dedupe import Dedupe


def test_remembers_recent_keys_and_forgets_by_time() -> None:
    d = Dedupe(100)
    d.add(b"a", 10.0)
    d.add(b"b", 20.0)
    assert b"a" in d and b"b" in d and b"c" not in d
    assert d.prune(15.0) == 1
    assert b"a" not in d and b"b" in d


@settings(max_examples=100, deadline=None)
@given(capacity=st.integers(2, 200), n=st.integers(0, 2000))
def test_bounded_and_the_newest_half_is_always_kept(capacity: int, n: int) -> None:
    d = Dedupe(capacity)
    for i in range(n):
        d.add(i.to_bytes(4, "big"), float(i))
        assert len(d) <= capacity
    newest = range(max(0, n - capacity // 2), n)
    assert all(i.to_bytes(4, "big") in d for i in newest)
