"""Tenant states and the decisions that move them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from monitor.core.events import Channel


class Status(StrEnum):
    HEALTHY = "healthy"
    WARNING = "warning"
    PAUSED = "paused"
    PROBATION = "probation"


# A tenant shows its worst channel.
SEVERITY = {Status.HEALTHY: 0, Status.PROBATION: 1, Status.WARNING: 2, Status.PAUSED: 3}


class Kind(StrEnum):
    """The `decision` field of an audit entry."""

    WARN = "warn"  # healthy/probation → warning
    CLEAR = "clear"  # warning → healthy (every rate below resume_below × warn)
    PAUSE = "pause"  # → paused
    WOULD_PAUSE = "would_pause"  # a pause threshold crossed under a policy without actions
    RESUME = "resume"  # paused → probation (admin, auto_resume, or SES reinstated the tenant)
    RECOVER = "recover"  # probation → healthy (min_volume again, below every warn threshold)
    SES_FINDING = "ses_finding"  # SES reported a reputation finding (no state change)


class Actor(StrEnum):
    POLICY = "policy"
    ADMIN = "admin"
    SES = "ses"


@dataclass(slots=True)
class ChannelState:
    status: Status = Status.HEALTHY
    since: float = 0.0
    manual: bool = False  # paused by an admin: only an admin resumes
    paused_by: str = ""  # actor of the pause in force
    would_pause: bool = False  # latched while a no-action policy is over a pause threshold
    floor: float = 0.0  # events before this (the last resume) no longer count

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "since": self.since,
            "manual": self.manual,
            "paused_by": self.paused_by,
            "would_pause": self.would_pause,
            "floor": self.floor,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChannelState:
        return cls(
            status=Status(d["status"]),
            since=float(d["since"]),
            manual=bool(d.get("manual", False)),
            paused_by=str(d.get("paused_by", "")),
            would_pause=bool(d.get("would_pause", False)),
            floor=float(d.get("floor", 0.0)),
        )


_EMAIL = Channel.EMAIL  # for the per-event path: an Enum class attribute is a slow lookup


class TenantState:
    """A tenant's channel states (created as a channel is first evaluated) and when its
    state last changed.

    Why two slots and not a dict of channels: an empty-ish dict costs ~220 bytes per tenant,
    ~65 MB at 300,000 tenants (bench/memory.py). `channels` gives the same mapping, built on
    read; it is read-only (set a channel with `channel()`).
    """

    __slots__ = ("email", "sms", "tenant", "updated_at")

    def __init__(
        self,
        tenant: str,
        channels: Mapping[Channel, ChannelState] | None = None,
        updated_at: float = 0.0,
    ) -> None:
        self.tenant = tenant
        self.email: ChannelState | None = None
        self.sms: ChannelState | None = None
        self.updated_at = updated_at
        for c, cs in (channels or {}).items():
            if Channel(c) is _EMAIL:
                self.email = cs
            else:
                self.sms = cs

    def get(self, channel: Channel) -> ChannelState | None:
        return self.email if channel is _EMAIL else self.sms

    def channel(self, channel: Channel) -> ChannelState:
        cs = self.email if channel is _EMAIL else self.sms
        if cs is None:
            cs = ChannelState(since=self.updated_at)
            if channel is _EMAIL:
                self.email = cs
            else:
                self.sms = cs
        return cs

    @property
    def channels(self) -> Mapping[Channel, ChannelState]:
        """The channels that have a state, email first."""
        out: dict[Channel, ChannelState] = {}
        if self.email is not None:
            out[Channel.EMAIL] = self.email
        if self.sms is not None:
            out[Channel.SMS] = self.sms
        return out

    @property
    def status(self) -> Status:
        worst = Status.HEALTHY
        for cs in (self.email, self.sms):
            if cs is not None and SEVERITY[cs.status] > SEVERITY[worst]:
                worst = cs.status
        return worst

    @property
    def paused_channels(self) -> list[str]:
        return sorted(c.value for c, cs in self.channels.items() if cs.status is Status.PAUSED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": {c.value: cs.to_dict() for c, cs in self.channels.items()},
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, tenant: str, d: dict[str, Any]) -> TenantState:
        return cls(
            tenant=tenant,
            channels={Channel(c): ChannelState.from_dict(v) for c, v in d["channels"].items()},
            updated_at=float(d.get("updated_at", 0.0)),
        )

    # What the dataclass this was gave: equality and repr by (tenant, channels, updated_at).
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TenantState):
            return NotImplemented
        return (self.tenant, self.email, self.sms, self.updated_at) == (
            other.tenant,
            other.email,
            other.sms,
            other.updated_at,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"TenantState(tenant={self.tenant!r}, channels={dict(self.channels)!r}, "
            f"updated_at={self.updated_at!r})"
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    policy: str
    window: str
    counts: dict[str, int]
    rates: dict[str, float]
    thresholds: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "window": self.window,
            "counts": self.counts,
            "rates": self.rates,
            "thresholds": self.thresholds,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy (or an admin, or SES) decided; actuators carry out `actions`."""

    time: float
    tenant: str
    channel: Channel
    kind: Kind
    actor: str
    reason: str
    evidence: Evidence | None = None
    actions: tuple[str, ...] = ()  # to run: names from the policy's `actions`
    # For the decision latency metric: when the event that caused it was received.
    received_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "tenant": self.tenant,
            "channel": self.channel.value,
            "decision": self.kind.value,
            "actor": self.actor,
            "reason": self.reason,
            "evidence": self.evidence.to_dict() if self.evidence else None,
        }
