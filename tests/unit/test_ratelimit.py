"""The token bucket on a fake clock: no wall time."""

from __future__ import annotations

import asyncio

import pytest

from conftest import FakeTime
from monitor.ratelimit import TokenBucket


def test_a_burst_is_free_then_tokens_come_at_the_rate() -> None:
    t = FakeTime(100.0)
    bucket = TokenBucket(2.0, 2, clock=t.clock, sleep=t.sleep)
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]


def test_idle_time_refills_up_to_the_burst_only() -> None:
    t = FakeTime(100.0)
    bucket = TokenBucket(1.0, 3, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        bucket.reserve()
    t.now += 3600  # an hour idle saves 3 tokens, not 3600
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


async def test_acquire_paces_calls_at_the_rate() -> None:
    t = FakeTime(100.0)
    bucket = TokenBucket(1.0, 1, clock=t.clock, sleep=t.sleep)
    times = []
    for _ in range(4):
        await bucket.acquire()
        times.append(t.now)
    assert times == [100.0, 101.0, 102.0, 103.0]
    assert t.slept == [1.0, 1.0, 1.0]


async def test_concurrent_callers_queue_in_arrival_order() -> None:
    t = FakeTime(100.0)
    waits: list[float] = []

    async def record(seconds: float) -> None:  # the clock stands still: all arrive at once
        waits.append(seconds)

    bucket = TokenBucket(1.0, 1, clock=t.clock, sleep=record)
    await asyncio.gather(*(bucket.acquire() for _ in range(4)))
    assert waits == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate_per_s > 0 and burst >= 1"):
        TokenBucket(rate, burst)
