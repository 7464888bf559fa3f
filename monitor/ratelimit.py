"""A small async token bucket: paces calls to AWS APIs with low per-account limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """`rate_per_s` tokens a second, at most `burst` saved up.

    A caller takes its token at once and sleeps off any debt, so concurrent callers queue in
    arrival order with no lock and no polling. A caller cancelled while sleeping keeps its
    token spent: the bucket errs towards calling less often, never more.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate_per_s > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.sleep = sleep
        self._tokens = float(burst)
        self._last = clock()

    def reserve(self) -> float:
        """Take a token; returns how long to wait before using it (0 if one was saved up)."""
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate_per_s)
        self._last = now
        self._tokens -= 1.0
        return max(0.0, -self._tokens / self.rate_per_s)

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self.sleep(delay)
