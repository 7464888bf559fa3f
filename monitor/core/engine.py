"""The pipeline's state: dedupe → resolve → window → evaluate, for batches of events.

The engine is pure and single-threaded: callers hand it events and `now`, and collect the
decisions and the changes to persist. It never commits, logs or acts; the app does, in the
order that keeps the store the source of truth (see monitor/app.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from monitor.core.dedupe import Dedupe
from monitor.core.events import Channel, Event, Outcome, TenantStatusEvent, TenantStatusKind
from monitor.core.policy import actions_for, auto_resume_due, evaluate, evidence
from monitor.core.rules import Policy, Rate, Rules
from monitor.core.state import Actor, ChannelState, Decision, Kind, Status, TenantState
from monitor.core.tenants import UNASSIGNED, TenantResolver
from monitor.core.trend import DomainCounts, Trend
from monitor.core.windows import (
    FUTURE_TOLERANCE_S,
    OUTCOME_SLOTS,
    Quiet,
    Snapshot,
    Window,
    clamp_time,
)

SMS_RECEIPT_GRACE_S = 72 * 3600.0
DOMAIN_OUTCOMES = frozenset({Outcome.BOUNCE_PERMANENT, Outcome.COMPLAINT})


class MessageResult(StrEnum):
    """The `result` label of `repmon_messages_total`."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    UNDECODABLE = "undecodable"
    LATE = "late"


# Enum members as plain module constants for the per-record path: in 3.11 `Status.HEALTHY`
# is a ~0.1 µs lookup each time, a module global a fraction of that.
_PROCESSED, _DUPLICATE, _LATE = MessageResult.PROCESSED, MessageResult.DUPLICATE, MessageResult.LATE
_HEALTHY, _PAUSED = Status.HEALTHY, Status.PAUSED
_EMAIL, _SMS = Channel.EMAIL, Channel.SMS
_POLICY = Actor.POLICY.value


@dataclass(slots=True)
class TenantRecord:
    tenant: str
    policy: Policy
    state: TenantState
    # One slot per channel, not a dict: a dict per tenant is ~220 bytes (bench/memory.py).
    email_window: Window | None = None
    sms_window: Window | None = None
    last_seen: float = 0.0  # processing time of its latest event, for capacity eviction
    trends: dict[Rate, Trend] | None = None  # while a channel is in warning: for the ETA
    domains: dict[Outcome, DomainCounts] | None = None  # behind bounces and complaints

    def count_domains(self, outcome: Outcome, domains: tuple[str, ...], weight: int) -> None:
        if self.domains is None:
            self.domains = {}
        dc = self.domains.get(outcome)
        if dc is None:
            dc = self.domains[outcome] = DomainCounts()
        dc.add(domains, weight)

    def pause_eta(self, now: float) -> dict[Rate, float]:
        """Seconds until each warning rate reaches its pause threshold at its current trend."""
        out: dict[Rate, float] = {}
        for rate, trend in (self.trends or {}).items():
            threshold = self.policy.thresholds.get(rate)
            eta = trend.eta(threshold.pause) if threshold else None
            if eta is not None and trend.points:
                out[rate] = max(0.0, eta - (now - trend.points[-1][0]))
        return out

    @property
    def windows(self) -> Mapping[Channel, Window]:
        """The channels that have a window, email first (built on read: read-only)."""
        out: dict[Channel, Window] = {}
        if self.email_window is not None:
            out[Channel.EMAIL] = self.email_window
        if self.sms_window is not None:
            out[Channel.SMS] = self.sms_window
        return out

    def empty(self, now: float) -> bool:
        windows = self.windows.values()
        for w in windows:
            w.evict(now)
        return not any(any(w.totals) for w in windows)

    def evictable(self) -> bool:
        """Healthy with nothing latched: forgetting it loses no state, only (at capacity)
        its counts. Paused, warning and probation tenants are never evicted."""
        return self.state.status is Status.HEALTHY and not any(
            cs.would_pause or cs.manual for cs in self.state.channels.values()
        )

    def window(self, channel: Channel) -> Window:
        email = channel is _EMAIL
        w = self.email_window if email else self.sms_window
        if w is None:
            cs = self.state.get(channel)
            w = Window(self.policy.window_s, cs.floor if cs is not None else 0.0)
            if email:
                self.email_window = w
            else:
                self.sms_window = w
        return w

    def snapshot(self, channel: Channel, now: float) -> Snapshot:
        return self.window(channel).snapshot(now)


@dataclass(slots=True)
class Changes:
    """What a commit must persist, drained from the engine after each batch."""

    buckets: list[tuple[str, str, float, tuple[int, ...]]] = field(default_factory=list)
    resets: list[tuple[str, str]] = field(default_factory=list)  # (tenant, channel): drop buckets
    states: list[tuple[str, TenantState]] = field(default_factory=list)
    keys: list[tuple[bytes, float]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)  # tenants to forget entirely

    def __bool__(self) -> bool:
        return bool(
            self.buckets
            or self.resets
            or self.states
            or self.keys
            or self.decisions
            or self.evicted
        )


class Engine:
    def __init__(
        self, rules: Rules, *, dedupe_capacity: int = 1_000_000, max_tenants: int = 1_000_000
    ) -> None:
        self.rules = rules
        self.max_tenants = max_tenants
        self.evicted: dict[str, int] = {"idle": 0, "capacity": 0}  # for repmon_tenants_evicted
        self.resolver = TenantResolver(rules)
        self.dedupe = Dedupe(dedupe_capacity)
        self.tenants: dict[str, TenantRecord] = {}
        # (tenant, channel, outcome) → events counted, for repmon_events_total.
        self.event_counts: dict[tuple[str, Channel, Outcome], int] = {}
        self._touched: dict[tuple[str, Channel], float] = {}  # → earliest receipt time
        self._dirty_windows: set[tuple[str, Channel]] = set()
        self._dirty_states: set[str] = set()
        self._resets: list[tuple[str, str]] = []
        self._new_keys: list[tuple[bytes, float]] = []
        self._decisions: list[Decision] = []
        self._attention: set[str] = set()  # tenants with a channel not healthy: ticked
        self._evicted: list[str] = []
        # (id(policy), channel) → (policy, its Quiet check); one entry per policy and channel.
        self._quiet_checks: dict[tuple[int, Channel], tuple[Policy, Quiet]] = {}

    # -- tenants ---------------------------------------------------------------------------

    def record(self, tenant: str, now: float = 0.0) -> TenantRecord:
        rec = self.tenants.get(tenant)
        if rec is None:
            if len(self.tenants) >= self.max_tenants:
                self._shed()
            rec = self.tenants[tenant] = TenantRecord(
                tenant, self.rules.policy_for(tenant), TenantState(tenant, updated_at=now)
            )
        return rec

    def learn(self, configuration_sets: Mapping[str, str], identities: Mapping[str, str]) -> None:
        """Adopt what SES reports of its tenants' resources (rules still take precedence)."""
        self.resolver = TenantResolver(
            self.rules,
            learned_configuration_sets=configuration_sets,
            learned_identities=identities,
        )

    # -- ingest ----------------------------------------------------------------------------

    def ingest(
        self, events: Sequence[Event | TenantStatusEvent], now: float, received_at: float
    ) -> MessageResult:
        """Count one message's events; returns the message's result."""
        if not events:
            return _PROCESSED
        accepted = duplicates = 0
        dedupe = self.dedupe
        # The hot path, once per record: locals instead of attribute loads, and the one-line
        # helpers (clamp_time, TenantRecord.window, Window.accepts) written out in place.
        for ev in events:
            if isinstance(ev, TenantStatusEvent):
                if ev.key in dedupe:
                    duplicates += 1
                    continue
                self._ses_status(ev, now)
                dedupe.add(ev.key, clamp_time(ev.time, now))
                self._new_keys.append((ev.key, clamp_time(ev.time, now)))
                accepted += 1
                continue
            key, t, channel, outcome, count, hints, domains = ev  # every field of an Event
            if key in dedupe:
                duplicates += 1
                continue
            if t > now + FUTURE_TOLERANCE_S:  # clamp_time
                t = now
            tenant = self.resolver.resolve(hints)
            rec = self.tenants.get(tenant) or self.record(tenant, now)
            rec.last_seen = now
            win = (rec.email_window if channel is _EMAIL else rec.sms_window) or rec.window(channel)
            at = t
            if not (t > now - win.length and t >= win.floor):  # Window.accepts: late
                # Carriers report SMS receipts up to 72 h late: such a receipt still counts,
                # in the oldest slot of the window (its own has rolled out), unless it
                # predates a resume.
                if channel is not Channel.SMS or t <= now - SMS_RECEIPT_GRACE_S or t < win.floor:
                    continue
                at = now - win.length + win.width
            dedupe.add(key, t)
            self._new_keys.append((key, t))
            if domains and outcome in DOMAIN_OUTCOMES:
                rec.count_domains(outcome, domains, 1)
            slots = OUTCOME_SLOTS.get(outcome)
            if slots:
                win.add(at, slots, count)
                tc = (tenant, channel)
                self._dirty_windows.add(tc)
                touched = self._touched
                prev = touched.get(tc)
                if prev is None or received_at < prev:
                    touched[tc] = received_at
            counts = self.event_counts
            ck = (tenant, channel, outcome)
            counts[ck] = counts.get(ck, 0) + 1
            accepted += 1
        if accepted:
            return _PROCESSED
        return _DUPLICATE if duplicates else _LATE

    # -- decisions -------------------------------------------------------------------------

    def evaluate(self, now: float) -> list[Decision]:
        """Evaluate every tenant channel touched since the last call."""
        out: list[Decision] = []
        touched, self._touched = self._touched, {}
        for (tenant, channel), received_at in touched.items():
            rec = self.tenants.get(tenant)
            if tenant == UNASSIGNED or rec is None:
                continue  # unassigned is counted, never paused; rec None: evicted meanwhile
            d = self._evaluate(rec, channel, now, received_at)
            if d is not None:
                out.append(d)
        return out

    def _evaluate(
        self, rec: TenantRecord, channel: Channel, now: float, received_at: float | None
    ) -> Decision | None:
        cs = rec.state.channel(channel)
        if cs.status is _HEALTHY and not cs.would_pause and rec.trends is None:
            # Nothing can happen to a healthy channel whose totals are quiet (see Quiet): the
            # policy would decide nothing and change nothing, and there is no trend to follow.
            win = (rec.email_window if channel is _EMAIL else rec.sms_window) or rec.window(channel)
            win.evict(now)
            if self._quiet(rec.policy, channel)(win.counts):  # the totals come first
                return None
        snap = rec.snapshot(channel, now)
        before = (cs.status, cs.would_pause)
        d = evaluate(rec.tenant, channel, cs, rec.policy, snap, now, received_at=received_at)
        if d is not None or before != (cs.status, cs.would_pause):
            self._state_changed(rec, now)
        self._follow_trend(rec, channel, cs, snap, now)
        if d is not None:
            self._decisions.append(d)
        return d

    def _quiet(self, policy: Policy, channel: Channel) -> Quiet:
        entry = self._quiet_checks.get((id(policy), channel))
        if entry is None or entry[0] is not policy:
            entry = (policy, Quiet(channel, policy.min_volume, policy.thresholds))
            self._quiet_checks[(id(policy), channel)] = entry
        return entry[1]

    def _follow_trend(
        self, rec: TenantRecord, channel: Channel, cs: ChannelState, snap: Snapshot, now: float
    ) -> None:
        rates = rec.policy.channel_thresholds(channel)
        if cs.status is Status.WARNING:
            trends = rec.trends
            if trends is None:
                trends = rec.trends = {}
            for r in rates:
                trend = trends.get(r)
                if trend is None:
                    trend = trends[r] = Trend()
                trend.add(now, snap.rate(r))
        elif rec.trends:
            for r in rates:
                rec.trends.pop(r, None)
            if not rec.trends:
                rec.trends = None

    def tick(self, now: float) -> list[Decision]:
        """Time-driven transitions: auto-resume, and warnings that clear as windows roll."""
        out: list[Decision] = []
        for tenant in sorted(self._attention):  # sorted: the same order in every process
            rec = self.tenants.get(tenant)
            if rec is None:
                self._attention.discard(tenant)
                continue
            state = rec.state
            # The channel slots as they are now, email first (what `channels` would list).
            for channel, cs in ((_EMAIL, state.email), (_SMS, state.sms)):
                if cs is None:
                    continue
                if cs.status is _PAUSED:
                    if auto_resume_due(cs, rec.policy, now):
                        out.extend(
                            self._resume(rec, [channel], _POLICY, "auto_resume elapsed", now)
                        )
                    continue
                d = self._evaluate(rec, channel, now, None)
                if d is not None:
                    out.append(d)
        return out

    def _state_changed(self, rec: TenantRecord, now: float) -> None:
        rec.state.updated_at = now
        self._dirty_states.add(rec.tenant)
        if rec.state.status is Status.HEALTHY and not any(
            cs.would_pause for cs in rec.state.channels.values()
        ):
            self._attention.discard(rec.tenant)
        else:
            self._attention.add(rec.tenant)

    def _channels(self, rec: TenantRecord, channels: Iterable[Channel] | None) -> list[Channel]:
        return list(channels) if channels else [Channel.EMAIL, Channel.SMS]

    def pause(
        self,
        tenant: str,
        *,
        actor: str,
        reason: str,
        now: float,
        channels: Iterable[Channel] | None = None,
        manual: bool = True,
    ) -> list[Decision]:
        """Pause by hand (or on SES's word); a manual pause holds until a manual resume."""
        rec = self.record(tenant, now)
        out = []
        for channel in self._channels(rec, channels):
            cs = rec.state.channel(channel)
            if cs.status is Status.PAUSED and (cs.manual or not manual):
                continue  # already paused: idempotent, no second audit entry
            already_paused = cs.status is Status.PAUSED
            cs.status, cs.since, cs.manual, cs.paused_by = Status.PAUSED, now, manual, actor
            snap = rec.snapshot(channel, now)
            d = Decision(
                time=now,
                tenant=tenant,
                channel=channel,
                kind=Kind.PAUSE,
                actor=actor,
                reason=reason,
                evidence=evidence(rec.policy, channel, snap),
                # A pause SES made needs no action; one we already made needs none again.
                actions=()
                if actor == Actor.SES.value or already_paused
                else actions_for(rec.policy, Kind.PAUSE, channel),
            )
            out.append(d)
        if out:
            self._state_changed(rec, now)
            self._decisions.extend(out)
        return out

    def resume(
        self,
        tenant: str,
        *,
        actor: str,
        reason: str,
        now: float,
        channels: Iterable[Channel] | None = None,
    ) -> list[Decision]:
        rec = self.record(tenant, now)
        return self._resume(rec, self._channels(rec, channels), actor, reason, now)

    def _resume(
        self, rec: TenantRecord, channels: Iterable[Channel], actor: str, reason: str, now: float
    ) -> list[Decision]:
        out = []
        for channel in channels:
            cs = rec.state.get(channel)
            if cs is None or cs.status is not Status.PAUSED:
                continue
            snap = rec.snapshot(channel, now)
            ev = evidence(rec.policy, channel, snap)
            # Like SES's reinstatement: the tenant starts afresh, on probation.
            cs.status, cs.since, cs.manual, cs.paused_by, cs.floor = (
                Status.PROBATION,
                now,
                False,
                "",
                now,
            )
            rec.window(channel).reset(now)
            if channel is Channel.EMAIL:
                rec.domains = None  # a fresh start: the old domains stay in the audit evidence
            self._resets.append((rec.tenant, channel.value))
            self._dirty_windows.discard((rec.tenant, channel))
            out.append(
                Decision(
                    time=now,
                    tenant=rec.tenant,
                    channel=channel,
                    kind=Kind.RESUME,
                    actor=actor,
                    reason=reason,
                    evidence=ev,
                    actions=()
                    if actor == Actor.SES.value
                    else actions_for(rec.policy, Kind.RESUME, channel),
                )
            )
        if out:
            self._state_changed(rec, now)
            self._decisions.extend(out)
        return out

    def _ses_status(self, ev: TenantStatusEvent, now: float) -> None:
        reason = f"SES {ev.kind.value.replace('_', ' ')}" + (f" ({ev.origin})" if ev.origin else "")
        if ev.detail:
            reason += f": {ev.detail}"
        if ev.kind is TenantStatusKind.SENDING_DISABLED:
            self.pause(
                ev.tenant,
                actor=Actor.SES.value,
                reason=reason,
                now=now,
                channels=[Channel.EMAIL],
                manual=False,
            )
        elif ev.kind is TenantStatusKind.SENDING_ENABLED:
            self.resume(
                ev.tenant, actor=Actor.SES.value, reason=reason, now=now, channels=[Channel.EMAIL]
            )
        else:
            rec = self.record(ev.tenant, now)
            self._decisions.append(
                Decision(
                    time=now,
                    tenant=ev.tenant,
                    channel=Channel.EMAIL,
                    kind=Kind.SES_FINDING,
                    actor=Actor.SES.value,
                    reason=reason,
                    evidence=evidence(rec.policy, Channel.EMAIL, rec.snapshot(Channel.EMAIL, now)),
                )
            )

    # -- persistence -----------------------------------------------------------------------

    def drain(self) -> Changes:
        """Everything changed since the last drain, for one store commit."""
        ch = Changes()
        for tenant, channel in self._dirty_windows:
            rec = self.tenants.get(tenant)
            if rec is None:
                continue  # evicted since
            win = rec.email_window if channel is _EMAIL else rec.sms_window
            if win is None:
                continue  # evicted and recreated since, without this channel
            for start, counts in win.take_dirty():
                ch.buckets.append((tenant, channel.value, start, counts))
        self._dirty_windows.clear()
        ch.states = [(t, self.tenants[t].state) for t in self._dirty_states if t in self.tenants]
        self._dirty_states.clear()
        ch.resets, self._resets = self._resets, []
        ch.keys, self._new_keys = self._new_keys, []
        ch.decisions, self._decisions = self._decisions, []
        ch.evicted, self._evicted = self._evicted, []
        return ch

    def take_decisions(self) -> list[Decision]:
        """The decisions made since the last drain or take, and nothing else of what `drain`
        hands over: for a caller without a store (replay), which drains now and then only to
        keep memory bounded."""
        out, self._decisions = self._decisions, []
        return out

    # -- bounds ----------------------------------------------------------------------------

    def evict_idle(self, now: float) -> int:
        """Forget healthy tenants whose windows are empty: they hold nothing worth keeping
        (a later event recreates them). A flood of one-off tenant names shrinks back."""
        idle = [t for t, rec in self.tenants.items() if rec.evictable() and rec.empty(now)]
        self._forget(idle, "idle")
        return len(idle)

    def _shed(self) -> None:
        """At `max_tenants`, forget the least recently active tenth of evictable tenants.
        Their counts go; states that matter (paused, warning, probation) never do."""
        candidates = sorted(
            (rec.last_seen, t)
            for t, rec in self.tenants.items()
            if rec.evictable() and t != UNASSIGNED
        )
        self._forget([t for _, t in candidates[: max(1, self.max_tenants // 10)]], "capacity")

    def _forget(self, tenants: list[str], reason: str) -> None:
        if not tenants:
            return
        gone = set(tenants)
        for t in tenants:
            del self.tenants[t]
        self.event_counts = {k: v for k, v in self.event_counts.items() if k[0] not in gone}
        self._attention -= gone
        self._evicted.extend(tenants)
        self.evicted[reason] += len(tenants)

    def restore(
        self,
        *,
        states: Iterable[tuple[str, TenantState]],
        buckets: Iterable[tuple[str, str, float, Sequence[int]]],
        keys: Iterable[tuple[bytes, float]],
        now: float,
    ) -> None:
        """Load what the store holds (on start): states first, so windows get their floors."""
        for tenant, state in states:
            rec = self.record(tenant, state.updated_at)
            rec.state = state
            if state.status is not Status.HEALTHY or any(
                cs.would_pause for cs in state.channels.values()
            ):
                self._attention.add(tenant)
        for tenant, channel, start, counts in buckets:
            rec = self.record(tenant, now)
            win = rec.window(Channel(channel))
            if start >= win.floor and win.accepts(start + win.width, now):
                win.restore(start, list(counts))
        for key, t in keys:
            self.dedupe.add(key, t)

    @property
    def dedupe_horizon_s(self) -> float:
        """How long a key matters: a redelivery older than this is late and dropped anyway."""
        return max(self.rules.max_window_s, SMS_RECEIPT_GRACE_S)

    def prune(self, now: float) -> int:
        """Forget dedupe keys older than the horizon."""
        return self.dedupe.prune(now - self.dedupe_horizon_s)

    def channel_state(self, tenant: str, channel: Channel) -> ChannelState | None:
        rec = self.tenants.get(tenant)
        return rec.state.get(channel) if rec else None
