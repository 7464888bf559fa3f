"""`reputation-monitor demo`: the real daemon against moto SQS and the SES stand-in.

Everything runs on 127.0.0.1 with no AWS account: ~20 tenants send SNS-wrapped SES events
through a paced producer (moto's SQS slows down with queue depth, as real SQS does not, so the
queue is kept shallow), one tenant starts bouncing hard, and the daemon pauses it through the
same UpdateReputationEntityCustomerManagedStatus call it makes against AWS.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from monitor import logs
from monitor.app import Daemon
from monitor.aws import session
from monitor.core.events import Channel
from monitor.core.rules import Rate
from monitor.core.state import Status
from monitor.rulesfile import load_rules_dir, write_rules_dir
from monitor.sandbox import Sandbox
from monitor.sandbox.traffic import TenantProfile, Traffic, sns
from monitor.settings import load_settings

NAMES = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "gringotts",
    "aperture",
    "monarch",
    "vandelay",
    "pied-piper",
    "dunder",
    "oscorp",
    "nakatomi",
    "trial-newco",
    "massive",
    "duff",
    "krusty",
    "planet",
)
BAD = "initech"
STRICT = "trial-newco"
RATE_PER_S = 250  # SES events per second into the queue
BAD_AFTER_S = 6.0  # when the bad tenant's list goes bad

DEMO_RULES = f"""\
# Demo assignments: "trial-*" tenants are new, so strict; umbrella is recognised by its
# configuration set alone (its mail carries no tenant tag).
tenants:
  "trial-*": {{policy: strict}}
  umbrella:
    configuration_sets: [umbrella-marketing]
  {BAD}: {{policy: standard}}
"""


def run_demo(*, seconds: float, tenants: int, http_port: int) -> int:
    logs.configure("warning", "console" if sys.stderr.isatty() else "json")
    with Sandbox() as sandbox, tempfile.TemporaryDirectory(prefix="repmon-demo-") as tmp:
        # This process's AWS clients (the daemon's included) now talk to the sandbox only.
        os.environ.update(sandbox.env())
        return asyncio.run(_demo(sandbox, Path(tmp), seconds, tenants, http_port))


def _profiles(n: int) -> list[TenantProfile]:
    names = list(NAMES[: max(2, min(n, len(NAMES)))])
    for must in (BAD, STRICT):
        if must not in names:
            names[-1 if must == STRICT else -2] = must
    out = []
    for name in names:
        p = TenantProfile(name, bounce=0.004, complaint=0.00005, weight=1.0)
        if name == "umbrella":
            p.configuration_set, p.tag_tenant = "umbrella-marketing", False
        if name == BAD:
            p.weight = max(6.0, n / 2)  # a big sender: its volume passes min_volume quickly
        out.append(p)
    return out


async def _demo(sandbox: Sandbox, tmp: Path, seconds: float, n_tenants: int, http_port: int) -> int:
    profiles = _profiles(n_tenants)
    for p in profiles:
        sandbox.ses.add_tenant(p.name)
    rules_dir = write_rules_dir(tmp / "rules", {"demo.yaml": DEMO_RULES})
    rules = load_rules_dir(rules_dir)

    sess = session()
    async with sess.create_client("sqs") as sqs:
        dlq = (await sqs.create_queue(QueueName="repmon-demo-dlq"))["QueueUrl"]
        dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        queue = (
            await sqs.create_queue(
                QueueName="repmon-demo-events",
                Attributes={
                    "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}'
                },
            )
        )["QueueUrl"]
        token = secrets.token_urlsafe(16)
        settings = load_settings(
            queue_urls=queue,
            rules_dir=str(rules_dir),
            state_url=f"sqlite:///{tmp / 'state.db'}",
            http_port=http_port,
            admin_token=token,
            log_level="warning",
            pollers=2,
        )
        stop = asyncio.Event()
        daemon = Daemon(settings, rules, stop=stop, wait_time_s=2)
        run = asyncio.create_task(daemon.run())
        await asyncio.wait(
            {run, asyncio.ensure_future(daemon.started.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if run.done():
            return await run
        assert daemon.http is not None
        url = f"http://127.0.0.1:{daemon.http.bound_port}"
        print(f"reputation-monitor demo: {len(profiles)} tenants, queue {queue}")
        print(f"  metrics   {url}/metrics")
        cli = f"REPMON_ADMIN_TOKEN={token} reputation-monitor tenants"
        print(f"  tenants   {cli} list --url {url}")
        print(f"  inspect   {cli} show {BAD} --url {url}")
        print(f"  pause     {cli} pause globex --reason 'on-call test' --url {url}")
        print(f"  resume    {cli} resume globex --reason 'done' --url {url}")
        print(
            f"  {BAD} starts bouncing hard after {BAD_AFTER_S:.0f}s; "
            f"{STRICT} is on the strict policy\n"
        )
        sent = 0
        traffic = Traffic(profiles)
        started = time.time()
        paused_at: float | None = None
        next_table = started
        code = 1
        try:
            while time.time() - started < seconds:
                now = time.time()
                if now - started >= BAD_AFTER_S:
                    next(p for p in profiles if p.name == BAD).bounce = 0.12
                sent += await _produce(sqs, queue, traffic, now, per_tick=RATE_PER_S // 10)
                if now >= next_table:
                    # A live table on a terminal; a line every 5 s when piped to a log.
                    next_table = now + (1.0 if sys.stdout.isatty() else 5.0)
                    _table(daemon, now, started, sent)
                if paused_at is None and sandbox.ses.sending_status(BAD) == "DISABLED":
                    paused_at = now
                if paused_at is not None and now - paused_at >= 2.0:
                    code = 0
                    break
                await asyncio.sleep(0.1)  # pacing the producer, not waiting for a result
            _table(daemon, time.time(), started, sent)
            await _finish(sandbox, url, code)
        finally:
            stop.set()
            await run
        return code


async def _produce(sqs: Any, queue: str, traffic: Traffic, now: float, *, per_tick: int) -> int:
    bodies: list[str] = []
    while len(bodies) < per_tick:
        mail = traffic.mail(now)
        bodies.extend(sns(r) for r in traffic.records(mail, now))
    for i in range(0, len(bodies), 10):
        await sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])],
        )
    return len(bodies)


def _table(daemon: Daemon, now: float, started: float, sent: int) -> None:
    engine = daemon.engine
    processed = daemon.pipeline.events if daemon.pipeline else 0
    rows = []
    for name, rec in engine.tenants.items():
        if Channel.EMAIL not in rec.windows:
            continue
        snap = rec.snapshot(Channel.EMAIL, now)
        bounce, complaint = snap.rate(Rate.EMAIL_BOUNCE), snap.rate(Rate.EMAIL_COMPLAINT)
        rows.append((rec.state.status, snap.email_sent, bounce, complaint, name, rec.policy.name))
    order = {Status.PAUSED: 0, Status.WARNING: 1, Status.PROBATION: 2, Status.HEALTHY: 3}
    rows.sort(key=lambda r: (order[r[0]], -r[2], r[4]))
    tty = sys.stdout.isatty()
    if tty:
        print("\x1b[2J\x1b[H", end="")
    print(
        f"t+{now - started:5.1f}s  events sent {sent:6d}  processed {processed:6d}  "
        f"tenants {len(rows)}"
    )
    print(
        f"  {'tenant':<14} {'policy':<9} {'status':<10} {'sent':>6} {'bounce':>8} {'complaint':>9}"
    )
    for st, vol, b, c, name, pol in rows[: 12 if not tty else 30]:
        mark = {"paused": "!!", "warning": " !"}.get(st.value, "  ")
        print(f"{mark}{name:<14} {pol:<9} {st.value:<10} {vol:>6} {b:>8.2%} {c:>9.3%}")
    print(flush=True)


async def _finish(sandbox: Sandbox, url: str, code: int) -> None:
    calls = sandbox.ses.calls_to("UpdateReputationEntityCustomerManagedStatus")
    if code != 0:
        print(f"demo: {BAD} was not paused in time (try a larger --seconds)")
        return
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/v1/audit") as resp:
            audit = await resp.json()
        async with http.get(f"{url}/metrics") as resp:
            text = await resp.text()
    print("decisions (GET /api/v1/audit):")
    for e in audit:
        acts = ", ".join(f"{a['action']}={a['result']}" for a in e["actions"]) or "-"
        print(f"  {_clock(e['time'])} {e['tenant']:<12} {e['decision']:<6} {e['reason']}  [{acts}]")
    print(f"PAUSED: {BAD}")
    print("SES stand-in received:")
    for c in calls:
        print(f"  {c.operation} {c.params}  → HTTP {c.status}")
    for line in text.splitlines():
        if (
            line.startswith("repmon_tenant_status{")
            and f'tenant="{BAD}"' in line
            and 'status="paused"' in line
        ):
            print(f"{url}/metrics: {line}")
    print(f"metrics were served at {url}/metrics")


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))
