"""`reputation-monitor replay` over a gzip archive of SES events.

    python bench/replay.py [--events N] [--tenants N] [--archive PATH] [--workers N]

Writes `--events` SES event-publishing records (monitor.sandbox.traffic: Send, Delivery per
recipient, some Bounce and Complaint) as one gzip JSON Lines file, the shape a Firehose event
destination leaves in S3, spread over the last day (or reuses `--archive` if it exists), then
times `python -m monitor replay --json --rules DIR ARCHIVE` run from the repository root,
start to exit, output to /dev/null. `events_per_s` = records / wall seconds of that process;
its CPU time (with its worker processes': `cpu_s`; the main process alone: `main_cpu_s`) and
peak resident memory (the main process; `peak_rss_total_mb` adds its workers', sampled) are
reported beside it. `--workers` is passed on (default: the command's own choice). The last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import itertools
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import psutil
from _common import ROOT, Records, emit, machine, profiles, rules_dir, stamp


def write_archive(path: Path, events: int, tenants: int) -> None:
    now = time.time()
    day = 24 * 3600.0
    records = Records(profiles(tenants)).iter(now - day, day / events * 1.6)
    with gzip.open(path, "wb", compresslevel=1) as f:
        for chunk in iter(lambda: list(itertools.islice(records, 10_000)), []):
            f.write(b"".join(orjson.dumps(r) + b"\n" for r in chunk))
            events -= len(chunk)
            if events <= 0:
                break


def run_replay(archive: Path, rules: Path, workers: int | None) -> dict[str, float]:
    """Run the command; wall seconds, CPU seconds and peak RSS of the process (and of its
    workers)."""
    command = [sys.executable, "-m", "monitor", "replay", "--json", "--rules", str(rules)]
    if workers is not None:
        command += ["--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = stamp()
    proc = subprocess.Popen(
        [*command, str(archive)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ps = psutil.Process(proc.pid)
    peak = peak_total = main_cpu = 0.0
    while proc.poll() is None:
        try:
            own = rss = ps.memory_info().rss
            t = ps.cpu_times()
            main_cpu = t.user + t.system
            for child in ps.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += child.memory_info().rss
        except psutil.NoSuchProcess:
            break
        peak = max(peak, own)
        peak_total = max(peak_total, rss)
        time.sleep(0.05)
    seconds = stamp() - t0
    _, err = proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and the workers it reaped
    if proc.returncode != 0:
        raise SystemExit(f"replay exited {proc.returncode}: {err.decode()[-2000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "main_cpu_s": main_cpu,
        "peak_rss_mb": peak / 2**20,
        "peak_rss_total_mb": peak_total / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--archive", type=Path, help="reuse (or create) this .jsonl.gz")
    ap.add_argument("--workers", type=int, help="replay --workers N (default: not passed)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="repmon-bench-") as tmp:
        archive = args.archive or Path(tmp) / "events.jsonl.gz"
        if not archive.exists():
            t0 = stamp()
            write_archive(archive, args.events, args.tenants)
            print(f"wrote {archive} in {stamp() - t0:.1f}s", file=sys.stderr)
        with gzip.open(archive, "rb") as f:
            events = sum(1 for _ in f)
        size_mb = archive.stat().st_size / 2**20
        result = run_replay(archive, rules_dir(Path(tmp) / "rules"), args.workers)
    emit(
        {
            "bench": "replay",
            "events": events,
            "archive_mb": round(size_mb, 1),
            "seconds": round(result["seconds"], 2),
            "events_per_s": round(events / result["seconds"]),
            "cpu_s": round(result["cpu_s"], 2),
            "main_cpu_s": round(result["main_cpu_s"], 2),
            "peak_rss_mb": round(result["peak_rss_mb"], 1),
            "peak_rss_total_mb": round(result["peak_rss_total_mb"], 1),
            **machine(),
        }
    )


if __name__ == "__main__":
    main()
