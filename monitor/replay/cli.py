"""`reputation-monitor replay PATH...`: the command's options, and the run."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from monitor.core.rules import RulesError
from monitor.core.state import Decision
from monitor.replay.reading import expand
from monitor.replay.replayer import Replayer
from monitor.replay.report import Progress, decision_line, table
from monitor.replay.workers import PARALLEL_MIN_BYTES
from monitor.rulesfile import load_rules_dir


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
    # Workers.result): one worker fewer than CPUs keeps them all busy.
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
