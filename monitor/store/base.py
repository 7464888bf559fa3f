"""The state store interface: windows, tenant states, dedupe keys and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.core.engine import Changes
from monitor.core.state import TenantState


@dataclass(slots=True)
class Loaded:
    """Everything a store holds, for Engine.restore at start."""

    states: list[tuple[str, TenantState]] = field(default_factory=list)
    buckets: list[tuple[str, str, float, Sequence[int]]] = field(default_factory=list)
    keys: list[tuple[bytes, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PendingAction:
    """An outbox entry: a committed decision whose actions have not all run yet."""

    audit_id: int
    entry: dict[str, Any]  # the audit entry (decision fields)
    actions: tuple[str, ...]


class StoreError(Exception):
    """The store could not commit: the in-memory state is ahead of it, so the daemon stops."""


class Store(Protocol):
    async def load(self, *, since: float, keys_since: float, max_keys: int) -> Loaded:
        """Buckets from `since` on, dedupe keys from `keys_since` on."""
        ...

    async def commit(self, changes: Changes) -> list[int]:
        """Persist one batch atomically; returns the audit ids of `changes.decisions`."""
        ...

    async def record_actions(
        self, audit_id: int, results: list[dict[str, str]], *, done: bool
    ) -> None: ...

    async def pending_actions(self) -> list[PendingAction]: ...

    async def audit(
        self, *, tenant: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]: ...

    async def prune(self, *, before: float, keys_before: float) -> None: ...

    async def close(self) -> None: ...
