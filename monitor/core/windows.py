"""Rolling per-tenant counters on event time, in fixed-width buckets.

A window of length W keeps W/BUCKETS-wide buckets (15 min for 24 h); a rate therefore covers
the last W plus at most one bucket. Running totals make `rates` O(1); `evict` drops whole
buckets as they fall out. Memory is bounded by BUCKETS per tenant, however many events arrive.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.core.events import Channel, Outcome
from monitor.core.rules import Rate, Threshold

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


# The numerator slot of each rate (the denominators are the channel's volume).
RATE_SLOT: Mapping[Rate, int] = {
    Rate.EMAIL_BOUNCE: E_BOUNCE,
    Rate.EMAIL_COMPLAINT: E_COMPLAINT,
    Rate.SMS_FAILURE: S_FAILED,
    Rate.SMS_OPT_OUT: S_OPT_OUT,
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


class Quiet:
    """Whether a healthy channel's totals are too low to move it: below `min_volume`, or every
    rate under both its thresholds. Computed as Snapshot.volume and Snapshot.rate do, without
    building a snapshot; anything it cannot vouch for (an odd threshold) answers False.

    Why: after every batch each touched tenant is evaluated, and nearly all of them are healthy
    and well under their thresholds. The full policy evaluation (snapshot, thresholds of the
    channel, both levels) costs ~10x this check; the check leaves the policy the cases where
    something can happen.
    """

    __slots__ = ("email", "limits", "min_volume")

    def __init__(self, channel: Channel, min_volume: int, thresholds: Mapping[Rate, Threshold]):
        self.email = channel is Channel.EMAIL
        self.min_volume = min_volume
        self.limits = tuple(
            (RATE_SLOT[r], t.warn, t.pause) for r, t in thresholds.items() if r.channel is channel
        )

    def __call__(self, totals: Sequence[int]) -> bool:
        """`totals`: a window's totals, or its `counts` (which begin with them)."""
        if self.email:
            volume = totals[E_SENT] or (
                totals[E_DELIVERED] + totals[E_BOUNCE] + totals[E_BOUNCE_OTHER]
            )
        else:
            volume = totals[S_FINAL]
        if volume < self.min_volume or volume <= 0:
            return True  # no rate acts on a healthy channel before min_volume
        for slot, warn, pause in self.limits:
            rate = min(totals[slot] / volume, 1.0)
            if not (rate < warn and rate < pause):
                return False
        return True


_WIDTHS: dict[float, float] = {}  # window length → bucket width, one float for all windows


def _width(length_s: float) -> float:
    width = _WIDTHS.get(length_s)
    if width is None:
        width = _WIDTHS[length_s] = length_s / BUCKETS
    return width


_ZEROS = array("q", bytes(8 * SLOTS))  # one bucket's (or the totals') counters, all zero
_STRIDE = 1 + SLOTS  # a bucket in `Window.counts`: its index, then its counters


class Window:
    """One tenant's buckets. `floor` discards evidence from before a resume.

    Why one flat array: a tenant costs mostly its windows, and a dict of lists per window
    (~1 KB for a tenant with a few buckets, in many small objects) does not fit 300,000
    tenants in 512 MB. `counts` holds the running totals, then each bucket as its index and
    its counters, oldest first: 64-bit integers inline, ~100 bytes per bucket and no object
    per counter. Events arrive nearly in time order, so `add` finds its bucket at the end.
    """

    __slots__ = ("counts", "dirty", "floor", "length", "width")

    def __init__(self, length_s: float, floor: float = 0.0) -> None:
        self.length = length_s
        self.width = _width(length_s)
        self.counts = array("q", _ZEROS)  # totals[SLOTS], then (index, counters[SLOTS])...
        self.floor = floor
        self.dirty: set[int] | None = None  # bucket indexes changed since the last commit

    @property
    def totals(self) -> list[int]:
        return self.counts[:SLOTS].tolist()

    @property
    def buckets(self) -> dict[int, list[int]]:
        """The held buckets by index (a copy), oldest first."""
        c = self.counts
        return {c[i]: c[i + 1 : i + _STRIDE].tolist() for i in range(SLOTS, len(c), _STRIDE)}

    def accepts(self, t: float, now: float) -> bool:
        """False for a late event: older than the window, or from before a resume."""
        return t > now - self.length and t >= self.floor

    def add(self, t: float, slots: tuple[int, ...], count: int) -> None:
        """Count `count` at event time `t` (the caller has checked `accepts`)."""
        idx = int(t // self.width)
        c = self.counts
        at = len(c) - _STRIDE  # the newest bucket: where nearly every event goes
        if at < SLOTS or c[at] != idx:
            at = self._bucket(idx)
            c = self.counts  # a new bucket means a new array
        at += 1
        for s in slots:
            c[at + s] += count
            c[s] += count
        if self.dirty is None:
            self.dirty = {idx}
        else:
            self.dirty.add(idx)

    def _bucket(self, idx: int) -> int:
        """The offset of bucket `idx` in `counts`, inserted in order if not held."""
        c = self.counts
        at = len(c)
        while at > SLOTS and c[at - _STRIDE] >= idx:
            at -= _STRIDE
            if c[at] == idx:
                return at
        # A new array of the exact size, not an insertion that over-allocates: this happens
        # once per bucket (every 15 min at most), and the spare capacity would be kept.
        self.counts = c[:at] + array("q", [idx]) + _ZEROS + c[at:]
        return at

    def evict(self, now: float) -> None:
        """Drop buckets that lie wholly before now - length."""
        cutoff = int((now - self.length) // self.width)  # bucket `cutoff` still overlaps
        c = self.counts
        end = SLOTS
        while end < len(c) and c[end] < cutoff:
            for s in range(SLOTS):
                c[s] -= c[end + 1 + s]
            if self.dirty is not None:
                self.dirty.discard(c[end])
            end += _STRIDE
        if end > SLOTS:
            del c[SLOTS:end]

    def snapshot(self, now: float) -> Snapshot:
        self.evict(now)
        return Snapshot(tuple(self.counts[:SLOTS]))

    def reset(self, floor: float) -> None:
        """Start afresh from `floor` (a resume): the old evidence stays in the audit log only."""
        self.counts = array("q", _ZEROS)
        self.dirty = None
        self.floor = floor

    def bucket_start(self, idx: int) -> float:
        return idx * self.width

    def take_dirty(self) -> list[tuple[float, tuple[int, ...]]]:
        """(start, counters) of each bucket changed since the last call and still held,
        oldest first; for the commit that persists them."""
        dirty, self.dirty = self.dirty, None
        if not dirty:
            return []
        # From the newest bucket back until every dirty one is found (nearly always the newest
        # alone): O(dirty) rather than O(held), which is 96 buckets for a day's history.
        c, width = self.counts, self.width
        out = []
        need = len(dirty)
        i = len(c) - _STRIDE
        while need and i >= SLOTS:
            if c[i] in dirty:
                out.append((c[i] * width, tuple(c[i + 1 : i + _STRIDE])))
                need -= 1
            i -= _STRIDE
        out.reverse()
        return out

    def restore(self, start: float, counts: Sequence[int]) -> None:
        """Add a persisted bucket back (its width may differ if the policy changed)."""
        at = self._bucket(int(start // self.width)) + 1
        c = self.counts
        for s, v in enumerate(counts[:SLOTS]):
            c[at + s] += v
            c[s] += v


def clamp_time(t: float, now: float) -> float:
    """An event from more than FUTURE_TOLERANCE_S ahead (a skewed clock) counts as now."""
    return now if t > now + FUTURE_TOLERANCE_S else t
