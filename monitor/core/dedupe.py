"""A bounded set of recently seen event keys."""

from __future__ import annotations


class Dedupe:
    """Keys of counted events, with their event time.

    Bounded twice: by `capacity`, in two generations (keys go into the young dict; when it
    holds half the capacity it becomes the old one and the previous old half is dropped at
    once: O(1) per add, where evicting the oldest key one at a time from a single dict costs
    a scan over the holes earlier deletions left); and by time (`prune` drops keys whose
    events are older than the dedupe horizon, since such a redelivery is late anyway). The
    store persists the same keys so a restart keeps them.
    """

    __slots__ = ("_half", "_old", "_young", "capacity")

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._half = max(1, capacity // 2)  # a generation's size
        self._young: dict[bytes, float] = {}
        self._old: dict[bytes, float] = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def __contains__(self, key: bytes) -> bool:
        return key in self._young or key in self._old

    def add(self, key: bytes, t: float) -> None:
        young = self._young
        young[key] = t
        if len(young) >= self._half:
            self._old, self._young = young, {}

    def prune(self, before: float) -> int:
        dropped = 0
        for gen in (self._young, self._old):
            stale = [k for k, t in gen.items() if t < before]
            for k in stale:
                del gen[k]
            dropped += len(stale)
        return dropped
