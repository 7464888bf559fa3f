"""Policy evaluation: a channel's window snapshot + its state + now → at most one decision.

`evaluate` moves the ChannelState it is given and returns the decision that records the move;
it does no I/O and reads no clock. The transitions (contract, "Tenant states"):

    healthy   --rate ≥ warn-------------------------------> warning
    healthy   --rate ≥ pause (policy has actions)---------> paused
    warning   --rate ≥ pause (policy has actions)---------> paused
    warning   --every rate < resume_below × warn----------> healthy
    paused    --auto_resume elapsed (not a manual pause)--> probation
    probation --rate ≥ pause, at any volume---------------> paused
    probation --min_volume reached, rates < warn----------> healthy
    probation --min_volume reached, a rate ≥ warn---------> warning

Rates act only once the window holds `min_volume` sent (probation's re-pause excepted, like
SES's reinstatement). A policy without actions never pauses: crossing a pause threshold
records `would_pause` once per crossing and the tenant stays in `warning`.
"""

from __future__ import annotations

from monitor.core.events import Channel
from monitor.core.rules import Policy, Rate, Threshold
from monitor.core.state import Actor, ChannelState, Decision, Evidence, Kind, Status
from monitor.core.windows import Snapshot

NOTIFY_ACTIONS = frozenset({"eventbridge", "webhook"})
EMAIL_ONLY_ACTIONS = frozenset({"ses_tenant", "ses_configuration_set"})


def format_duration(seconds: float) -> str:
    """`24h`, `90m`, `3d`: hours up to two days, as operators write windows."""
    if seconds > 2 * 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _below(value: float, factor: float, limit: float) -> bool:
    # Rounded so that 0.8 × 0.025 is 0.02, not 0.020000000000000004.
    return value < round(factor * limit, 12)


def evidence(policy: Policy, channel: Channel, snap: Snapshot) -> Evidence:
    thresholds = policy.channel_thresholds(channel)
    return Evidence(
        policy=policy.name,
        window=format_duration(policy.window_s),
        counts=snap.channel_counts(channel),
        rates={r.value: round(snap.rate(r), 6) for r in thresholds},
        thresholds={r.value: {"warn": t.warn, "pause": t.pause} for r, t in thresholds.items()},
    )


def actions_for(policy: Policy, kind: Kind, channel: Channel) -> tuple[str, ...]:
    """Which of the policy's actions a decision runs."""
    if kind in (Kind.PAUSE, Kind.RESUME):
        acts = policy.actions
    elif kind in (Kind.WARN, Kind.WOULD_PAUSE):
        acts = tuple(a for a in policy.actions if a in NOTIFY_ACTIONS)
    else:
        return ()
    if channel is not Channel.EMAIL:
        acts = tuple(a for a in acts if a not in EMAIL_ONLY_ACTIONS)
    return acts


def _worst(rates: list[tuple[Rate, Threshold, float]], level: str) -> tuple[Rate, float] | None:
    """The rate furthest over its `level` threshold, if any is at or over it."""
    best: tuple[Rate, float, float] | None = None
    for rate, t, value in rates:
        limit = t.pause if level == "pause" else t.warn
        if value >= limit >= 0:
            over = value / limit if limit else float("inf")
            if best is None or over > best[2]:
                best = (rate, value, over)
    return (best[0], best[1]) if best else None


def _reason(
    rate: Rate, value: float, level: str, limit: float, snap: Snapshot, policy: Policy
) -> str:
    return (
        f"{rate.value} {value:.2%} ≥ {level} {limit:.2%} over {format_duration(policy.window_s)} "
        f"({snap.volume(rate.channel)} sent)"
    )


def evaluate(
    tenant: str,
    channel: Channel,
    cs: ChannelState,
    policy: Policy,
    snap: Snapshot,
    now: float,
    *,
    received_at: float | None = None,
) -> Decision | None:
    thresholds = policy.channel_thresholds(channel)
    if not thresholds or cs.status is Status.PAUSED:
        return None  # a pause only ends by resume (admin, auto_resume tick, or SES)
    volume = snap.volume(channel)
    enough = volume >= policy.min_volume and volume > 0

    def decide(kind: Kind, status: Status, reason: str) -> Decision:
        if status is not cs.status:
            cs.status = status
            cs.since = now
        if status is Status.PAUSED:
            cs.manual = False
            cs.paused_by = Actor.POLICY.value
        return Decision(
            time=now,
            tenant=tenant,
            channel=channel,
            kind=kind,
            actor=Actor.POLICY.value,
            reason=reason,
            evidence=evidence(policy, channel, snap),
            actions=actions_for(policy, kind, channel),
            received_at=received_at,
        )

    rates = [(r, t, snap.rate(r)) for r, t in thresholds.items()]  # each computed once
    over_pause = _worst(rates, "pause")
    if over_pause and (enough or (cs.status is Status.PROBATION and volume > 0)):
        rate, value = over_pause
        reason = _reason(rate, value, "pause", thresholds[rate].pause, snap, policy)
        if policy.can_pause:
            return decide(Kind.PAUSE, Status.PAUSED, reason)
        if not cs.would_pause:
            cs.would_pause = True
            return decide(Kind.WOULD_PAUSE, Status.WARNING, reason + " (policy has no actions)")
        if cs.status is not Status.WARNING:
            return decide(Kind.WARN, Status.WARNING, reason)
        return None
    # Unlatch would_pause once the rates are clearly back under the pause thresholds.
    if cs.would_pause and all(_below(value, policy.resume_below, t.pause) for _, t, value in rates):
        cs.would_pause = False

    over_warn = _worst(rates, "warn")
    if cs.status is Status.HEALTHY:
        if over_warn and enough:
            rate, value = over_warn
            return decide(
                Kind.WARN,
                Status.WARNING,
                _reason(rate, value, "warn", thresholds[rate].warn, snap, policy),
            )
        return None
    if cs.status is Status.WARNING:
        if all(_below(value, policy.resume_below, t.warn) for _, t, value in rates):
            return decide(
                Kind.CLEAR,
                Status.HEALTHY,
                f"every {channel.value} rate below {policy.resume_below:.0%} of its warn threshold",
            )
        return None
    # probation
    if enough:
        if over_warn:
            rate, value = over_warn
            return decide(
                Kind.WARN,
                Status.WARNING,
                _reason(rate, value, "warn", thresholds[rate].warn, snap, policy),
            )
        return decide(
            Kind.RECOVER,
            Status.HEALTHY,
            f"{volume} sent since resume, every {channel.value} rate below its warn threshold",
        )
    return None


def auto_resume_due(cs: ChannelState, policy: Policy, now: float) -> bool:
    return (
        cs.status is Status.PAUSED
        and not cs.manual
        and cs.paused_by == Actor.POLICY.value
        and policy.auto_resume_s is not None
        and now >= cs.since + policy.auto_resume_s
    )
