"""Reading in worker processes: the main process reads each file a block of whole lines at
a time, as `read_file` would, and worker processes parse and decode the blocks.

A block is taken only if every line in it is one JSON object or blank (JSON Lines, as
Firehose and `jq -c` write them): then its records are the ones the general path reads there
(see JsonStream.__iter__). From the first block that is not, or where a read fails, the rest
of the file is read by a worker as `read_file` reads it, from that block's first character
(`skip_to`): the same chunks are read before it, so what is kept and the warnings are the
same too.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import signal
import threading
import traceback
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from monitor.core.decode import AnyEvent, DecodeError
from monitor.core.decode.typed import decode_ses_record
from monitor.core.events import Channel, Event, Outcome, TenantHints
from monitor.replay import reading
from monitor.replay.reading import DEEP_NESTING, Decoded, decode_record, open_text, read_file

if TYPE_CHECKING:
    from monitor.replay.replayer import Replayer

_orjson_loads = orjson.loads
_SES_RECORD_START = '{"eventType":'  # how Firehose (SES's own JSON) starts a record

PARALLEL_MIN_BYTES = 8 << 20  # less input is read sooner than worker processes start
MAX_LINE_CHARS = 16 << 20  # a "line" this long is no JSON Line: the general path reads on
PATIENCE_S = 0.005  # waited for a worker's result before the main process parses itself

# A block's events, packed for the pipe: each Event as a plain tuple whose hints are a number
# in the worker's table (a TenantHints is sent once per worker, `new_hints`); the rare
# TenantStatusEvent as it is.
Packed = list[tuple[bytes, float, Channel, Outcome, int, int, tuple[str, ...]] | AnyEvent]


class Packer:
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


class _Unpacked(Packer):
    """For the tasks the main process runs itself: the events as they are."""

    def pack(self, events: list[AnyEvent]) -> Packed:
        return events  # type: ignore[return-value]


def _read_block(text: str, packer: Packer) -> tuple[Any, ...]:
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
        deep = len(line) >= 2 * DEEP_NESTING and line.count("{") + line.count("[") >= DEEP_NESTING
        if not deep and line.startswith(_SES_RECORD_START):
            # A raw SES record in the plain case, typed: the Event the lines below would make
            # of it, without building its dicts (tests/unit/test_decode_typed.py).
            event = decode_ses_record(line)
            if event is not None:
                content = True
                out.records += 1
                events.append(event)
                continue
        try:
            value = _orjson_loads(line)
        except ValueError:  # orjson.JSONDecodeError; also lone surrogates (bad UTF-8)
            if line.strip(" \t\r"):
                return ("slow",)
            continue  # a blank line: whitespace to the general path too
        if type(value) is not dict or deep:
            return ("slow",)
        content = True
        if "Messages" in value or "Body" in value:
            out.add_value(value)
            continue
        out.records += 1  # `add_value`, written out for the common case
        decoded = decode_record(value)
        if isinstance(decoded, DecodeError):
            undecodable[decoded.reason.value] += 1
        else:
            events += decoded
    packed = packer.pack(out.events)
    return ("fast", packer.new_hints(), content, out.records, dict(out.undecodable), packed)


def _read_rest(path: str, skip_to: int, chunk_chars: int, packer: Packer) -> tuple[Any, ...]:
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
    packer = Packer()
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


def _run_task(task: tuple[Any, ...], packer: Packer) -> tuple[Any, ...]:
    if task[0] == "block":
        return _read_block(task[2], packer)
    return _read_rest(task[2], task[3], task[4], packer)


MAIN = -1  # the "worker" number of tasks the main process ran itself


class Workers:
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


class ParallelRead:
    """Reads files into a Replayer with worker processes, in input order (see the module)."""

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
        self.workers: Workers

    def run(self) -> None:
        self.workers = workers = Workers(self.n_workers, self.r.learn_hints)
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
            r.take(n, undecodable, r.unpack(wid, packed))
            r.progress.reading(r.stats.files + 1, r.files_total, r.stats.records)
        elif kind == "rest":
            _, seq, f = item
            wid, payload = self.workers.result(seq)
            _, _, n, undecodable, packed, warning, unreadable, skipped = payload
            r.take(n, undecodable, r.unpack(wid, packed))
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
        seq = self.workers.submit(
            "file", str(f.path), start if f.content else 0, reading.CHUNK_CHARS
        )
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
            data = f.reader.read(reading.CHUNK_CHARS)  # type: ignore[union-attr]
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
