"""Replay of a month of mixed events decides what the live daemon decides over the same events.

The daemon's "now" is the wall clock, replay's the newest event time. With a policy window
longer than the month, no event falls out of either's window, so both see the same window at
each event. The daemon evaluates once per received batch, replay once per event instant: every
batch sent here holds at most one event per tenant, in event-time order, and the next batch
goes only once the last is deleted, so each tenant sees its events one at a time in both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import io
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiobotocore.session import get_session

from conftest import eventually, start
from monitor import replay
from monitor.rulesfile import write_rules_dir
from monitor.sandbox import Sandbox
from monitor.sandbox.traffic import Mail, TenantProfile, Traffic, sns

DAY = 86_400.0
RULES = """\
policies:
  month:                      # the standard thresholds over a window longer than the month
    window: 31d
    min_volume: 20
    email:
      bounce:    {warn: 0.025, pause: 0.05}
      complaint: {warn: 0.0005, pause: 0.001}
    sms:
      failure:   {warn: 0.10, pause: 0.20}
      opt_out:   {warn: 0.01, pause: 0.02}
default_policy: month
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_rules_dir(tmp_path / "rules", {"month.yaml": RULES})


@pytest.fixture
async def sqs(aws_env: dict[str, str]) -> AsyncIterator[Any]:
    async with get_session().create_client("sqs") as client:
        yield client


def sms(rng: random.Random, t: float, tenant: str, failed: bool) -> dict[str, Any]:
    return {
        "eventType": "TEXT_CARRIER_BLOCKED" if failed else "TEXT_DELIVERED",
        "eventVersion": "1.0",
        "eventTimestamp": int(t * 1000),
        "isFinal": True,
        "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
        "messageStatus": "CARRIER_BLOCKED" if failed else "DELIVERED",
        "destinationPhoneNumber": f"+1425555{rng.randrange(10_000):04d}",
        "context": {"tenant": tenant},
    }


def month_of_events(names: dict[str, str], end: float) -> list[tuple[str, dict[str, Any]]]:
    """(tenant, record) in event-time order, strictly increasing, over the 29 days to `end`:
    two good email tenants (one also sends SMS), one whose bounces jump mid-month, and an SMS
    tenant whose carrier failures jump."""
    rng = random.Random(3)
    profiles = {
        k: TenantProfile(names[k], bounce=b, complaint=0.0, transient=0.05)
        for k, b in (("good-a", 0.0), ("good-b", 0.02), ("bad", 0.01))
    }
    bad_late = TenantProfile(names["bad"], bounce=0.35, complaint=0.0, transient=0.05)
    traffic = Traffic(list(profiles.values()), seed=3)
    kinds = ["good-a", "good-b", "bad", "good-a-sms", "texter"]
    start = end - 29 * DAY
    step = 29 * DAY / 200
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(200):
        t = start + i * step
        kind = kinds[i % len(kinds)] if i % 7 else rng.choice(kinds)
        late = t >= start + 15 * DAY
        if kind in ("good-a-sms", "texter"):
            tenant = names["good-a" if kind == "good-a-sms" else "texter"]
            failing = 0.45 if kind == "texter" and late else 0.03
            out.append((tenant, sms(rng, t, tenant, rng.random() < failing)))
            continue
        profile = bad_late if kind == "bad" and late else profiles[kind]
        # One recipient a mail, outcome a minute later: every record its own instant.
        mail = Mail(f"0100{uuid.UUID(int=rng.getrandbits(128)).hex}-000000", t, profile)
        mail.recipients = [f"user{rng.randrange(10**6)}@example.net"]
        out.extend((profile.name, r) for r in traffic.records(mail, t + 60))
    return out


def batches(events: list[tuple[str, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Consecutive runs of at most ten records, no tenant twice in one."""
    out: list[list[dict[str, Any]]] = []
    seen: set[str] = set()
    for tenant, rec in events:
        if not out or tenant in seen or len(out[-1]) == 10:
            out.append([])
            seen = set()
        out[-1].append(rec)
        seen.add(tenant)
    return out


def body(rec: dict[str, Any]) -> str:
    """SES events through SNS, SMS events raw: the mix a real queue gets."""
    return sns(rec) if "mail" in rec else json.dumps(rec)


def comparable(entry: dict[str, Any]) -> tuple[Any, ...]:
    """A decision without its time (the daemon's is the wall clock) or action results."""
    return (
        entry["channel"],
        entry["decision"],
        entry["actor"],
        entry["reason"],
        json.dumps(entry["evidence"], sort_keys=True),
        [a["action"] for a in entry["actions"]],
    )


def by_tenant(entries: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for e in entries:
        out[e["tenant"]].append(comparable(e))
    return dict(out)


async def test_replay_decides_as_the_live_daemon_did(
    sandbox: Sandbox, sqs: Any, rules_dir: Path, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    names = {k: f"{k}-{suffix}" for k in ("good-a", "good-b", "bad", "texter")}
    events = month_of_events(names, end=time.time() - 3600)
    records = [r for _, r in events]

    # Live: one poller; a batch at a time, each deleted before the next is sent.
    queue = (await sqs.create_queue(QueueName=f"replay-{suffix}"))["QueueUrl"]
    running = await start(queue, rules_dir, tmp_path / "state.db", pollers=1, dry_run=True)
    daemon = running.daemon
    try:
        source = daemon.sources[0]
        sent = 0
        for batch in batches(events):
            await sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[{"Id": str(j), "MessageBody": body(r)} for j, r in enumerate(batch)],
            )
            sent += len(batch)
            await eventually(lambda n=sent: source.deleted >= n, what="batch deleted")
        assert source.deleted == len(records)  # no redelivery: each evaluated exactly once
        assert daemon.http is not None and daemon.actuator is not None
        await asyncio.wait_for(daemon.actuator.join(), 10)  # dry-run results recorded
        url = f"http://127.0.0.1:{daemon.http.bound_port}/api/v1/audit?limit=5000"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            live = [e for e in await resp.json() if e["tenant"].endswith(suffix)]
    finally:
        assert await running.stop() == 0

    # Replay: the same records as a Firehose archive would hold them, gzip and flat, twice over.
    archive = tmp_path / "archive"
    archive.mkdir()
    with gzip.open(archive / "part-0.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    (archive / f"ses-events-1-{suffix}").write_text(
        "".join(json.dumps(r, separators=(",", ":")) for r in records)
    )
    parser = argparse.ArgumentParser()
    replay.add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(["replay", "--json", "--rules", str(rules_dir), str(archive)])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert ns.func(ns) == 0
    replayed = [e for e in map(json.loads, out.getvalue().splitlines()) if e["type"] == "decision"]
    assert f"{2 * len(records)} events ({len(records)} duplicates, 0 late)" in err.getvalue()

    kinds = {(e["tenant"], e["channel"], e["decision"]) for e in live}
    assert (names["bad"], "email", "pause") in kinds  # not vacuous
    assert (names["texter"], "sms", "pause") in kinds
    assert not any(e["decision"] == "pause" for e in live if e["tenant"] == names["good-a"])
    assert by_tenant(replayed) == by_tenant(live)
