"""Archive files to decoded events: files and directories, gzip or not, JSON documents,
JSON Lines, Firehose S3 objects (`}{`) and SQS receive-message dumps, each record decoded
exactly as the daemon decodes it (`decode_object` / `decode_body`). Broken JSON costs only
its own record, and is reported with its file and line."""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from monitor.core.decode import AnyEvent, DecodeError, DecodeReason
from monitor.core.decode.envelope import decode_body, decode_object
from monitor.core.decode.ses import SES_EVENT_TYPES, decode_known_event

CHUNK_CHARS = 1 << 20
# A record this long without a parse is broken, not merely cut by a chunk boundary.
MAX_RECORD_CHARS = 64 << 20
TAIL_CHARS = 1 << 16  # see JsonStream._value
# A line that may nest this deep takes the general path: the json module gives up at its
# recursion limit (1000 frames, its own and the caller's), orjson at 1024 levels.
DEEP_NESTING = 500
PROGRESS_EVERY = 20_000  # records or events between progress updates (stderr TTY only)

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
            decoded = decode_record(value)
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
                decoded = decode_record(value)
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
    return decode_record(rec)


def decode_record(rec: dict[str, Any]) -> list[AnyEvent] | DecodeError:
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
            f"replay: {path}: cannot read ({why(e)}); records before the problem kept",
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


def why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
