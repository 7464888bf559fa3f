"""`reputation-monitor replay PATH...`: backtest the rules on archived events.

Reads every record first (files and directories of JSON, JSON Lines, gzip, Firehose S3
objects, SQS receive-message dumps), decodes each exactly as the daemon does
(`decode_object` / `decode_body`), sorts the events by event time (stable: input order breaks
ties), then feeds them to the daemon's own Engine. "Now" is the newest event time seen
(contract, "Rates"); all events of one instant are ingested together and evaluated at once, so
a crossing is decided at the instant that causes it. No wall clock, no store, no actions: the
output depends on the input and the rules alone, byte for byte.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import operator
import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from monitor.core.decode import AnyEvent, DecodeError, DecodeReason
from monitor.core.decode.envelope import decode_body, decode_object
from monitor.core.engine import Engine, MessageResult
from monitor.core.events import Channel, Event, Outcome, TenantHints
from monitor.core.rules import RATES_BY_CHANNEL, Rate, Rules, RulesError, Threshold
from monitor.core.state import Decision, Kind, TenantState
from monitor.core.windows import OUTCOME_SLOTS, SLOTS, Quiet, Snapshot
from monitor.rulesfile import load_rules_dir

TICK_S = 5.0  # the daemon's tick: auto-resume, and warnings that clear as windows roll
CHUNK_CHARS = 1 << 20
# A record this long without a parse is broken, not merely cut by a chunk boundary.
MAX_RECORD_CHARS = 64 << 20
PROGRESS_EVERY = 20_000  # records or events between progress updates (stderr TTY only)
DRAIN_EVERY = 65_536  # events between drains of what the engine keeps for a store
ALL_RATES = tuple(r for rates in RATES_BY_CHANNEL.values() for r in rates)

_WS = re.compile(r"[ \t\r\n\ufeff]*")  # a BOM at the start of a file is whitespace too
# Where a record can start again after broken JSON: a `{` that starts a line or follows a `}`
# (and maybe a comma, as in an array). A heuristic: it can land inside the broken record.
_RESYNC = re.compile(r"\}[ \t\r\n,]*(?=\{)|\n(?=\{)")
# Undecodable UTF-8 read with surrogateescape: the daemon rejects such a body as invalid_utf8.
_SURROGATE = re.compile("[\udc80-\udcff]")
_INVALID_JSON = DecodeError(DecodeReason.INVALID_JSON, "record")
_INVALID_UTF8 = DecodeError(DecodeReason.INVALID_UTF8, "record")
_NOT_AN_OBJECT = DecodeError(DecodeReason.NOT_AN_OBJECT, "record")
_NO_BODY = DecodeError(DecodeReason.MISSING_FIELD, "Messages[].Body")


# -- reading ---------------------------------------------------------------------------------


class JsonStream:
    """Top-level JSON values of a text stream, read a chunk at a time.

    Accepts one document, documents concatenated with or without whitespace between them
    (JSON Lines, Firehose S3 objects: `}{`), and a top-level array, whose elements are yielded
    one by one. Broken JSON yields a DecodeError and parsing resumes at the next `{` that
    starts a line or follows a `}`, so one bad record costs only itself.
    """

    def __init__(self, read: Callable[[int], str]) -> None:
        self._read = read
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._lines = 0  # newlines in the characters dropped from the buffer's front
        self._col_base = 0  # characters dropped since the last of those newlines
        self._decoder = json.JSONDecoder()
        self.not_json = False
        self._surrogates = False  # seen in any chunk: only then are records checked one by one
        self.errors: list[tuple[int, int]] = []  # (line, column) of broken JSON, for a warning

    def __iter__(self) -> Iterator[Any | DecodeError]:
        if self._skip_ws() and self._buf[self._pos] not in '{["':
            self.not_json = True  # a README, a CSV...: not an archive of events at all
            return
        in_array = False
        while self._skip_ws():
            c = self._buf[self._pos]
            if in_array and c in ",]":
                self._pos += 1
                in_array = c == ","
                continue
            if c == "[" and not in_array:
                self._pos += 1
                in_array = True
                continue
            yield self._value()

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._read(CHUNK_CHARS)
        if not chunk:
            self._eof = True
            return False
        # Drop what is consumed so memory holds about one chunk plus the record in progress.
        self._lines, self._col_base = self._where(self._pos)
        self._buf = self._buf[self._pos :] + chunk
        # isascii() is O(1) in CPython: most archives never pay for the search.
        self._surrogates = self._surrogates or (
            not chunk.isascii() and _SURROGATE.search(chunk) is not None
        )
        self._pos = 0
        return True

    def _skip_ws(self) -> bool:
        """Move to the next non-whitespace character; False at the end of the stream."""
        while True:
            self._pos = _WS.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buf):
                return True
            if not self._fill():
                return False

    def _value(self) -> Any | DecodeError:
        while True:
            start = self._pos
            try:
                value, end = self._decoder.raw_decode(self._buf, start)
            except json.JSONDecodeError as e:
                if self._incomplete(e, start) and self._fill():
                    continue
                self._resync()
                return _INVALID_JSON
            except RecursionError:
                self._resync()
                return _INVALID_JSON
            self._pos = end
            if self._surrogates and _SURROGATE.search(self._buf, start, end):
                return _INVALID_UTF8
            return value

    def _incomplete(self, e: json.JSONDecodeError, start: int) -> bool:
        """Could more input complete this record? (A cut at a chunk boundary fails at the
        end of the buffer, or as a string that does not end.)"""
        if self._eof or len(self._buf) - start > MAX_RECORD_CHARS:
            return False
        return e.pos >= len(self._buf) - 8 or e.msg.startswith("Unterminated string")

    def _where(self, pos: int) -> tuple[int, int]:
        """Newlines before `pos`, and characters since the last one."""
        n = self._buf.count("\n", 0, pos)
        if n == 0:
            return self._lines, self._col_base + pos
        return self._lines + n, pos - self._buf.rindex("\n", 0, pos) - 1

    def _resync(self) -> None:
        line, col = self._where(self._pos)
        self.errors.append((line + 1, col + 1))
        search_from = self._pos + 1  # never the broken record's own start
        while True:
            m = _RESYNC.search(self._buf, search_from)
            if m is not None:
                self._pos = m.end()
                return
            # Keep the last character: it may be the `}` or newline before the next record.
            self._pos = max(self._pos, len(self._buf) - 1)
            if not self._fill():
                self._pos = len(self._buf)
                return
            search_from = 1


def records(value: Any) -> Iterator[dict[str, Any] | str | DecodeError]:
    """The records in one top-level value: a record object, or SQS message bodies."""
    # A string is an SQS body, e.g. from `jq '.Messages[].Body'`, one per line.
    if isinstance(value, DecodeError | str):
        yield value
    elif not isinstance(value, dict):
        yield _NOT_AN_OBJECT
    elif isinstance(value.get("Messages"), list):  # `aws sqs receive-message` output
        for m in value["Messages"]:
            yield _sqs_body(m)
    elif "Body" in value and ("ReceiptHandle" in value or "MessageId" in value):
        yield _sqs_body(value)  # one message of such a dump
    else:
        yield value


def _sqs_body(m: Any) -> str | DecodeError:
    body = m.get("Body") if isinstance(m, dict) else None
    return body if isinstance(body, str) else _NO_BODY


def expand(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files to read in a fixed order (directories recursively, sorted; dot files skipped),
    and the paths that do not exist."""
    files: list[Path] = []
    missing: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(
                sorted(
                    f
                    for f in path.rglob("*")
                    if f.is_file() and not any(s.startswith(".") for s in f.relative_to(path).parts)
                )
            )
        elif path.exists():
            files.append(path)
        else:
            missing.append(p)
    return files, missing


def open_text(path: Path) -> TextIO:
    """A file as text, gunzipped when it starts with the gzip magic (whatever its name)."""
    raw = path.open("rb")
    try:
        magic = raw.peek(2)[:2]
    except OSError:
        raw.close()
        raise
    stream: Any = gzip.GzipFile(fileobj=raw, mode="rb") if magic == b"\x1f\x8b" else raw
    return io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")


# -- replaying -------------------------------------------------------------------------------


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
    """Reads records, then runs the events through an Engine on event time."""

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
        self.events: list[AnyEvent] = []
        self.files_total = 0  # for the progress line
        self._hints: dict[TenantHints, TenantHints] = {}
        self._domains: dict[tuple[str, ...], tuple[str, ...]] = {}
        # (tenant, channel) → (its TenantRecord, a min_volume check, its peaks, its rates)
        self._samplers: dict[
            tuple[str, Channel], tuple[Any, Quiet, dict[Rate, float], tuple[Rate, ...]]
        ] = {}

    # reading

    def read_file(self, path: Path) -> str | None:
        """Read one file's records; returns a warning for stderr, or None."""
        self.stats.files += 1
        try:
            with open_text(path) as f:
                stream = JsonStream(f.read)
                for value in stream:
                    for rec in records(value):
                        self._add(rec)
        except (OSError, EOFError, zlib.error, UnicodeError) as e:
            self.stats.unreadable_files += 1
            return f"replay: {path}: cannot read ({_why(e)}); records before the problem kept"
        if stream.not_json:
            self.stats.skipped_files += 1
            return None
        if stream.errors:
            (line, col), more = stream.errors[0], len(stream.errors) - 1
            return (
                f"replay: {path}:{line}: invalid JSON at column {col}"
                + (f" (and {more} more records)" if more else "")
                + "; skipped to the next record"
            )
        return None

    def _add(self, rec: dict[str, Any] | str | DecodeError) -> None:
        self.stats.records += 1
        if self.stats.records % PROGRESS_EVERY == 0:
            self.progress.reading(self.stats.files, self.files_total, self.stats.records)
        if isinstance(rec, DecodeError):
            decoded: list[AnyEvent] | DecodeError = rec
        elif isinstance(rec, str):
            decoded = decode_body(rec)
        else:
            decoded = decode_object(rec)
        if isinstance(decoded, DecodeError):
            self.stats.undecodable[decoded.reason.value] += 1
            return
        for ev in decoded:
            self.events.append(self._compact(ev) if isinstance(ev, Event) else ev)

    def _compact(self, ev: Event) -> Event:
        """Share equal hints and domain lists between events: a month of events is held in
        memory before the sort, and most of them repeat a few tenants' hints."""
        hints = self._hints.setdefault(ev.hints, ev.hints)
        domains = self._domains.setdefault(ev.recipient_domains, ev.recipient_domains)
        if hints is ev.hints and domains is ev.recipient_domains:
            return ev
        return Event(ev.key, ev.time, ev.channel, ev.outcome, ev.count, hints, domains)

    # replaying

    def run(self) -> None:
        events, self.events = self.events, []
        events.sort(key=_event_time)  # stable: input order breaks ties
        self.stats.events = n = len(events)
        if not n:
            return
        engine = self.engine
        ingest = engine.ingest
        resolve = engine.resolver.resolve
        stats = self.stats
        # Whole-run counts per (tenant, channel, outcome): [events, recipients]. Summed into
        # the reports at the end: the same totals, one dict update per event instead of six.
        counted: dict[tuple[str, Channel, Outcome], list[int]] = {}
        self._samplers = {}
        prune_every = self.rules.max_window_s
        now = last_tick = last_prune = events[0].time
        first = 0  # index of the instant's first event
        since_drain = 0
        touched: dict[tuple[str, Channel], None] = {}  # by events with slots, this instant
        status = False  # a TenantStatusEvent this instant: it may have decided
        for k, ev in enumerate(events):
            t = ev.time
            if t != now:
                # The instant `now` is complete: evaluate it, as one daemon batch.
                self._decide(now, touched, status)
                if now - last_prune >= prune_every:
                    engine.prune(now)
                    last_prune = now
                if first // PROGRESS_EVERY != k // PROGRESS_EVERY:
                    self.progress.replaying(k, n)
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
                    tenant = resolve(ev[5])
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
        self._decide(now, touched, status)
        if now - last_prune >= prune_every:
            engine.prune(now)
        if first // PROGRESS_EVERY != n // PROGRESS_EVERY:
            self.progress.replaying(n, n)
        self._drain()
        for (tenant, channel, outcome), (events_n, recipients) in counted.items():
            rep = self._report(tenant)
            rep.events += events_n
            slots = OUTCOME_SLOTS.get(outcome)
            if slots:
                totals = rep.totals.get(channel)
                if totals is None:
                    totals = rep.totals[channel] = [0] * SLOTS
                for s in slots:
                    totals[s] += recipients

    def _decide(self, now: float, touched: dict[tuple[str, Channel], None], status: bool) -> None:
        """Evaluate the instant's tenants, like the daemon after a batch; then the peaks.

        The engine's decisions are drained only when there can be some: `evaluate` returns
        the ones it makes, and only a TenantStatusEvent decides on ingest. The rest of what
        drain hands over is for a store, and replay has none (see `_drain`).
        """
        engine = self.engine
        if engine.evaluate(now) or status:
            self._emit(engine.drain().decisions)
        # `_sample` for each touched (tenant, channel), with what it looks up kept, and the
        # window's volume checked before a snapshot is taken: most are below min_volume.
        tenants, samplers = engine.tenants, self._samplers
        for tc in touched:
            rec = tenants.get(tc[0])
            if rec is None:
                continue  # shed by the engine at max_tenants
            channel = tc[1]
            sampler = samplers.get(tc)
            if sampler is None or sampler[0] is not rec:
                rates = RATES_BY_CHANNEL[channel]
                sampler = samplers[tc] = (
                    rec,
                    # Quiet with every threshold at 0: quiet exactly when the volume is below
                    # min_volume (or 0), as Snapshot.volume counts it.
                    Quiet(channel, rec.policy.min_volume, dict.fromkeys(rates, _ZERO)),
                    self._report(tc[0]).peaks,  # made by `_finish` anyway: tc has events
                    rates,
                )
            _, below_min_volume, peaks, rates = sampler
            win = rec.windows.get(channel) or rec.window(channel)
            win.evict(now)
            if below_min_volume(win.counts):
                continue
            snap = win.snapshot(now)
            for r in rates:
                v = snap.rate(r)
                if v > peaks.get(r, -1.0):
                    peaks[r] = v

    def _drain(self) -> None:
        """Drop what the engine keeps for a store commit (the event keys, the changed
        buckets): nothing persists in a replay, but unbounded it would hold every key."""
        self._emit(self.engine.drain().decisions)  # none: each instant drains its own

    def _tick(self, now: float) -> None:
        # Every earlier decision is drained already (each instant that decides drains), so
        # what the tick decided is all there is. The engine ticks its tenants in set order:
        # sorted, the output never depends on it.
        if self.engine.tick(now):
            self._emit(sorted(self.engine.drain().decisions, key=lambda d: (d.tenant, d.channel)))

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
_ZERO = Threshold(warn=0.0, pause=0.0)


def _why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


# -- output ----------------------------------------------------------------------------------


def decision_line(d: Decision) -> str:
    """The contract's decision shape, plus `type`; replay runs no action."""
    entry: dict[str, Any] = {"type": "decision"}
    entry.update(d.to_dict())
    entry["actions"] = [{"action": a, "result": "not_run"} for a in d.actions]
    return json.dumps(entry)


def iso(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


TABLE_COLUMNS = (
    "tenant",
    "policy",
    "status",
    "email_sent",
    "peak_bounce",
    "peak_complaint",
    "sms_sent",
    "peak_failure",
    "peak_opt_out",
    "first_warn",
    "first_pause",
)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Aligned columns; peaks are over moments with at least min_volume in the window."""
    lines = [list(TABLE_COLUMNS)]
    for r in rows:
        peaks = r["peak_rates"]
        pause = iso(r["first_pause"])
        if r["first_pause"] is None and r["first_would_pause"] is not None:
            pause = iso(r["first_would_pause"]) + " (would)"
        lines.append(
            [
                r["tenant"],
                r["policy"],
                r["status"],
                str(r["volume"]["email"]),
                _pct(peaks["email.bounce"]),
                _pct(peaks["email.complaint"]),
                str(r["volume"]["sms"]),
                _pct(peaks["sms.failure"]),
                _pct(peaks["sms.opt_out"]),
                iso(r["first_warn"]),
                pause,
            ]
        )
    widths = [max(len(line[c]) for line in lines) for c in range(len(TABLE_COLUMNS))]
    out = [
        "# peak rates: highest over the moments the window held at least the policy's "
        "min_volume (- never); sent: whole replay; times UTC",
    ]
    out.extend(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
    return "\n".join(out) + "\n"


class Progress:
    """A one-line bar on stderr when it is a terminal; silent otherwise (and never stdout)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream if stream is not None and _isatty(stream) else None
        self._shown = False

    def reading(self, file: int, files: int, records: int) -> None:
        self._show(f"replay: reading file {file}/{files}, {records} records")

    def replaying(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        self._show(
            f"replay: [{'#' * filled}{'.' * (width - filled)}] "
            f"{100 * done // max(total, 1):3d}% {done}/{total} events"
        )

    def done(self) -> None:
        if self.stream is not None and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _show(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()
            self._shown = True


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- command ---------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="backtest the rules on archived events (JSON, JSON Lines, gzip, Firehose, SQS dumps)",
        description=(
            "Run archived events through the daemon's decode, tenant, window and policy code on "
            "event time, acting on nothing. Prints a per-tenant table, or with --json one "
            "decision per line and then one summary line per tenant."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (recursive)")
    p.add_argument(
        "--rules", default="rules", metavar="DIR", help="rules directory (default rules)"
    )
    p.add_argument("--json", action="store_true", help="JSON lines instead of the table")
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        return _replay(args, sys.stdout, sys.stderr)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time flush of
        # stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        rules = load_rules_dir(args.rules)
    except RulesError as e:
        print(str(e), file=err)
        return 1
    files, missing = expand(args.paths)
    for p in missing:
        print(f"replay: {p}: no such file or directory", file=err)
    if missing:
        return 1
    progress = Progress(err)

    def emit(d: Decision) -> None:
        if args.json:  # decisions stream out as they are made; the table needs only counts
            out.write(decision_line(d) + "\n")

    replayer = Replayer(rules, on_decision=emit, progress=progress)
    replayer.files_total = len(files)
    for f in files:
        warning = replayer.read_file(f)
        if warning:
            progress.done()
            print(warning, file=err)
    if replayer.stats.records == 0:
        progress.done()
        print(f"replay: no records read from {', '.join(args.paths)}", file=err)
        return 1
    replayer.run()
    progress.done()
    rows = replayer.tenant_rows()
    summary = replayer.stats.line(len(rows))
    if args.json:
        for row in rows:
            out.write(json.dumps(row) + "\n")
        print(summary, file=err)
    else:
        out.write(table(rows))
        out.write(summary + "\n")
    out.flush()
    return 0
