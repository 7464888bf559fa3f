"""What a replay prints: decision lines (`--json`), the per-tenant table, and the progress
line on a terminal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from monitor.core.state import Decision


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
