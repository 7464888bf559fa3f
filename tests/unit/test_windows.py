from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.events import Channel, Outcome
from monitor.core.rules import Rate
from monitor.core.windows import (
    BUCKETS,
    E_BOUNCE,
    E_SENT,
    OUTCOME_SLOTS,
    SLOTS,
    Snapshot,
    Window,
    clamp_time,
)

DAY = 86400.0
T0 = 1_750_000_000.0


def add(w: Window, t: float, outcome: Outcome, n: int = 1, now: float | None = None) -> bool:
    now = t if now is None else now
    if not w.accepts(t, now):
        return False
    w.add(t, OUTCOME_SLOTS[outcome], n)
    return True


def test_rates_from_sends() -> None:
    w = Window(DAY)
    add(w, T0, Outcome.SEND, 1000)
    add(w, T0 + 1, Outcome.BOUNCE_PERMANENT, 30)
    add(w, T0 + 2, Outcome.BOUNCE_TRANSIENT, 50)
    add(w, T0 + 3, Outcome.COMPLAINT, 2)
    snap = w.snapshot(T0 + 10)
    assert snap.email_sent == 1000
    assert snap.rate(Rate.EMAIL_BOUNCE) == pytest.approx(0.03)
    assert snap.rate(Rate.EMAIL_COMPLAINT) == pytest.approx(0.002)


def test_no_send_stream_falls_back_to_delivery_plus_bounces() -> None:
    w = Window(DAY)
    add(w, T0, Outcome.DELIVERY, 90)
    add(w, T0, Outcome.BOUNCE_PERMANENT, 6)
    add(w, T0, Outcome.BOUNCE_TRANSIENT, 4)
    snap = w.snapshot(T0)
    assert snap.email_sent == 100
    assert snap.rate(Rate.EMAIL_BOUNCE) == pytest.approx(0.06)


def test_suppressed_bounces_and_sender_blocked_sms_count_nowhere() -> None:
    assert Outcome.BOUNCE_SUPPRESSED not in OUTCOME_SLOTS
    assert Outcome.SMS_SENDER_BLOCKED not in OUTCOME_SLOTS


def test_sms_rates_on_final_statuses() -> None:
    w = Window(DAY)
    add(w, T0, Outcome.SMS_DELIVERED, 80)
    add(w, T0, Outcome.SMS_FAILED, 20)
    add(w, T0, Outcome.SMS_OPT_OUT, 3)
    snap = w.snapshot(T0)
    assert snap.volume(Channel.SMS) == 100
    assert snap.rate(Rate.SMS_FAILURE) == pytest.approx(0.2)
    assert snap.rate(Rate.SMS_OPT_OUT) == pytest.approx(0.03)


def test_empty_window_rates_are_zero() -> None:
    snap = Window(DAY).snapshot(T0)
    assert all(snap.rate(r) == 0.0 for r in Rate)


def test_bucket_rollover_evicts_whole_buckets() -> None:
    w = Window(DAY)
    add(w, T0, Outcome.SEND, 100)
    add(w, T0 + DAY / 2, Outcome.SEND, 10)
    width = DAY / BUCKETS
    # Still inside: the first bucket overlaps (now - window, now] until it ends.
    assert w.snapshot(T0 + DAY - 1).email_sent == 110
    # Once the first event's whole bucket lies before now - window it is gone.
    assert w.snapshot(T0 + DAY + width).email_sent == 10
    assert w.snapshot(T0 + 2 * DAY + width).email_sent == 0
    assert not w.buckets


def test_late_events_are_refused() -> None:
    w = Window(3600)
    assert not add(w, T0 - 3601, Outcome.SEND, now=T0)
    assert add(w, T0 - 3599, Outcome.SEND, now=T0)


def test_floor_refuses_evidence_before_resume() -> None:
    w = Window(DAY)
    add(w, T0, Outcome.SEND, 5)
    w.reset(T0 + 100)
    assert w.snapshot(T0 + 100).email_sent == 0
    assert not add(w, T0 + 50, Outcome.SEND, now=T0 + 200)
    assert add(w, T0 + 150, Outcome.SEND, now=T0 + 200)


def test_future_events_are_taken_as_now() -> None:
    assert clamp_time(T0 + 301, T0) == T0
    assert clamp_time(T0 + 299, T0) == T0 + 299


def test_complaint_rate_is_capped_at_one() -> None:
    snap = Snapshot((1, 0, 0, 0, 5, 0, 0, 0))
    assert snap.rate(Rate.EMAIL_COMPLAINT) == 1.0


def test_restore_rebuckets_to_a_new_width() -> None:
    w = Window(3600)
    w.restore(T0, [10, 0, 1, 0, 0, 0, 0, 0])
    assert w.snapshot(T0).counts[E_SENT] == 10
    assert w.snapshot(T0).counts[E_BOUNCE] == 1


events = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3 * DAY),
        st.sampled_from(list(OUTCOME_SLOTS)),
        st.integers(min_value=1, max_value=50),
    ),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(events=events, later=st.floats(min_value=0, max_value=3 * DAY))
def test_totals_equal_the_sum_of_held_buckets(
    events: list[tuple[float, Outcome, int]], later: float
) -> None:
    """Whatever the order of adds and evictions: totals == sum of buckets, never negative,
    no bucket older than the window is held, rates stay within [0, 1]."""
    w = Window(DAY)
    now = 0.0
    for t, outcome, n in sorted(events, key=lambda e: e[0]):
        now = max(now, t)
        add(w, t, outcome, n, now=now)
        w.evict(now)
    now += later
    snap = w.snapshot(now)
    sums = [sum(b[s] for b in w.buckets.values()) for s in range(len(w.totals))]
    assert list(snap.counts) == sums
    assert all(v >= 0 for v in snap.counts)
    assert all((i + 1) * w.width > now - DAY for i in w.buckets)
    assert all(0.0 <= snap.rate(r) <= 1.0 for r in Rate)


@settings(max_examples=200, deadline=None)
@given(events=events)
def test_counts_only_what_is_inside_the_window(events: list[tuple[float, Outcome, int]]) -> None:
    """Every accepted event younger than the window (minus one bucket) is counted."""
    w = Window(DAY)
    now = 3 * DAY
    expected = 0
    for t, outcome, n in events:
        if add(w, t, outcome, n, now=now) and outcome is Outcome.SEND:
            expected += n
    assert w.snapshot(now).counts[E_SENT] == expected


@settings(max_examples=200)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.floats(0, 2 * DAY), st.sampled_from(list(OUTCOME_SLOTS)), st.integers(1, 5)
            ),
            max_size=12,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_take_dirty_returns_exactly_the_changed_held_buckets(
    rounds: list[list[tuple[float, Outcome, int]]],
) -> None:
    """Each commit gets every bucket changed since the last one and still held, oldest first,
    with its current counters (events arrive out of order, and old buckets roll out)."""
    w = Window(DAY)
    now = T0
    for events in rounds:
        changed: set[float] = set()
        for dt, outcome, n in events:
            t = T0 + dt
            now = max(now, t)
            w.evict(now)
            if add(w, t, outcome, n, now=now):
                changed.add(w.bucket_start(int(t // w.width)))
        w.evict(now)
        c, stride = w.counts, SLOTS + 1  # totals, then (index, counters) per bucket
        held = {c[i] * w.width: tuple(c[i + 1 : i + stride]) for i in range(SLOTS, len(c), stride)}
        got = w.take_dirty()
        assert [start for start, _ in got] == sorted(changed & held.keys())
        assert all(counts == held[start] for start, counts in got)
        assert w.take_dirty() == []
