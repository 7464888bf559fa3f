"""The replay: decoded events, sorted by event time, through the daemon's own Engine.

"Now" is the newest event time seen (contract, "Rates"); all events of one instant are
ingested together and evaluated at once, so a crossing is decided at the instant that causes
it. With worker processes, events are replayed while the files are still being read, as far
as the archive's time order makes that safe (`Speculation`).
"""

from __future__ import annotations

import bisect
import math
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.core.decode import AnyEvent
from monitor.core.engine import Engine, MessageResult
from monitor.core.events import Channel, Event, Outcome, TenantHints
from monitor.core.rules import RATES_BY_CHANNEL, Rate, Rules, Threshold
from monitor.core.state import Decision, Kind, TenantState
from monitor.core.windows import OUTCOME_SLOTS, SLOTS, Quiet, Snapshot
from monitor.replay.reading import PROGRESS_EVERY, read_file
from monitor.replay.report import Progress
from monitor.replay.workers import MAIN, Packed, ParallelRead

TICK_S = 5.0  # the daemon's tick: auto-resume, and warnings that clear as windows roll
DRAIN_EVERY = 65_536  # events between drains of what the engine keeps for a store
ALL_RATES = tuple(r for rates in RATES_BY_CHANNEL.values() for r in rates)


@dataclass(slots=True)
class Stats:
    files: int = 0
    unreadable_files: int = 0
    skipped_files: int = 0  # not JSON
    records: int = 0
    events: int = 0
    duplicates: int = 0
    late: int = 0
    undecodable: Counter[str] = field(default_factory=Counter)
    decisions: int = 0

    def line(self, tenants: int) -> str:
        bad = sum(self.undecodable.values())
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.undecodable.items()))
        out = (
            f"replay: {self.files} files, {self.records} records read, {self.events} events "
            f"({self.duplicates} duplicates, {self.late} late), {bad} undecodable"
            + (f" ({reasons})" if reasons else "")
            + f", {tenants} tenants, {self.decisions} decisions"
        )
        if self.unreadable_files:
            out += f", {self.unreadable_files} unreadable files"
        if self.skipped_files:
            out += f", {self.skipped_files} files skipped (not JSON)"
        return out


@dataclass(slots=True)
class TenantReport:
    """What the run saw of one tenant, beyond the engine's final state."""

    totals: dict[Channel, list[int]] = field(default_factory=dict)  # slot counts, whole run
    peaks: dict[Rate, float] = field(default_factory=dict)  # only at ≥ min_volume in window
    events: int = 0
    first_warn: float | None = None
    first_pause: float | None = None
    first_would_pause: float | None = None

    def volume(self, channel: Channel) -> int:
        counts = self.totals.get(channel)
        return Snapshot(tuple(counts)).volume(channel) if counts else 0


class Replayer:
    """Reads records, then runs the events through an Engine on event time.

    With worker processes (`read_files`), the events are also replayed while the files are
    still being read, as far as it is safe to (see `Speculation`).
    """

    def __init__(
        self,
        rules: Rules,
        *,
        on_decision: Callable[[Decision], None] = lambda d: None,
        progress: Progress | None = None,
    ) -> None:
        self.rules = rules
        self.engine = Engine(rules)
        self.on_decision = on_decision
        self.progress = progress or Progress(None)
        self.stats = Stats()
        self.reports: dict[str, TenantReport] = {}
        self.events: list[AnyEvent] = []  # in input order
        self.files_total = 0  # for the progress line
        self._hints: dict[TenantHints, TenantHints] = {}
        self._hint_ids: dict[int, tuple[TenantHints, TenantHints]] = {}  # id → (it, shared)
        self._domains: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._worker_hints: dict[int, list[TenantHints]] = {}  # a worker's numbered hints
        self._speculation: Speculation | None = None
        self._start_run()

    # reading

    def read_file(self, path: Path) -> str | None:
        """Read one file's records; returns a warning for stderr, or None."""
        self.stats.files += 1
        before = self.stats.records

        def progress(records: int) -> None:
            self.progress.reading(self.stats.files, self.files_total, before + records)

        r = read_file(path, progress=progress)
        self.take(r.decoded.records, r.decoded.undecodable, self._compact(r.decoded.events))
        self.stats.unreadable_files += r.unreadable
        self.stats.skipped_files += r.skipped
        return r.warning

    def read_files(
        self, files: Sequence[Path], *, workers: int = 0, on_warning: Callable[[str], None]
    ) -> None:
        """Read `files` in order, each warning to `on_warning` in order. With `workers`
        processes to parse and decode, and the replay under way meanwhile (see `run`)."""
        self.files_total = len(files)
        if workers <= 0:
            for f in files:
                warning = self.read_file(f)
                if warning:
                    on_warning(warning)
            return
        self._speculation = Speculation(self)
        ParallelRead(self, files, workers, on_warning).run()

    def take(self, records: int, undecodable: Mapping[str, int], events: list[AnyEvent]) -> None:
        self.stats.records += records
        self.stats.undecodable.update(undecodable)
        self.events += events
        if self._speculation is not None:
            self._speculation.offer(events)

    def _compact(self, events: list[AnyEvent]) -> list[AnyEvent]:
        """Share equal hints and domain lists between events: a month of events is held in
        memory before the sort, and most of them repeat a few tenants' hints. (Decoders
        already share theirs, a bounded number: by identity, most are found at once.)"""
        ids, domains = self._hint_ids, self._domains
        out = []
        for ev in events:
            if type(ev) is Event:
                h, d = ev[5], ev[6]
                hit = ids.get(id(h))
                if hit is None or hit[0] is not h:
                    hit = ids[id(h)] = (h, self._hints.setdefault(h, h))
                if d:
                    d = domains.setdefault(d, d)
                if hit[1] is not h or d is not ev[6]:
                    out.append(_new_tuple(Event, (ev[0], ev[1], ev[2], ev[3], ev[4], hit[1], d)))
                    continue
            out.append(ev)
        return out

    def learn_hints(self, wid: int, payload: tuple[Any, ...]) -> None:
        """Take the hints a worker numbered, in the order it sent them (see Packer)."""
        if payload[0] in ("fast", "file"):
            table = self._worker_hints.setdefault(wid, [])
            table.extend(self._hints.setdefault(h, h) for h in payload[1])

    def unpack(self, wid: int, packed: Packed) -> list[AnyEvent]:
        if wid == MAIN:
            return self._compact(packed)  # type: ignore[arg-type]
        hints = self._worker_hints.get(wid, [])
        new = _new_tuple
        return [
            new(Event, (x[0], x[1], x[2], x[3], x[4], hints[x[5]], x[6]))  # type: ignore[index,misc]
            if type(x) is tuple
            else x
            for x in packed
        ]

    # replaying

    def _start_run(self) -> None:
        """A fresh engine and reports: a run from the first event."""
        self.engine = Engine(self.rules)
        self.reports = {}
        self.stats.duplicates = self.stats.late = self.stats.decisions = 0
        # Whole-run counts per (tenant, channel, outcome): [events, recipients]. Summed into
        # the reports at the end: the same totals, one dict update per event instead of six.
        self._counted: dict[tuple[str, Channel, Outcome], list[int]] = {}
        self._fed = 0  # events replayed so far
        self._total = 0  # all of them, for the progress bar (0: not known)
        self._decided: list[Decision] | None = None  # held back while the run may be wrong
        # Where `_feed` is: the instant `_now`, its first event `_first`, what it has touched
        # and whether it held a TenantStatusEvent.
        self._now: float | None = None
        self._last_tick = self._last_prune = 0.0
        self._first = 0
        self._since_drain = 0
        self._touched: dict[tuple[str, Channel], None] = {}
        self._status = False
        # id(hints) → (hints, tenant): the resolver's answer, kept (it is bounded, this is not:
        # the events keep their hints anyway)
        self._tenant_of: dict[int, tuple[TenantHints, str]] = {}
        # (tenant, channel) → (its TenantRecord, _no_new_peak, its peaks): `_decide`
        self._samplers: dict[tuple[str, Channel], tuple[Any, Quiet, dict[Rate, float]]] = {}

    def run(self) -> None:
        """Replay every event read, in time order (stable: input order breaks ties)."""
        speculation, self._speculation = self._speculation, None
        if speculation is not None and not speculation.failed:
            self.stats.events = len(self.events)
            self.events = []
            speculation.finish()
        else:
            if speculation is not None:
                self._start_run()  # the guess was wrong: start over, from the first event
            events, self.events = self.events, []
            events.sort(key=_event_time)
            self.stats.events = self._total = len(events)
            self._feed(events)
        self._finish()
        decided, self._decided = self._decided, None
        for d in decided or ():
            self.on_decision(d)

    def _feed(self, events: list[AnyEvent]) -> None:
        """Replay `events`, sorted by time, none of them before one replayed already."""
        if not events:
            return
        engine = self.engine
        ingest = engine.ingest
        resolve = engine.resolver.resolve
        tenant_of = self._tenant_of
        stats = self.stats
        counted = self._counted
        prune_every = self.rules.max_window_s
        total = self._total
        if self._now is None:
            self._now = self._last_tick = self._last_prune = events[0].time
        now, last_tick, last_prune = self._now, self._last_tick, self._last_prune
        first, since_drain = self._first, self._since_drain
        touched, status = self._touched, self._status
        base = self._fed
        for k, ev in enumerate(events, base):
            t = ev.time
            if t != now:
                # The instant `now` is complete: evaluate it, as one daemon batch.
                self._decide(now, touched, status)
                if now - last_prune >= prune_every:
                    engine.prune(now)
                    last_prune = now
                if total and first // PROGRESS_EVERY != k // PROGRESS_EVERY:
                    self.progress.replaying(k, total)
                since_drain += k - first
                if since_drain >= DRAIN_EVERY:
                    self._drain()
                    since_drain = 0
                now, first, touched, status = t, k, {}, False
                if now - last_tick >= TICK_S:
                    self._tick(now)
                    last_tick = now
            result = ingest((ev,), now, now)
            if result is _PROCESSED:
                if type(ev) is Event:
                    channel, outcome = ev[2], ev[3]
                    hit = tenant_of.get(id(ev[5]))
                    if hit is None or hit[0] is not ev[5]:
                        hit = tenant_of[id(ev[5])] = (ev[5], resolve(ev[5]))
                    tenant = hit[1]
                    key = (tenant, channel, outcome)
                    c = counted.get(key)
                    if c is None:
                        counted[key] = [1, ev[4]]
                    else:
                        c[0] += 1
                        c[1] += ev[4]
                    if outcome in OUTCOME_SLOTS:
                        touched[(tenant, channel)] = None
                else:
                    status = True
            elif result is _DUPLICATE:
                stats.duplicates += 1
            else:
                stats.late += 1
        self._fed = base + len(events)
        self._now, self._last_tick, self._last_prune = now, last_tick, last_prune
        self._first, self._since_drain = first, since_drain
        self._touched, self._status = touched, status

    def _finish(self) -> None:
        """Evaluate the last instant; sum up the reports."""
        now = self._now
        if now is None:
            return
        self._decide(now, self._touched, self._status)
        if now - self._last_prune >= self.rules.max_window_s:
            self.engine.prune(now)
        if self._total and self._first // PROGRESS_EVERY != self._fed // PROGRESS_EVERY:
            self.progress.replaying(self._fed, self._total)
        self._drain()
        for (tenant, channel, outcome), (events_n, recipients) in self._counted.items():
            rep = self._report(tenant)
            rep.events += events_n
            slots = OUTCOME_SLOTS.get(outcome)
            if slots:
                totals = rep.totals.get(channel)
                if totals is None:
                    totals = rep.totals[channel] = [0] * SLOTS
                for s in slots:
                    totals[s] += recipients
        self._counted = {}
        self._now = None

    def _decide(self, now: float, touched: dict[tuple[str, Channel], None], status: bool) -> None:
        """Evaluate the instant's tenants, like the daemon after a batch; then the peaks.

        The engine's decisions are taken only when there can be some: `evaluate` returns the
        ones it makes, and only a TenantStatusEvent decides on ingest. The rest of what drain
        hands over is for a store, and replay has none (see `_drain`).
        """
        engine = self.engine
        if engine.evaluate(now) or status:
            self._emit(engine.take_decisions())
        # `_sample` for each touched (tenant, channel), with what it looks up kept, and the
        # window's totals checked before a snapshot is taken: nearly always, the volume is
        # below min_volume or no rate is above its peak so far. Quiet, with each rate's peak
        # as both its thresholds, answers exactly that, computing volume and rates as
        # Snapshot does; it is made again when a peak rises.
        tenants, samplers = engine.tenants, self._samplers
        for tc in touched:
            rec = tenants.get(tc[0])
            if rec is None:
                continue  # shed by the engine at max_tenants
            channel = tc[1]
            sampler = samplers.get(tc)
            if sampler is None or sampler[0] is not rec:
                peaks = self._report(tc[0]).peaks  # made by `_finish` anyway: tc has events
                sampler = samplers[tc] = (rec, _no_new_peak(rec, channel, peaks), peaks)
            _, no_new_peak, peaks = sampler
            win = rec.window(channel)
            win.evict(now)
            if no_new_peak(win.counts):
                continue
            snap = win.snapshot(now)
            risen = False
            for r in RATES_BY_CHANNEL[channel]:
                v = snap.rate(r)
                if v > peaks.get(r, -1.0):
                    peaks[r] = v
                    risen = True
            if risen:
                samplers[tc] = (rec, _no_new_peak(rec, channel, peaks), peaks)

    def _drain(self) -> None:
        """Drop what the engine keeps for a store commit (the event keys, the changed
        buckets): nothing persists in a replay, but unbounded it would hold every key."""
        self._emit(self.engine.drain().decisions)  # none: each instant took its own

    def _tick(self, now: float) -> None:
        # Every earlier decision is taken already (each instant that decides takes them), so
        # what the tick decided is all there is. The engine ticks its tenants in set order:
        # sorted, the output never depends on it.
        if self.engine.tick(now):
            self._emit(sorted(self.engine.take_decisions(), key=lambda d: (d.tenant, d.channel)))

    def _sample(self, tenant: str, channel: Channel, now: float) -> None:
        """Peak rates, over moments when the window holds at least min_volume."""
        rec = self.engine.tenants.get(tenant)
        if rec is None:
            return  # shed by the engine at max_tenants
        snap = rec.snapshot(channel, now)
        volume = snap.volume(channel)
        if volume < rec.policy.min_volume or volume == 0:
            return
        peaks = self._report(tenant).peaks
        for r in RATES_BY_CHANNEL[channel]:
            v = snap.rate(r)
            if v > peaks.get(r, -1.0):
                peaks[r] = v

    def _emit(self, decisions: Iterable[Decision]) -> None:
        for d in decisions:
            self.stats.decisions += 1
            rep = self._report(d.tenant)
            # would_pause also puts the tenant in warning
            if d.kind in (Kind.WARN, Kind.WOULD_PAUSE) and rep.first_warn is None:
                rep.first_warn = d.time
            if d.kind is Kind.PAUSE and rep.first_pause is None:
                rep.first_pause = d.time
            if d.kind is Kind.WOULD_PAUSE and rep.first_would_pause is None:
                rep.first_would_pause = d.time
            if self._decided is not None:
                self._decided.append(d)
            else:
                self.on_decision(d)

    def _report(self, tenant: str) -> TenantReport:
        rep = self.reports.get(tenant)
        if rep is None:
            rep = self.reports[tenant] = TenantReport()
        return rep

    # results

    def tenant_rows(self) -> list[dict[str, Any]]:
        """One summary per tenant, sorted by name (the `{"type": "tenant"}` lines)."""
        rows = []
        for name in sorted(self.engine.tenants.keys() | self.reports.keys()):
            rec = self.engine.tenants.get(name)  # None: healthy and shed at max_tenants
            policy = rec.policy if rec else self.rules.policy_for(name)
            state = rec.state if rec else TenantState(name)
            rep = self._report(name)
            rows.append(
                {
                    "type": "tenant",
                    "tenant": name,
                    "policy": policy.name,
                    "status": state.status.value,
                    "paused_channels": state.paused_channels,
                    "volume": {c.value: rep.volume(c) for c in Channel},
                    "peak_rates": {
                        r.value: round(rep.peaks[r], 6) if r in rep.peaks else None
                        for r in ALL_RATES
                    },
                    "min_volume": policy.min_volume,
                    "events": rep.events,
                    "first_warn": rep.first_warn,
                    "first_pause": rep.first_pause,
                    "first_would_pause": rep.first_would_pause,
                }
            )
        return rows


_event_time = operator.attrgetter("time")
_PROCESSED, _DUPLICATE = MessageResult.PROCESSED, MessageResult.DUPLICATE
_new_tuple: Callable[..., Any] = tuple.__new__  # Event(...) without its Python __new__


def _no_new_peak(rec: Any, channel: Channel, peaks: Mapping[Rate, float]) -> Quiet:
    """For a window's totals: True if the volume is below min_volume (or 0), or if no rate is
    above its peak so far (none yet: -1), so that there is no peak to take (`_sample`).
    Quiet asks each rate to be below both its thresholds: the next float above the peak."""
    limits = {r: math.nextafter(peaks.get(r, -1.0), math.inf) for r in RATES_BY_CHANNEL[channel]}
    return Quiet(
        channel,
        rec.policy.min_volume,
        {r: Threshold(warn=limit, pause=limit) for r, limit in limits.items()},
    )


MIN_SLACK_S = 300.0
RELEASE_EVERY = 2048  # events at least between two sorts of those pending


class Speculation:
    """Replays events while the files are still being read, where that is sure to be right.

    The replay takes the events sorted by time, input order breaking ties; they arrive in
    input order, a batch at a time. Pending events older than a watermark are replayed:
    `slack` before the oldest event of the latest batch, the slack growing with the disorder
    seen (how far an arriving batch reaches back before the newest event seen). Archives are
    mostly in time order, so nearly all events are replayed before the last file is read.

    An event that arrives at or before the newest one replayed would have had to be replayed
    before it (archives of different periods, out of order): the guess was wrong, `failed`,
    and `Replayer.run` starts over from the first event, as without workers. Decisions are
    held back until the end, so nothing of a wrong guess is ever output.
    """

    def __init__(self, replayer: Replayer) -> None:
        self.r = replayer
        replayer._decided = []
        self.pending: list[AnyEvent] = []  # arrived, not replayed yet
        self.replayed = -math.inf  # the time of the newest event replayed
        self.newest = -math.inf  # ... that arrived
        self.slack = MIN_SLACK_S
        self.kept = 0  # events left pending by the last release
        self.failed = False

    def offer(self, events: list[AnyEvent]) -> None:
        if self.failed or not events:
            return
        times = list(map(_event_time, events))
        oldest = min(times)
        if oldest <= self.replayed:
            self.failed = True
            self.pending = []
            return
        self.slack = max(self.slack, 4 * (self.newest - oldest))
        self.newest = max(self.newest, *times)
        self.pending += events
        if len(self.pending) >= 2 * self.kept + RELEASE_EVERY:
            self._release(oldest - self.slack)

    def _release(self, before: float) -> None:
        """Replay the pending events older than `before`."""
        pending = self.pending
        pending.sort(key=_event_time)  # stable; nearly sorted already, so O(n)
        cut = bisect.bisect_left(pending, before, key=_event_time)
        if cut:
            batch = pending[:cut]
            del pending[:cut]
            self.replayed = batch[-1].time
            self.r._feed(batch)
        self.kept = len(pending)

    def finish(self) -> None:
        """Everything has arrived: replay the rest."""
        self._release(math.inf)
