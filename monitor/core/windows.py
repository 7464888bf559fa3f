"""Rolling per-tenant counters on event time, in fixed-width buckets.

A window of length W keeps W/BUCKETS-wide buckets (15 min for 24 h); a rate therefore covers
the last W plus at most one bucket. Running totals make `rates` O(1); `evict` drops whole
buckets as they fall out. Memory is bounded by BUCKETS per tenant, however many events arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor.core.events import Channel, Outcome
from monitor.core.rules import Rate

BUCKETS = 96
FUTURE_TOLERANCE_S = 300.0  # an event further ahead of "now" than this is taken as now

# Counter slots of a bucket.
E_SENT, E_DELIVERED, E_BOUNCE, E_BOUNCE_OTHER, E_COMPLAINT, S_FINAL, S_FAILED, S_OPT_OUT = range(8)
SLOTS = 8
SLOT_NAMES = (
    "email.sent",
    "email.delivered",
    "email.bounce",
    "email.bounce_other",
    "email.complaint",
    "sms.final",
    "sms.failed",
    "sms.opt_out",
)

# Which slots an outcome adds to. Suppressed bounces were never attempted and SMS messages
# stopped by the sender's own protect configuration or opt-out list are the sender's choice,
# so neither counts anywhere; opens, clicks, delays... are counted as events but are no rate.
OUTCOME_SLOTS: Mapping[Outcome, tuple[int, ...]] = {
    Outcome.SEND: (E_SENT,),
    Outcome.DELIVERY: (E_DELIVERED,),
    Outcome.BOUNCE_PERMANENT: (E_BOUNCE,),
    Outcome.BOUNCE_TRANSIENT: (E_BOUNCE_OTHER,),
    Outcome.BOUNCE_UNDETERMINED: (E_BOUNCE_OTHER,),
    Outcome.COMPLAINT: (E_COMPLAINT,),
    Outcome.SMS_DELIVERED: (S_FINAL,),
    Outcome.SMS_FAILED: (S_FINAL, S_FAILED),
    Outcome.SMS_OPT_OUT: (S_OPT_OUT,),
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A window's totals at one moment, with the rates the contract defines."""

    counts: tuple[int, ...]

    @property
    def email_sent(self) -> int:
        # Sent = Send recipients; a stream that carries no Send events (legacy notifications,
        # or event publishing without Send) falls back to Delivery + Bounce recipients.
        c = self.counts
        return c[E_SENT] or (c[E_DELIVERED] + c[E_BOUNCE] + c[E_BOUNCE_OTHER])

    @property
    def sms_sent(self) -> int:
        return self.counts[S_FINAL]

    def volume(self, channel: Channel) -> int:
        return self.email_sent if channel is Channel.EMAIL else self.sms_sent

    def rate(self, rate: Rate) -> float:
        c = self.counts
        if rate is Rate.EMAIL_BOUNCE:
            num, den = c[E_BOUNCE], self.email_sent
        elif rate is Rate.EMAIL_COMPLAINT:
            num, den = c[E_COMPLAINT], self.email_sent
        elif rate is Rate.SMS_FAILURE:
            num, den = c[S_FAILED], self.sms_sent
        else:
            num, den = c[S_OPT_OUT], self.sms_sent
        # Capped at 1: complaints can arrive for mail sent before the window began.
        return min(num / den, 1.0) if den else 0.0

    def channel_counts(self, channel: Channel) -> dict[str, int]:
        prefix = channel.value + "."
        out = {
            n[len(prefix) :]: v
            for n, v in zip(SLOT_NAMES, self.counts, strict=True)
            if n.startswith(prefix)
        }
        if channel is Channel.EMAIL:
            out["sent"] = self.email_sent
        return out


class Window:
    """One tenant's buckets. `floor` discards evidence from before a resume."""

    __slots__ = ("buckets", "dirty", "floor", "length", "oldest", "totals", "width")

    def __init__(self, length_s: float, floor: float = 0.0) -> None:
        self.length = length_s
        self.width = length_s / BUCKETS
        self.buckets: dict[int, list[int]] = {}
        self.totals = [0] * SLOTS
        self.oldest = 0  # no bucket index below this is held
        self.floor = floor
        self.dirty: set[int] = set()  # bucket indexes changed since the last commit

    def accepts(self, t: float, now: float) -> bool:
        """False for a late event: older than the window, or from before a resume."""
        return t > now - self.length and t >= self.floor

    def add(self, t: float, slots: tuple[int, ...], count: int) -> None:
        """Count `count` at event time `t` (the caller has checked `accepts`)."""
        idx = int(t // self.width)
        bucket = self.buckets.get(idx)
        if bucket is None:
            bucket = self.buckets[idx] = [0] * SLOTS
            if idx < self.oldest or len(self.buckets) == 1:
                self.oldest = idx
        totals = self.totals
        for s in slots:
            bucket[s] += count
            totals[s] += count
        self.dirty.add(idx)

    def evict(self, now: float) -> None:
        """Drop buckets that lie wholly before now - length."""
        cutoff = int((now - self.length) // self.width)  # bucket `cutoff` still overlaps
        if cutoff <= self.oldest or not self.buckets:
            return
        buckets = self.buckets
        # Walk the index range, or the keys when the gap is wider than what is held.
        stale = (
            [i for i in buckets if i < cutoff]
            if cutoff - self.oldest > len(buckets)
            else [i for i in range(self.oldest, cutoff) if i in buckets]
        )
        totals = self.totals
        for i in stale:
            for s, v in enumerate(buckets.pop(i)):
                totals[s] -= v
            self.dirty.discard(i)
        self.oldest = cutoff

    def snapshot(self, now: float) -> Snapshot:
        self.evict(now)
        return Snapshot(tuple(self.totals))

    def reset(self, floor: float) -> None:
        """Start afresh from `floor` (a resume): the old evidence stays in the audit log only."""
        self.buckets.clear()
        self.totals = [0] * SLOTS
        self.dirty.clear()
        self.floor = floor

    def bucket_start(self, idx: int) -> float:
        return idx * self.width

    def restore(self, start: float, counts: list[int]) -> None:
        """Add a persisted bucket back (its width may differ if the policy changed)."""
        idx = int(start // self.width)
        bucket = self.buckets.get(idx)
        if bucket is None:
            bucket = self.buckets[idx] = [0] * SLOTS
            if idx < self.oldest or len(self.buckets) == 1:
                self.oldest = idx
        for s, v in enumerate(counts[:SLOTS]):
            bucket[s] += v
            self.totals[s] += v


def clamp_time(t: float, now: float) -> float:
    """An event from more than FUTURE_TOLERANCE_S ahead (a skewed clock) counts as now."""
    return now if t > now + FUTURE_TOLERANCE_S else t
