"""Decision latency: from SendMessage of the event that crosses a pause threshold to the
pause call arriving at SES, under background load.

    python bench/latency.py [--crossings N] [--rate PER_S] [--background PER_S]

moto (SQS) and the SES stand-in run in their own processes, the daemon (`monitor.app.Daemon`)
in a third; this process produces. `--crossings` tenants (`c0000`...) are on a policy that
pauses at a 5 % bounce rate from 20 sent: each is primed with 20 Send events a few seconds
ahead, then one permanent bounce (1/20 = 5 %) crosses the threshold. Meanwhile ordinary
traffic for 1,000 other tenants flows at `--background` events/s.

Latency = the SES stand-in's receipt of UpdateReputationEntityCustomerManagedStatus for the
tenant minus the moment just before the crossing event's SendMessage, both on
`time.monotonic()` (CLOCK_MONOTONIC: one clock for every process on the machine). It
includes the receive, decode, evaluation, the SQLite commit, the outbox and GetTenant (the
tenant's ARN, first pause only). Crossings come at `--rate` a second: the ses_tenant action
paces itself at 5 SES calls a second (two per first pause), so faster crossings would measure
that deliberate queue, not the pipeline. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, machine, rules_dir, sns_bodies
from _procs import REGION, LocalAws, start_daemon

from monitor.aws import client_config, session
from monitor.sandbox.traffic import ACCOUNT, iso, sns

PRIME = 20  # Send events before the crossing bounce: 1/20 = the 5 % pause threshold
LEAD_S = 3.0  # how long before its crossing a tenant is primed
CROSSING_RULES = """\
policies:
  latency:
    window: 24h
    min_volume: 20
    email:
      bounce: {warn: 0.025, pause: 0.05}
    actions: [ses_tenant]
tenants:
  "c*": {policy: latency}
"""
UPDATE = "UpdateReputationEntityCustomerManagedStatus"


def crossing_name(k: int) -> str:
    return f"c{k:04d}"


def record(tenant: str, event_type: str, t: float) -> dict[str, Any]:
    """A minimal SES event-publishing record of one recipient, tagged with its tenant."""
    recipient = f"user{uuid.uuid4().hex[:8]}@example.net"
    mail = {
        "timestamp": iso(t),
        "source": f"news@{tenant}.example.com",
        "sourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{tenant}.example.com",
        "sendingAccountId": ACCOUNT,
        "messageId": f"0100{uuid.uuid4().hex}-000000",
        "destination": [recipient],
        "tags": {"ses:tenant-name": [tenant], "ses:configuration-set": [f"{tenant}-cs"]},
    }
    if event_type == "Send":
        return {"eventType": "Send", "mail": mail, "send": {}}
    return {
        "eventType": "Bounce",
        "mail": mail,
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": recipient}],
            "timestamp": iso(t),
            "feedbackId": uuid.uuid4().hex,
        },
    }


async def pace(start: float, at: float) -> None:
    delay = start + at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    now = time.time()
    names = [crossing_name(k) for k in range(args.crossings)]
    rules = rules_dir(work / "rules")
    (rules / "latency.yaml").write_text(CROSSING_RULES)
    duration = args.crossings / args.rate + LEAD_S
    count = int(args.background * (duration + 10))
    background = [b.decode() for b in sns_bodies(count, 1000, start=now - 600.0, span_s=600.0)]
    sent_at: dict[str, float] = {}
    with LocalAws(tenants=names) as aws:
        os.environ.update(aws.env)
        async with session().create_client(
            "sqs", region_name=REGION, config=client_config()
        ) as sqs:
            queue = (await sqs.create_queue(QueueName="bench-latency"))["QueueUrl"]
            settings = {
                "queue_urls": queue,
                "rules_dir": str(rules),
                "state_url": f"sqlite:///{work / 'state.db'}",
                "http_port": 0,
                "log_level": "info",
                "log_format": "json",
            }
            daemon = start_daemon(aws.env, settings, str(rules), str(work / "daemon.log"))
            try:
                start = time.monotonic() + 1.0
                await asyncio.gather(
                    _background(sqs, queue, background, args.background, start, duration),
                    _prime(sqs, queue, names, args.rate, start),
                    _cross(sqs, queue, names, args.rate, start, sent_at),
                )
                arrived = await _pauses(aws, set(names), timeout=30.0)
            finally:
                daemon.stop()
    latencies = sorted(arrived[n] - sent_at[n] for n in names if n in arrived)
    if len(latencies) < len(names):
        missing = sorted(set(names) - set(arrived))
        raise SystemExit(f"{len(missing)} crossings never paused, e.g. {missing[:5]}")
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "bench": "latency",
        "crossings": len(latencies),
        "rate_per_s": args.rate,
        "background_events_per_s": args.background,
        "p50_s": round(statistics.median(latencies), 4),
        "p90_s": round(q[89], 4),
        "p99_s": round(q[98], 4),
        "max_s": round(latencies[-1], 4),
        **machine(),
    }


async def _background(
    sqs: Any, queue: str, bodies: list[str], per_s: float, start: float, duration: float
) -> None:
    """Ordinary traffic in batches of ten, evenly spread."""
    batches = int(per_s * duration / 10)
    for b in range(batches):
        await pace(start, b * 10 / per_s)
        chunk = bodies[b * 10 : b * 10 + 10]
        await sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)],
        )


async def _prime(sqs: Any, queue: str, names: list[str], rate: float, start: float) -> None:
    for k, name in enumerate(names):
        await pace(start, k / rate)
        t = time.time()
        bodies = [sns(record(name, "Send", t)) for _ in range(PRIME)]
        for i in range(0, PRIME, 10):
            await sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])
                ],
            )


async def _cross(
    sqs: Any, queue: str, names: list[str], rate: float, start: float, sent_at: dict[str, float]
) -> None:
    for k, name in enumerate(names):
        await pace(start, k / rate + LEAD_S)
        body = sns(record(name, "Bounce", time.time()))
        sent_at[name] = time.monotonic()
        await sqs.send_message(QueueUrl=queue, MessageBody=body)


async def _pauses(aws: LocalAws, names: set[str], timeout: float) -> dict[str, float]:
    """Tenant → when its first pause call reached the stand-in (monotonic)."""
    assert aws.ses is not None
    deadline = time.monotonic() + timeout
    while True:
        arrived: dict[str, float] = {}
        for operation, params, at, _status in aws.ses.ask("calls"):
            if operation == UPDATE and params.get("SendingStatus") == "DISABLED":
                name = str(params.get("ReputationEntityReference", "")).split("/")[1:2]
                if name and name[0] in names:
                    arrived.setdefault(name[0], at)
        if len(arrived) == len(names) or time.monotonic() > deadline:
            return arrived
        await asyncio.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--crossings", type=int, default=200)
    ap.add_argument("--rate", type=float, default=2.3, help="crossings a second")
    ap.add_argument("--background", type=float, default=200.0, help="other events a second")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="repmon-bench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    emit(result)


if __name__ == "__main__":
    main()
