"""Abuse: a flood of distinct tenant names (every event a new tag) must keep memory bounded.

    python bench/flood.py [--events 2000000] [--max-tenants 200000]

Feeds the engine one Send per event, each with a new `tenant` tag, in batches of 10 with a
commit-sized drain after each (as the daemon does), and prints resident memory as it goes.
Last line: {"events", "max_tenants", "tenants", "evicted", "peak_rss_mb", "events_per_s"}.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.core.engine import Engine
from monitor.core.events import Channel, Event, Outcome, TenantHints, event_key
from monitor.rulesfile import load_rules_dir


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--max-tenants", type=int, default=200_000)
    args = ap.parse_args()
    engine = Engine(
        load_rules_dir(Path(__file__).resolve().parents[1] / "rules"), max_tenants=args.max_tenants
    )
    now = time.time()
    peak = rss_mb()
    started = time.perf_counter()
    for i in range(args.events):
        ev = Event(
            event_key("flood", str(i)),
            now,
            Channel.EMAIL,
            Outcome.SEND,
            1,
            TenantHints(tenant_tag=f"flood-{i}"),
        )
        engine.ingest([ev], now, now)
        if i % 10 == 9:
            engine.evaluate(now)
            engine.drain()
        if i % 200_000 == 0:
            peak = max(peak, rss_mb())
            print(
                f"{i:>9} events  {len(engine.tenants):>7} tenants  rss {rss_mb():7.1f} MB",
                file=sys.stderr,
            )
    peak = max(peak, rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "events": args.events,
                "max_tenants": args.max_tenants,
                "tenants": len(engine.tenants),
                "evicted": engine.evicted,
                "peak_rss_mb": round(peak, 1),
                "events_per_s": round(args.events / elapsed),
            }
        )
    )


if __name__ == "__main__":
    main()
