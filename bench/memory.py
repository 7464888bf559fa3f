"""Resident memory of the engine's state for many tenants, with a day of events each.

    python bench/memory.py [--tenants N] [--mails N]

Drives the Engine directly, as the daemon does (ingest per message, evaluate and drain every
10 messages), with `--tenants` tenants each sending `--mails` mails spread over the last 24
hours: a Send event per mail and a Delivery per recipient (1-3), some bounces and complaints.
The events arrive in time order and "now" follows them, so every event is in its window.
`rss_mb` is the process's resident set after a full garbage collection: the interpreter and
the imported modules (`baseline_rss_mb`, measured before any tenant exists) plus the state.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from _common import emit, machine, rules, tenant_name

from monitor.core.engine import Engine
from monitor.core.events import Channel, Event, Outcome, TenantHints, event_key

DAY_S = 24 * 3600.0
BATCH = 10


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def coprime_step(n: int) -> int:
    """A step that visits every tenant once per round, in a scrambled order."""
    step = 7919
    while math.gcd(step, n) != 1:
        step += 2
    return step


def events(tenants: int, per_tenant: int, now: float, seed: int = 7) -> Iterator[Event]:
    """Each tenant's mails at even intervals over the last day, tenants interleaved: a Send
    per mail and a Delivery per recipient (1-3), about 1 % bounces and some complaints.
    Generated in time order without holding the schedule (it would outweigh the state)."""
    rng = random.Random(seed)
    step = coprime_step(tenants)
    total = tenants * per_tenant
    for j in range(total):
        i = j * step % tenants
        t = now - DAY_S + DAY_S * (j + 0.5) / total
        h = TenantHints(tenant_tag=tenant_name(i))
        message_id = f"0100{j:032x}-000000"
        recipients = rng.choice((1, 1, 1, 2, 3))
        yield Event(event_key("ses", message_id, "Send", str(t)), t, Channel.EMAIL,
                    Outcome.SEND, recipients, h)  # fmt: skip
        for r in range(recipients):
            x = rng.random()
            outcome = (
                Outcome.BOUNCE_PERMANENT
                if x < 0.01
                else Outcome.COMPLAINT
                if x < 0.0105
                else Outcome.DELIVERY
            )
            domains = ("example.net",) if outcome is not Outcome.DELIVERY else ()
            yield Event(event_key("ses", message_id, outcome.value, str(r), str(t)), t + 1.0,
                        Channel.EMAIL, outcome, 1, h, domains)  # fmt: skip


def process(engine: Engine, batch: list[Event]) -> None:
    """One received batch, as the daemon handles it: one clock reading for all of it."""
    if batch:
        now = batch[-1].time + 2.0  # received a moment after the newest event happened
        for ev in batch:
            engine.ingest((ev,), now, now)
        engine.evaluate(now)
        engine.drain()
        batch.clear()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--tenants", type=int, default=300_000)
    # One mail a tenant (~2.6 events) keeps the day's keys under the dedupe's capacity of 1M;
    # `--mails 3` fills it (the dedupe then holds its full million keys).
    ap.add_argument("--mails", type=int, default=1, help="mails per tenant over the day")
    args = ap.parse_args()

    engine = Engine(rules())
    baseline = rss_mb()
    now = time.time()
    t0 = time.perf_counter()
    n = 0
    batch: list[Event] = []
    for ev in events(args.tenants, args.mails, now):
        n += 1
        batch.append(ev)
        if len(batch) == BATCH:
            process(engine, batch)
    process(engine, batch)
    seconds = time.perf_counter() - t0
    rss = rss_mb()
    buckets = sum(len(w.buckets) for r in engine.tenants.values() for w in r.windows.values())
    emit(
        {
            "bench": "memory",
            "tenants": len(engine.tenants),
            "events": n,
            "buckets": buckets,
            "dedupe_keys": len(engine.dedupe),
            "rss_mb": round(rss, 1),
            "baseline_rss_mb": round(baseline, 1),
            "state_mb": round(rss - baseline, 1),
            "seconds": round(seconds, 1),
            **machine(),
        }
    )


if __name__ == "__main__":
    main()
