"""The daemon end to end against the least any consumer must do, on the same traffic.

    python bench/e2e.py [--events N] [--tenants N] [--pollers N]

moto (SQS) and the SES stand-in run in their own processes on 127.0.0.1. Two consumers, each in
its own process and each on its own fresh queue, take the same `--events` SNS-wrapped SES bodies
from a paced producer (this process; it keeps the queue under 100 deep, as moto's cost grows
with depth and a queue that keeps up is shallow):

- bare: `--pollers` long-poll loops, ReceiveMessage (MaxNumberOfMessages=10, WaitTimeSeconds
  as the daemon's) and DeleteMessageBatch of what came, nothing else;
- daemon: `monitor.app.Daemon` as `reputation-monitor run` runs it (decode, windows, policy,
  SQLite group commits, actions on the SES stand-in, metrics), with the same pollers.

Measured from the first send to the last delete: throughput, CPU of the consumer's process
(psutil: user + system, every thread), and for the daemon its SQS requests per event.
`ratio` = daemon events/s ÷ bare events/s; `cpu_per_event_ratio` = daemon CPU per event ÷
bare CPU per event. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from _common import emit, machine, profiles, rules_dir, sns_bodies
from _procs import REGION, Child, Counters, LocalAws, produce, start_bare, start_daemon

from monitor.aws import client_config, session

WAIT_S = 20  # the daemon's WaitTimeSeconds
STALL_S = 60.0  # no delete for this long: the bench is broken, stop


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def thread_cpu(pid: int) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


@dataclass
class Totals:
    """One consumer's figures summed over rounds."""

    events: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    sqs_requests: int = 0
    commits: int = 0
    threads: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 2),
            "events_per_s": round(self.events / self.seconds, 1),
            "cpu_s": round(self.cpu_s, 2),
            "cpu_us_per_event": round(self.cpu_s / self.events * 1e6, 1),
            "sqs_requests_per_event": round(self.sqs_requests / self.events, 4),
            "commits": self.commits,
            "busiest_threads_cpu_s": [round(t, 2) for t in sorted(self.threads, reverse=True)[:3]],
        }


async def measure(child: Child, sqs: Any, queue: str, bodies: list[str], totals: Totals) -> None:
    """Feed `bodies` to the consumer `child`, timed until every one is deleted."""
    n = len(bodies)
    start = child.ask("stats")
    threads0 = thread_cpu(child.pid)
    cpu0, t0 = cpu_seconds(child.pid), time.monotonic()
    async with Counters(child) as counters:
        target = start["deleted"] + n
        await produce(sqs, queue, bodies, consumed=lambda: counters.deleted() - start["deleted"])
        await _until_deleted(child, counters, target, n)
    t1, cpu1 = time.monotonic(), cpu_seconds(child.pid)
    threads1 = thread_cpu(child.pid)
    end = child.ask("stats")
    totals.events += n
    totals.seconds += t1 - t0
    totals.cpu_s += cpu1 - cpu0
    totals.sqs_requests += end["requests"] - start["requests"]
    totals.commits += end["commits"] - start["commits"]
    per_thread = [v - threads0.get(k, 0.0) for k, v in threads1.items()]
    if not totals.threads:
        totals.threads = sorted(per_thread, reverse=True)
    else:
        for i, v in enumerate(sorted(per_thread, reverse=True)[: len(totals.threads)]):
            totals.threads[i] += v


async def _until_deleted(child: Child, counters: Counters, target: int, n: int) -> None:
    last, last_change = counters.deleted(), time.monotonic()
    while counters.deleted() < target:
        if not child.process.is_alive():
            raise RuntimeError(f"{child.process.name} exited: see its log")
        if counters.deleted() != last:
            last, last_change = counters.deleted(), time.monotonic()
        elif time.monotonic() - last_change > STALL_S:
            raise RuntimeError(
                f"{child.process.name}: no progress in {STALL_S}s, {target - last} of {n} left"
            )
        await asyncio.sleep(0.01)


async def new_queue(sqs: Any, name: str) -> str:
    url: str = (await sqs.create_queue(QueueName=name))["QueueUrl"]
    return url


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    now = time.time()
    bodies = [
        b.decode() for b in sns_bodies(args.events, args.tenants, start=now - 1800.0, span_s=1500.0)
    ]
    # The tenants that can be paused exist in SES, so their pauses take the real call path.
    bad = [p.name for i, p in enumerate(profiles(args.tenants)) if i % 20 == 7]
    bare_totals, daemon_totals = Totals(), Totals()
    with LocalAws(tenants=bad) as aws:
        os.environ.update(aws.env)  # for this process's producer client
        async with session().create_client(
            "sqs", region_name=REGION, config=client_config()
        ) as sqs:
            q_bare = await new_queue(sqs, "bench-bare")
            q_daemon = await new_queue(sqs, "bench-daemon")
            settings = {
                "queue_urls": q_daemon,
                "rules_dir": str(rules_dir(work / "rules")),
                "state_url": f"sqlite:///{work / 'state.db'}",
                "http_port": 0,
                "pollers": args.pollers,
                "log_level": "info",
                "log_format": "json",
            }
            bare = start_bare(aws.env, q_bare, args.pollers, WAIT_S)
            daemon = start_daemon(aws.env, settings, str(work / "rules"), str(work / "daemon.log"))
            try:
                await asyncio.sleep(1.0)  # let the pollers settle into their long polls
                # Rounds alternate between the consumers, so a machine that gets busier or
                # quieter during the run weighs on both alike.
                size = -(-len(bodies) // args.rounds)
                for i in range(0, len(bodies), size):
                    chunk = bodies[i : i + size]
                    await measure(bare, sqs, q_bare, chunk, bare_totals)
                    await measure(daemon, sqs, q_daemon, chunk, daemon_totals)
            finally:
                bare.stop()
                daemon.stop()
    b, d = bare_totals.summary(), daemon_totals.summary()
    return {
        "bench": "e2e",
        "events": args.events,
        "tenants": args.tenants,
        "pollers": args.pollers,
        "rounds": args.rounds,
        "events_per_s": d["events_per_s"],
        "bare_events_per_s": b["events_per_s"],
        "ratio": round(d["events_per_s"] / b["events_per_s"], 3),
        "cpu_us_per_event": d["cpu_us_per_event"],
        "bare_cpu_us_per_event": b["cpu_us_per_event"],
        "cpu_per_event_ratio": round(d["cpu_us_per_event"] / b["cpu_us_per_event"], 3),
        "sqs_requests_per_event": d["sqs_requests_per_event"],
        "daemon": d,
        "bare": b,
        **machine(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--pollers", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=4, help="alternations between the consumers")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="repmon-bench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    emit(result)


if __name__ == "__main__":
    main()
