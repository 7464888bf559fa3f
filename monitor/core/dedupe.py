"""A bounded set of recently seen event keys."""

from __future__ import annotations


class Dedupe:
    """Keys of counted events, with their event time.

    Bounded twice: by `capacity` (the oldest-inserted key goes first) and by time (`prune`
    drops keys whose events are older than every window, since such a redelivery is late and
    dropped anyway). The store persists the same keys so a restart keeps them.
    """

    __slots__ = ("_keys", "capacity")

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._keys: dict[bytes, float] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: bytes) -> bool:
        return key in self._keys

    def add(self, key: bytes, t: float) -> None:
        keys = self._keys
        keys[key] = t
        if len(keys) > self.capacity:
            del keys[next(iter(keys))]

    def prune(self, before: float) -> int:
        stale = [k for k, t in self._keys.items() if t < before]
        for k in stale:
            del self._keys[k]
        return len(stale)
