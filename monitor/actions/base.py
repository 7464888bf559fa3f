"""What an action is: one way to carry out a pause, resume or warning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from monitor.core.events import Channel
from monitor.core.state import Kind


@dataclass(frozen=True, slots=True)
class ActionRequest:
    audit_id: int
    tenant: str
    channel: Channel
    kind: Kind
    reason: str
    entry: dict[str, Any]  # the audit entry, for notifications that carry the evidence
    # Run again at start from the outbox: the previous run may have been killed after AWS
    # applied the call but before the result was recorded, so check before acting.
    rerun: bool = False

    @property
    def pausing(self) -> bool:
        return self.kind is Kind.PAUSE


class Action(Protocol):
    name: str

    async def __call__(self, req: ActionRequest) -> str:
        """Carry out `req`; returns a short detail for the audit log. Raises AwsError (or
        ActionFailed) on failure; transient ones are retried by the actuator."""
        ...


class ActionFailed(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient
