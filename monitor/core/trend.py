"""Early warning: where a rate is heading, and what is behind it."""

from __future__ import annotations

from collections import deque

SAMPLES = 60  # points kept per rate
MIN_SPACING_S = 10.0  # one point per 10 s: a burst of batches must not weigh more than time
MIN_SPAN_S = 60.0  # no projection from less than a minute of history


class Trend:
    """A least-squares line through recent (time, rate) samples."""

    __slots__ = ("points",)

    def __init__(self) -> None:
        self.points: deque[tuple[float, float]] = deque(maxlen=SAMPLES)

    def add(self, t: float, value: float) -> None:
        if self.points and t - self.points[-1][0] < MIN_SPACING_S:
            self.points[-1] = (self.points[-1][0], value)  # keep the newest value
            return
        self.points.append((t, value))

    def slope(self) -> float | None:
        """Rate change per second, or None without enough history."""
        pts = self.points
        if len(pts) < 3 or pts[-1][0] - pts[0][0] < MIN_SPAN_S:
            return None
        n = len(pts)
        mt = sum(t for t, _ in pts) / n
        mv = sum(v for _, v in pts) / n
        var = sum((t - mt) ** 2 for t, _ in pts)
        if var == 0:
            return None
        return sum((t - mt) * (v - mv) for t, v in pts) / var

    def eta(self, target: float) -> float | None:
        """Seconds from the newest sample until the line reaches `target`; None if it is
        not rising (or already there: 0)."""
        if not self.points:
            return None
        current = self.points[-1][1]
        if current >= target:
            return 0.0
        slope = self.slope()
        if slope is None or slope <= 0:
            return None
        return (target - current) / slope


class DomainCounts:
    """Recipient domains behind a tenant's bounces or complaints (never addresses), bounded:
    past `limit` distinct domains the rarest is dropped, so a dictionary attack on random
    domains cannot grow it."""

    __slots__ = ("counts", "limit")

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}

    def add(self, domains: tuple[str, ...], weight: int = 1) -> None:
        counts = self.counts
        for d in domains:
            counts[d] = counts.get(d, 0) + weight
        if len(counts) > self.limit:
            for d, _ in sorted(counts.items(), key=lambda kv: kv[1])[: len(counts) - self.limit]:
                del counts[d]

    def top(self, n: int = 5) -> list[dict[str, object]]:
        total = sum(self.counts.values())
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [
            {"domain": d, "count": c, "share": round(c / total, 4) if total else 0.0}
            for d, c in ranked
        ]
