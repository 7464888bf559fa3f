"""The daemon in-process against moto's SQS server and the SES stand-in, over real HTTP."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

import monitor
from conftest import eventually, queue_depth, send_paced, start
from monitor.core.events import Channel
from monitor.core.state import Status
from monitor.sandbox import Sandbox
from monitor.sandbox.traffic import TenantProfile, Traffic, sns


def traffic_bodies(good_a: str, good_b: str, bad: str, seed: int = 1) -> tuple[list[str], int]:
    """70 mails (~110 recipients) each for two good tenants and a bad one (12 % bounces)."""
    profiles = [
        TenantProfile(good_a, bounce=0.0, complaint=0.0, transient=0.01),
        TenantProfile(good_b, bounce=0.01, complaint=0.0, transient=0.0),
        TenantProfile(bad, bounce=0.12, complaint=0.0, transient=0.0),
    ]
    traffic = Traffic(profiles, seed=seed)
    bodies: list[str] = []
    now = time.time()
    for p in profiles:
        for _ in range(70):
            mail = traffic.mail(now, p)
            bodies.extend(sns(r) for r in traffic.records(mail, now))
    traffic.rng.shuffle(bodies)
    return bodies, len(bodies)


async def test_bad_tenant_paused_through_ses_good_ones_not(
    sandbox: Sandbox, sqs: Any, queue: str, rules_dir: Path, tmp_path: Path
) -> None:
    # The sandbox lives for the session: unique names keep tests apart.
    suffix = uuid.uuid4().hex[:6]
    names = {k: f"{k}-{suffix}" for k in ("good-a", "good-b", "bad")}
    arns = {k: sandbox.ses.add_tenant(v) for k, v in names.items()}
    bodies, n = traffic_bodies(names["good-a"], names["good-b"], names["bad"])
    dup = bodies[:5]  # redelivered records: the same events again
    running = await start(queue, rules_dir, tmp_path / "state.db")
    try:
        await send_paced(sqs, queue, bodies + dup)
        await eventually(lambda: queue_depth(sqs, queue, below=1), what="every message deleted")
        d = running.daemon
        assert d.pipeline is not None
        processed = running.sample(
            "repmon_messages_total", {"queue": d.sources[0].name, "result": "processed"}
        )
        duplicates = running.sample(
            "repmon_messages_total", {"queue": d.sources[0].name, "result": "duplicate"}
        )
        # Every record counted once; the 5 resent ones (and any SQS redelivery) are duplicates.
        assert processed == n
        assert duplicates is not None and duplicates >= 5
        # The queue reads empty as soon as SQS has applied the last delete, which can be
        # before the daemon has read SQS's answer and counted it: wait for the daemon's side.
        await eventually(
            lambda: sum(s.deleted for s in d.sources) == processed + duplicates,
            what="every message handled, deleted (as SQS answered the daemon)",
        )

        calls = [
            c
            for c in sandbox.ses.calls_to("UpdateReputationEntityCustomerManagedStatus")
            if c.params["ReputationEntityReference"] in arns.values()
        ]
        assert [
            (c.params["ReputationEntityReference"], c.params["SendingStatus"]) for c in calls
        ] == [(arns["bad"], "DISABLED")]
        # The pause names its maker, as CloudTrail will show it.
        assert calls[0].user_agent.startswith(f"reputation-monitor/{monitor.__version__} ")
        assert sandbox.ses.sending_status(names["bad"]) == "DISABLED"
        assert sandbox.ses.sending_status(names["good-a"]) == "ENABLED"
        assert d.engine.tenants[names["bad"]].state.status is Status.PAUSED
        assert d.engine.tenants[names["good-a"]].state.status is Status.HEALTHY
        assert d.engine.tenants[names["good-b"]].state.status is Status.HEALTHY

        async with aiohttp.ClientSession() as http:
            async with http.get(f"{running.url}/metrics") as resp:
                text = await resp.text()
            async with http.get(f"{running.url}/readyz") as resp:
                assert resp.status == 200
            async with http.get(f"{running.url}/api/v1/tenants?status=paused") as resp:
                paused = await resp.json()
        assert f'repmon_tenant_status{{status="paused",tenant="{names["bad"]}"}} 1.0' in text
        assert f'repmon_tenant_status{{status="healthy",tenant="{names["good-a"]}"}} 1.0' in text
        assert 'repmon_actions_total{action="ses_tenant",result="ok"} 1.0' in text
        assert f'repmon_tenant_pauses_total{{reason="rate",tenant="{names["bad"]}"}} 1.0' in text
        assert [t["tenant"] for t in paused] == [names["bad"]]
        assert (
            paused[0]["paused_channels"] == ["email"] and paused[0]["rates"]["email.bounce"] >= 0.05
        )
        assert "@" not in text  # no recipient address in any label
        before = {t: r.snapshot(Channel.EMAIL, d.clock()) for t, r in d.engine.tenants.items()}
    finally:
        assert await running.stop() == 0

    # A restart resumes exactly where the last commit left off.
    again = await start(queue, rules_dir, tmp_path / "state.db")
    try:
        d2 = again.daemon
        after = {t: r.snapshot(Channel.EMAIL, d2.clock()) for t, r in d2.engine.tenants.items()}
        assert after == before
        assert d2.engine.tenants[names["bad"]].state.status is Status.PAUSED
        await send_paced(sqs, queue, bodies[:10])  # already counted before the restart
        await eventually(lambda: queue_depth(sqs, queue, below=1), what="redelivered batch deleted")
        name2 = d2.sources[0].name
        # Nothing is processed again: every message handled is a duplicate. At least the ten
        # sent; SQS is at-least-once, and moto's concurrent long polls can hand one message to
        # both pollers, each copy one more duplicate (which is why this is not `== 10`).
        assert (
            again.sample("repmon_messages_total", {"queue": name2, "result": "processed"}) is None
        )
        again_duplicates = again.sample(
            "repmon_messages_total", {"queue": name2, "result": "duplicate"}
        )
        assert again_duplicates is not None and again_duplicates >= 10
        await eventually(
            lambda: sum(s.deleted for s in d2.sources) == again_duplicates,
            what="every duplicate deleted (as SQS answered the daemon)",
        )
        again_calls = [
            c
            for c in sandbox.ses.calls_to("UpdateReputationEntityCustomerManagedStatus")
            if c.params["ReputationEntityReference"] in arns.values()
        ]
        assert again_calls == calls  # no second pause after the restart
    finally:
        assert await again.stop() == 0


async def test_undecodable_message_is_counted_and_left_for_redrive(
    sqs: Any, queue: str, rules_dir: Path, tmp_path: Path
) -> None:
    # One poller: with two, SQS may hand the one message to both at once (at-least-once; moto's
    # concurrent long polls race too), and each copy is counted, so the count below could be 2.
    running = await start(queue, rules_dir, tmp_path / "state.db", pollers=1)
    try:
        await sqs.send_message(QueueUrl=queue, MessageBody='{"eventType": "Bounce", "bounce": ')
        name = running.daemon.sources[0].name
        await eventually(
            lambda: running.sample(
                "repmon_messages_total", {"queue": name, "result": "undecodable"}
            ),
            what="undecodable counted",
        )
        assert (
            running.sample(
                "repmon_undecodable_messages_total", {"queue": name, "reason": "invalid_json"}
            )
            == 1
        )
        assert await queue_depth(sqs, queue) == 1  # not deleted: in flight, then back to the queue
    finally:
        assert await running.stop() == 0


async def test_undecodable_message_goes_to_the_dead_letter_queue_with_its_reason(
    sqs: Any, queue: str, rules_dir: Path, tmp_path: Path
) -> None:
    dlq = (await sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}"))["QueueUrl"]
    running = await start(queue, rules_dir, tmp_path / "state.db", dead_letter_queue_url=dlq)
    try:
        body = json.dumps({"hello": "world"})
        await sqs.send_message(QueueUrl=queue, MessageBody=body)
        await eventually(lambda: queue_depth(sqs, queue, below=1), what="source message deleted")
        got = await sqs.receive_message(
            QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=1
        )
        [m] = got["Messages"]
        assert m["Body"] == body
        assert m["MessageAttributes"]["repmon-reason"]["StringValue"] == "unknown_shape"
    finally:
        assert await running.stop() == 0


SAMPLES = Path(__file__).parents[1] / "data" / "samples"


async def test_audit_records_automatic_manual_and_ses_pauses(
    sandbox: Sandbox, sqs: Any, queue: str, rules_dir: Path, tmp_path: Path
) -> None:
    """Every pause lands in the audit log with its actor: policy, admin:<token id>, ses."""
    suffix = uuid.uuid4().hex[:6]
    bad, manual = f"auto-{suffix}", f"manual-{suffix}"
    for t in (bad, manual):
        sandbox.ses.add_tenant(t)
    profile = TenantProfile(bad, bounce=0.2, complaint=0.0, transient=0.0)
    traffic = Traffic([profile], seed=9)
    now = time.time()
    bodies = [sns(r) for _ in range(50) for r in traffic.records(traffic.mail(now, profile), now)]
    # SES itself disabling tenant "acme" (the sample's tenant ARN), through EventBridge.
    bodies.append((SAMPLES / "ses-eventbridge-tenant-sending-disabled-aws.json").read_text())
    running = await start(queue, rules_dir, tmp_path / "state.db", admin_token="tok")
    try:
        await send_paced(sqs, queue, bodies)
        await eventually(lambda: queue_depth(sqs, queue, below=1), what="all messages deleted")
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{running.url}/api/v1/tenants/{manual}/pause",
                json={"reason": "customer asked"},
                headers={"Authorization": "Bearer tok"},
            ) as resp:
                assert resp.status == 200
            entries = {}
            for t in (bad, manual, "acme"):
                async with http.get(f"{running.url}/api/v1/audit", params={"tenant": t}) as resp:
                    entries[t] = [e for e in await resp.json() if e["decision"] == "pause"]
        [auto] = entries[bad]
        assert auto["actor"] == "policy" and auto["evidence"]["rates"]["email.bounce"] >= 0.05
        assert auto["evidence"]["thresholds"]["email.bounce"] == {"warn": 0.025, "pause": 0.05}
        assert auto["actions"][0]["action"] == "ses_tenant"
        # No channel named: every channel is paused, one entry each.
        assert sorted(e["channel"] for e in entries[manual]) == ["email", "sms"]
        for by_hand in entries[manual]:
            assert by_hand["actor"].startswith("admin:") and by_hand["reason"] == "customer asked"
        [by_ses] = entries["acme"]
        assert by_ses["actor"] == "ses" and "AWS_MANAGED" in by_ses["reason"]
        assert by_ses["actions"] == []  # SES already paused it: nothing to call
        assert running.daemon.engine.tenants["acme"].state.paused_channels == ["email"]
    finally:
        assert await running.stop() == 0
