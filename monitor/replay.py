"""`reputation-monitor replay PATH...`: backtest the rules on archived events.

Reads every record (files and directories of JSON, JSON Lines, gzip, Firehose S3 objects, SQS
receive-message dumps), decodes each exactly as the daemon does (`decode_object` /
`decode_body`), sorts the events by event time (stable: input order breaks ties), and feeds
them to the daemon's own Engine. "Now" is the newest event time seen (contract, "Rates"); all
events of one instant are ingested together and evaluated at once, so a crossing is decided at
the instant that causes it. No wall clock, no store, no actions: the output depends on the
input and the rules alone, byte for byte.

How it gets there fast, none of it changing a byte of the output: JSON Lines are parsed with
orjson a line at a time (the general reader takes anything else); with worker processes, the
main process reads and the workers parse and decode, while the events already read are
replayed, as far as the archive's time order makes that safe (see `_Speculation`).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import gzip
import io
import json
import math
import multiprocessing
import operator
import os
import queue
import re
import signal
import sys
import threading
import traceback
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from monitor.core.decode import AnyEvent, DecodeError, DecodeReason
from monitor.core.decode.envelope import decode_body, decode_object
from monitor.core.decode.ses import SES_EVENT_TYPES, decode_known_event
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
TAIL_CHARS = 1 << 16  # see JsonStream._value
# A line that may nest this deep takes the general path: the json module gives up at its
# recursion limit (1000 frames, its own and the caller's), orjson at 1024 levels.
DEEP_NESTING = 500
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
_orjson_loads = orjson.loads


# -- reading ---------------------------------------------------------------------------------


class JsonStream:
    """Top-level JSON values of a text stream, read a chunk at a time.

    Accepts one document, documents concatenated with or without whitespace between them
    (JSON Lines, Firehose S3 objects: `}{`), and a top-level array, whose elements are yielded
    one by one. Broken JSON yields a DecodeError and parsing resumes at the next `{` that
    starts a line or follows a `}`, so one bad record costs only itself.

    JSON Lines take a fast path: where the rest of a line already in the buffer is one JSON
    object (orjson, ~3x the json module), that object is the line's value. It is the value the
    general path would read there, and that path would then skip the newline: the same values,
    the same reads of the underlying stream, so the same output on any input (see
    `__iter__`). Anything else (a broken line, an array, a pretty-printed record, a line not
    yet wholly read) takes the general path, one value at a time.

    `skip_to`: start at this character offset, which must follow only whitespace and lines
    that are each one JSON object (a reader that has taken those lines elsewhere resumes here
    as if it had read them: the chunks read are the same, so is all that follows).
    `fast_lines=False`: the general path only.
    """

    def __init__(
        self,
        read: Callable[[int], str],
        *,
        skip_to: int = 0,
        chunk_chars: int = 0,
        fast_lines: bool = True,
    ) -> None:
        self._read = read
        self._fast_lines = fast_lines
        self._chunk_chars = chunk_chars or CHUNK_CHARS
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._lines = 0  # newlines in the characters dropped from the buffer's front
        self._col_base = 0  # characters dropped since the last of those newlines
        self._decoder = json.JSONDecoder()
        self.not_json = False
        self._surrogates = False  # seen in any chunk: only then are records checked one by one
        self.errors: list[tuple[int, int]] = []  # (line, column) of broken JSON, for a warning
        self._skip_to = skip_to
        self._dropped = 0  # characters dropped from the buffer's front
        # The fast path is not tried before this buffer position: the line it is in failed,
        # or no newline was found up to here. (Without it, a long line of `}{` records would
        # be searched and parsed again for each of its records.)
        self._fast_from = 0
        # Newlines in the buffer before `_counted_to`: the fast path counts the lines it
        # takes, so that `_where` counts only the rest.
        self._counted_to = 0
        self._counted_lines = 0

    def __iter__(self) -> Iterator[Any | DecodeError]:
        if self._skip_to:
            self._skip()
        elif self._skip_ws() and self._buf[self._pos] not in '{["':
            self.not_json = True  # a README, a CSV...: not an archive of events at all
            return
        in_array = False
        fast = self._fast_lines
        while self._skip_ws():
            if fast and not in_array and self._pos >= self._fast_from:
                # The fast path, while each rest of a line is one JSON object. At `pos` (not
                # in an array) the general path would decode one value with the json module,
                # then skip whitespace. If the text from `pos` to the next newline in the
                # buffer is one JSON object and whitespace, both parsers read it (orjson is
                # strict RFC 8259, a subset of what the json module takes; lines that may nest
                # deeper than the json module's recursion limit lets it are left to it), as
                # the same object but for one thing: an integer beyond 64 bits, orjson reads
                # as the nearest float, which the decoders read as they read the int (the
                # test of this module's fast paths checks that they do). The general path
                # would end it just before that whitespace, and skip it and the newline: the
                # same position after it, and no read from the stream either way. The next
                # line's leading whitespace orjson skips itself; a blank line fails, and the
                # general path skips it.
                buf, pos = self._buf, self._pos
                taken = False
                while True:
                    nl = buf.find("\n", pos)
                    if nl < 0:
                        self._fast_from = len(buf)  # the general path reads the rest, and more
                        break
                    if (
                        nl - pos >= 2 * DEEP_NESTING
                        and buf.count("{", pos, nl) + buf.count("[", pos, nl) >= DEEP_NESTING
                    ):
                        self._fast_from = nl + 1
                        break
                    try:
                        value = _orjson_loads(buf[pos:nl])
                    except ValueError:  # orjson.JSONDecodeError; also lone surrogates
                        self._fast_from = nl + 1
                        break
                    if type(value) is not dict:
                        self._fast_from = nl + 1
                        break
                    if self._counted_to < pos:  # what the general path took since
                        self._counted_lines += buf.count("\n", self._counted_to, pos)
                    self._counted_to = pos = self._pos = nl + 1
                    self._counted_lines += 1
                    taken = True
                    yield value
                if taken:
                    continue
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

    def _skip(self) -> None:
        """Move to `skip_to`, reading the chunks the general path would have read by then."""
        while self._dropped + len(self._buf) < self._skip_to:
            self._pos = len(self._buf)
            if not self._fill():
                break
        self._pos = min(self._skip_to - self._dropped, len(self._buf))

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._read(self._chunk_chars)
        if not chunk:
            self._eof = True
            return False
        # Drop what is consumed so memory holds about one chunk plus the record in progress.
        pos = self._pos
        self._lines, self._col_base = self._where(pos)
        self._counted_to = self._counted_lines = 0
        self._buf = self._buf[pos:] + chunk
        self._dropped += pos
        self._fast_from = max(0, self._fast_from - pos)
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
            # Near the end of the buffer (where a record cut by the chunk boundary is), the
            # rest is decoded on its own: a JSONDecodeError counts the lines of what it is
            # given up to the error, for its message, which would be the whole buffer.
            tail = len(self._buf) - start <= TAIL_CHARS
            try:
                if tail:
                    value, end = self._decoder.raw_decode(self._buf[start:])
                    end += start
                else:
                    value, end = self._decoder.raw_decode(self._buf, start)
            except json.JSONDecodeError as e:
                if self._incomplete(e.pos + start if tail else e.pos, e.msg, start) and (
                    self._fill()
                ):
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

    def _incomplete(self, error_pos: int, msg: str, start: int) -> bool:
        """Could more input complete this record? (A cut at a chunk boundary fails at the
        end of the buffer, or as a string that does not end.)"""
        if self._eof or len(self._buf) - start > MAX_RECORD_CHARS:
            return False
        return error_pos >= len(self._buf) - 8 or msg.startswith("Unterminated string")

    def _where(self, pos: int) -> tuple[int, int]:
        """Newlines before `pos`, and characters since the last one."""
        if pos >= self._counted_to:
            n = self._counted_lines + self._buf.count("\n", self._counted_to, pos)
        else:
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


class Decoded:
    """The records of (part of) a file, decoded as `records` and `_decode` do: the events in
    input order, and the undecodable counted by reason."""

    __slots__ = ("events", "records", "undecodable")

    def __init__(self) -> None:
        self.records = 0
        self.undecodable: Counter[str] = Counter()
        self.events: list[AnyEvent] = []

    def add_value(self, value: Any | DecodeError) -> None:
        """One top-level value of a file."""
        if type(value) is dict and "Messages" not in value and "Body" not in value:
            self.records += 1  # `records` would yield it as it is: the one common case
            decoded = _decode_object(value)
            if isinstance(decoded, DecodeError):
                self.undecodable[decoded.reason.value] += 1
            else:
                self.events += decoded
            return
        for rec in records(value):
            self.add(rec)

    def add_all(
        self, values: Iterable[Any | DecodeError], progress: Callable[[int], None] | None = None
    ) -> None:
        """`add_value` for each, with the common case written out; `progress(records)` about
        every PROGRESS_EVERY records. (An exception from `values` leaves what came before.)"""
        undecodable, events = self.undecodable, self.events
        next_progress = self.records + PROGRESS_EVERY
        for value in values:
            if type(value) is dict and "Messages" not in value and "Body" not in value:
                self.records += 1
                decoded = _decode_object(value)
                if isinstance(decoded, DecodeError):
                    undecodable[decoded.reason.value] += 1
                else:
                    events += decoded
            else:
                self.add_value(value)
            if progress is not None and self.records >= next_progress:
                progress(self.records)
                next_progress = self.records + PROGRESS_EVERY

    def add(self, rec: dict[str, Any] | str | DecodeError) -> None:
        """One record."""
        self.records += 1
        decoded = _decode(rec)
        if isinstance(decoded, DecodeError):
            self.undecodable[decoded.reason.value] += 1
        else:
            self.events += decoded


def _decode(rec: dict[str, Any] | str | DecodeError) -> list[AnyEvent] | DecodeError:
    if isinstance(rec, DecodeError):
        return rec
    if isinstance(rec, str):
        return decode_body(rec)
    return _decode_object(rec)


def _decode_object(rec: dict[str, Any]) -> list[AnyEvent] | DecodeError:
    """`decode_object`. A raw SES event-publishing record (Firehose's JSON Lines) goes straight
    to its decoder, as `decode_body` sends one from an SNS envelope: decode_object would get
    there too (no `Type`, no `detail-type`: no envelope; its `eventType` is not TEXT_*...),
    only after checking what this checks, again."""
    event_type = rec.get("eventType")
    if (
        type(event_type) is str
        and event_type in SES_EVENT_TYPES
        and "Type" not in rec
        and "detail-type" not in rec
    ):
        return decode_known_event(rec, event_type)
    return decode_object(rec)


@dataclass(slots=True)
class FileRead:
    """What reading (part of) one file gave, and the warning for stderr if any."""

    decoded: Decoded
    warning: str | None = None
    unreadable: bool = False
    skipped: bool = False  # not JSON


def read_file(
    path: Path,
    *,
    skip_to: int = 0,
    chunk_chars: int = 0,
    progress: Callable[[int], None] | None = None,
) -> FileRead:
    """Read and decode one file's records (from character `skip_to`: see JsonStream).

    `progress(records)` is called every PROGRESS_EVERY records or so.
    """
    out = Decoded()
    try:
        with open_text(path) as f:
            stream = JsonStream(f.read, skip_to=skip_to, chunk_chars=chunk_chars)
            out.add_all(stream, progress)
    except (OSError, EOFError, zlib.error, UnicodeError) as e:
        return FileRead(
            out,
            f"replay: {path}: cannot read ({_why(e)}); records before the problem kept",
            unreadable=True,
        )
    if stream.not_json:
        return FileRead(out, skipped=True)
    if stream.errors:
        (line, col), more = stream.errors[0], len(stream.errors) - 1
        return FileRead(
            out,
            f"replay: {path}:{line}: invalid JSON at column {col}"
            + (f" (and {more} more records)" if more else "")
            + "; skipped to the next record",
        )
    return FileRead(out)


# -- reading in worker processes -------------------------------------------------------------
#
# The main process reads each file as `read_file` does, a chunk of text at a time, and sends
# the whole lines of each chunk (a block) to worker processes, which parse and decode them and
# send back the events. A block is taken only if every line in it is one JSON object or blank
# (JSON Lines, as Firehose and `jq -c` write them): then its records are the ones the general
# path reads there (see JsonStream.__iter__). From the first block that is not, or where a
# read fails, the rest of the file is read by a worker as `read_file` reads it, from that
# block's first character (`skip_to`): the same chunks are read before it, so what is kept
# and the warnings are the same too.

PARALLEL_MIN_BYTES = 8 << 20  # less input is read sooner than worker processes start
MAX_LINE_CHARS = 16 << 20  # a "line" this long is no JSON Line: the general path reads on
PATIENCE_S = 0.005  # waited for a worker's result before the main process parses itself

# A block's events, packed for the pipe: each Event as a plain tuple whose hints are a number
# in the worker's table (a TenantHints is sent once per worker, `new_hints`); the rare
# TenantStatusEvent as it is.
Packed = list[tuple[bytes, float, Channel, Outcome, int, int, tuple[str, ...]] | AnyEvent]


class _Packer:
    """Packs a worker's events: numbers its TenantHints objects (decoders share them)."""

    def __init__(self) -> None:
        self._ids: dict[int, tuple[TenantHints, int]] = {}  # id → (the object, kept alive; n)
        self._new: list[TenantHints] = []

    def pack(self, events: list[AnyEvent]) -> Packed:
        ids = self._ids
        out: Packed = []
        for ev in events:
            if type(ev) is Event:
                h = ev[5]
                hit = ids.get(id(h))
                if hit is None:
                    hit = ids[id(h)] = (h, len(ids))
                    self._new.append(h)
                out.append((ev[0], ev[1], ev[2], ev[3], ev[4], hit[1], ev[6]))
            else:
                out.append(ev)
        return out

    def new_hints(self) -> list[TenantHints]:
        """The hints numbered since the last call, in order."""
        new, self._new = self._new, []
        return new


class _Unpacked(_Packer):
    """For the tasks the main process runs itself: the events as they are."""

    def pack(self, events: list[AnyEvent]) -> Packed:
        return events  # type: ignore[return-value]


def _read_block(text: str, packer: _Packer) -> tuple[Any, ...]:
    """("fast", new hints, has content, records, undecodable, packed events), or ("slow",) if
    a line of the block is not one JSON object or blank, or is one the general path might
    read differently (see the fast path in JsonStream.__iter__)."""
    out = Decoded()
    undecodable, events = out.undecodable, out.events
    content = False
    pos, end = 0, len(text)
    while pos < end:
        nl = text.find("\n", pos)
        if nl < 0:
            nl = end
        line = text[pos:nl]
        pos = nl + 1
        try:
            value = _orjson_loads(line)
        except ValueError:  # orjson.JSONDecodeError; also lone surrogates (bad UTF-8)
            if line.strip(" \t\r"):
                return ("slow",)
            continue  # a blank line: whitespace to the general path too
        if type(value) is not dict:
            return ("slow",)
        if len(line) >= 2 * DEEP_NESTING and line.count("{") + line.count("[") >= DEEP_NESTING:
            return ("slow",)
        content = True
        if "Messages" in value or "Body" in value:
            out.add_value(value)
            continue
        out.records += 1  # `add_value`, written out for the common case
        decoded = _decode_object(value)
        if isinstance(decoded, DecodeError):
            undecodable[decoded.reason.value] += 1
        else:
            events += decoded
    packed = packer.pack(out.events)
    return ("fast", packer.new_hints(), content, out.records, dict(out.undecodable), packed)


def _read_rest(path: str, skip_to: int, chunk_chars: int, packer: _Packer) -> tuple[Any, ...]:
    """("file", new hints, records, undecodable, packed events, warning, unreadable,
    skipped)."""
    r = read_file(Path(path), skip_to=skip_to, chunk_chars=chunk_chars)
    d = r.decoded
    packed = packer.pack(d.events)
    return (
        "file",
        packer.new_hints(),
        d.records,
        dict(d.undecodable),
        packed,
        r.warning,
        r.unreadable,
        r.skipped,
    )


def _worker(wid: int, parent: int, tasks: Any, results: Any) -> None:
    """A worker process: ("block", seq, text) and ("file", seq, path, skip_to, chunk_chars)
    tasks until None, or until the main process (pid `parent`) is gone; each result goes back
    as (seq, wid, payload), in the order taken."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process stops the workers
    gc.disable()  # short-lived, and nothing it builds holds a cycle
    packer = _Packer()
    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # killed without a word: no one to work for
                return
            continue
        if task is None:
            return
        try:
            payload = _run_task(task, packer)
        except BaseException:  # reported to the main process, which raises
            payload = ("error", traceback.format_exc())
        results.put((task[1], wid, payload))


def _run_task(task: tuple[Any, ...], packer: _Packer) -> tuple[Any, ...]:
    if task[0] == "block":
        return _read_block(task[2], packer)
    return _read_rest(task[2], task[3], task[4], packer)


MAIN = -1  # the "worker" number of tasks the main process ran itself


class _Workers:
    """The worker processes, and their results by sequence number."""

    def __init__(self, n: int, on_result: Callable[[int, tuple[Any, ...]], None]) -> None:
        # fork: nothing to import again. Not where other threads may hold a lock the child
        # would inherit held (in a test runner, say): there the workers start afresh.
        fork = "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
        ctx: Any = multiprocessing.get_context("fork" if fork else "spawn")
        self.tasks: Any = ctx.Queue()
        self.results: Any = ctx.Queue()
        self.on_result = on_result  # (wid, payload) in the order each worker sent them
        self.procs = [
            ctx.Process(
                target=_worker, args=(i, os.getpid(), self.tasks, self.results), daemon=True
            )
            for i in range(n)
        ]
        for p in self.procs:
            p.start()
        self.seq = 0
        self.in_flight = 0
        self.done: dict[int, tuple[int, tuple[Any, ...]]] = {}
        self.packer = _Unpacked()  # for the tasks run here

    def submit(self, *task: Any, here: bool = False) -> int:
        """Queue a task for the workers, or run it `here`; its sequence number."""
        seq = self.seq
        self.seq += 1
        self.in_flight += 1
        if here:
            self._arrived(seq, MAIN, _run_task((task[0], seq, *task[1:]), self.packer))
        else:
            self.tasks.put((task[0], seq, *task[1:]))
        return seq

    def ready(self, seq: int) -> bool:
        return seq in self.done

    def result(self, seq: int) -> tuple[int, tuple[Any, ...]]:
        """(worker, payload) of task `seq`, which is `ready`."""
        return self.done.pop(seq)

    def steal(self) -> bool:
        """Run a task no worker has taken yet; False if there is none."""
        try:
            task = self.tasks.get_nowait()  # not while a worker waits for one
        except queue.Empty:
            return False
        self._arrived(task[1], MAIN, _run_task(task, self.packer))
        return True

    def wait(self, timeout: float) -> bool:
        """Take in the next result to arrive; False if none did in time."""
        try:
            s, wid, payload = self.results.get(timeout=timeout)
        except queue.Empty:
            if not all(p.is_alive() for p in self.procs):
                raise RuntimeError("replay: a reader process died") from None
            return False
        self._arrived(s, wid, payload)
        return True

    def _arrived(self, seq: int, wid: int, payload: tuple[Any, ...]) -> None:
        self.in_flight -= 1
        if payload[0] == "error":
            raise RuntimeError(f"replay: a reader process failed:\n{payload[1]}")
        self.on_result(wid, payload)
        self.done[seq] = (wid, payload)

    def close(self) -> None:
        for _ in self.procs:
            self.tasks.put(None)
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()
        for q in (self.tasks, self.results):
            q.cancel_join_thread()
            q.close()


@dataclass(slots=True, eq=False)
class _File:
    """A file being read in blocks."""

    path: Path
    reader: TextIO | None = None
    carry: str = ""  # the start of a line not yet whole
    chars: int = 0  # characters in the blocks sent: where `carry` starts
    content: bool = False  # a block taken so far has a record or other non-blank line
    fell_back: bool = False  # the rest is read as `read_file` reads it

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None


class _ParallelRead:
    """Reads files into a Replayer with worker processes, in input order (see above)."""

    def __init__(
        self,
        replayer: Replayer,
        files: Sequence[Path],
        workers: int,
        on_warning: Callable[[str], None],
    ) -> None:
        self.r = replayer
        self.files = files
        self.next_file = 0
        self.current: _File | None = None  # the file being read
        self.n_workers = workers
        self.on_warning = on_warning
        # What comes next in input order: ("block", seq, file, its first character),
        # ("rest", seq, file), ("stop", file, character: reading failed there), ("end", file).
        self.expected: deque[tuple[Any, ...]] = deque()
        self.workers: _Workers

    def run(self) -> None:
        self.workers = workers = _Workers(self.n_workers, self.r._worker_result)
        try:
            # Tasks queued or under way: enough to keep every worker busy while the main
            # process replays what came back (about 10 ms a block each)
            limit = 6 * self.n_workers + 2
            ahead = 2 * limit  # blocks read ahead of the one taken next
            while True:
                while workers.in_flight < limit and self._read_more():
                    pass
                if not self.expected:
                    break
                item = self.expected[0]
                if item[0] in ("block", "rest") and not workers.ready(item[1]):
                    # Not there yet. If it does not come soon (the workers get less CPU than
                    # they could use), rather than idle: run a task no worker has taken, or
                    # read the next block and parse it here.
                    if not (
                        workers.wait(PATIENCE_S)
                        or workers.steal()
                        or (len(self.expected) < ahead and self._read_more(here=True))
                    ):
                        workers.wait(1.0)
                    continue
                self._take(self.expected.popleft())
        finally:
            if self.current is not None:
                self.current.close()
            self.workers.close()

    def _take(self, item: tuple[Any, ...]) -> None:
        kind, r = item[0], self.r
        if kind == "block":
            _, seq, f, start = item
            wid, payload = self.workers.result(seq)
            if f.fell_back:
                return
            if payload[0] == "slow":
                self._fall_back(f, start)
                return
            _, _, content, n, undecodable, packed = payload
            f.content = f.content or content
            r._take(n, undecodable, r._unpack(wid, packed))
            r.progress.reading(r.stats.files + 1, r.files_total, r.stats.records)
        elif kind == "rest":
            _, seq, f = item
            wid, payload = self.workers.result(seq)
            _, _, n, undecodable, packed, warning, unreadable, skipped = payload
            r._take(n, undecodable, r._unpack(wid, packed))
            self._done(f, warning, unreadable, skipped)
        elif kind == "stop":
            _, f, start = item
            if not f.fell_back:
                self._fall_back(f, start)
        elif not item[1].fell_back:  # end
            self._done(item[1], None, False, False)

    def _done(self, f: _File, warning: str | None, unreadable: bool, skipped: bool) -> None:
        stats = self.r.stats
        stats.files += 1
        stats.unreadable_files += unreadable
        stats.skipped_files += skipped
        self.r.progress.reading(stats.files, self.r.files_total, stats.records)
        if warning:
            self.on_warning(warning)

    def _fall_back(self, f: _File, start: int) -> None:
        """Read the rest of `f` from character `start` as `read_file` does (from the start if
        nothing before it was taken: the not-JSON check looks at the first record)."""
        f.fell_back = True
        if f is self.current:
            f.close()
            self.current = None
        seq = self.workers.submit("file", str(f.path), start if f.content else 0, CHUNK_CHARS)
        self.expected.appendleft(("rest", seq, f))

    def _read_more(self, *, here: bool = False) -> bool:
        """Read one block and send it to the workers (or parse it `here`); False when every
        file is read."""
        f = self.current
        if f is None:
            if self.next_file >= len(self.files):
                return False
            f = self.current = _File(self.files[self.next_file])
            self.next_file += 1
            try:
                f.reader = open_text(f.path)
            except OSError:
                self._stop(f)
                return True
        try:
            data = f.reader.read(CHUNK_CHARS)  # type: ignore[union-attr]
        except (OSError, EOFError, zlib.error, UnicodeError):
            self._stop(f)
            return True
        if not data:
            if f.carry:
                self._send(f, f.carry, here)
            self.expected.append(("end", f))
            f.close()
            self.current = None
            return True
        if f.carry:
            data = f.carry + data
        cut = data.rfind("\n") + 1
        if cut == 0:
            f.carry = data
            if len(data) > MAX_LINE_CHARS:
                self._stop(f)
            return True
        f.carry = data[cut:]
        self._send(f, data[:cut] if cut < len(data) else data, here)
        return True

    def _send(self, f: _File, block: str, here: bool) -> None:
        seq = self.workers.submit("block", block, here=here)
        self.expected.append(("block", seq, f, f.chars))
        f.chars += len(block)

    def _stop(self, f: _File) -> None:
        """Reading `f` in blocks ends here; the rest is read as `read_file` does."""
        self.expected.append(("stop", f, f.chars))
        f.close()
        self.current = None


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
    """Reads records, then runs the events through an Engine on event time.

    With worker processes (`read_files`), the events are also replayed while the files are
    still being read, as far as it is safe to (see `_Speculation`).
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
        self._speculation: _Speculation | None = None
        self._start_run()

    # reading

    def read_file(self, path: Path) -> str | None:
        """Read one file's records; returns a warning for stderr, or None."""
        self.stats.files += 1
        before = self.stats.records

        def progress(records: int) -> None:
            self.progress.reading(self.stats.files, self.files_total, before + records)

        r = read_file(path, progress=progress)
        self._take(r.decoded.records, r.decoded.undecodable, self._compact(r.decoded.events))
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
        self._speculation = _Speculation(self)
        _ParallelRead(self, files, workers, on_warning).run()

    def _take(self, records: int, undecodable: Mapping[str, int], events: list[AnyEvent]) -> None:
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

    def _worker_result(self, wid: int, payload: tuple[Any, ...]) -> None:
        """Take the hints a worker numbered, in the order it sent them (see _Packer)."""
        if payload[0] in ("fast", "file"):
            table = self._worker_hints.setdefault(wid, [])
            table.extend(self._hints.setdefault(h, h) for h in payload[1])

    def _unpack(self, wid: int, packed: Packed) -> list[AnyEvent]:
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
            win = rec.windows.get(channel) or rec.window(channel)
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


class _Speculation:
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
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes that parse and decode while the replay runs (default: one per CPU but "
        f"one, for {PARALLEL_MIN_BYTES >> 20} MB of files or more; 0: none). The output is the "
        "same",
    )
    p.set_defaults(func=cmd_replay)


def default_workers(files: Sequence[Path]) -> int:
    """One worker process per CPU, for enough input to be worth starting them."""
    try:
        size = sum(f.stat().st_size for f in files)
    except OSError:
        size = 0  # reading will tell
    if size < PARALLEL_MIN_BYTES:
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # The main process replays, and parses too whenever it would otherwise wait (see
    # _Workers.result): one worker fewer than CPUs keeps them all busy.
    return cpus - 1 if cpus and cpus > 1 else 0


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

    def warn(warning: str) -> None:
        progress.done()
        print(warning, file=err)

    workers = args.workers
    if workers is None:
        workers = default_workers(files)
    replayer = Replayer(rules, on_decision=emit, progress=progress)
    # Nothing a replay builds holds a reference cycle, and a million events held for the sort
    # would make each collection walk them all.
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        replayer.read_files(files, workers=workers, on_warning=warn)
        if replayer.stats.records == 0:
            progress.done()
            print(f"replay: no records read from {', '.join(args.paths)}", file=err)
            return 1
        replayer.run()
    finally:
        if gc_enabled:
            gc.enable()
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
