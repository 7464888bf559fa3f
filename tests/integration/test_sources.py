"""Tenant attribution across sources: tenants learned from SES, and SMS paused alone."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import eventually, queue_depth, send_paced, start
from monitor.core.events import Channel
from monitor.core.rules import Rate
from monitor.core.tenants import UNASSIGNED
from monitor.sandbox import Sandbox
from monitor.sandbox.traffic import TenantProfile, Traffic, sns


@pytest.mark.parametrize("learned", [True, False])
async def test_rate_is_right_when_only_bounces_carry_the_tenant_name(
    learned: bool,
    sandbox: Sandbox,
    sqs: Any,
    queue: str,
    rules_dir: Path,
    tmp_path: Path,
) -> None:
    name = f"zeta-{uuid.uuid4().hex[:6]}"
    cs = f"{name}-marketing"
    if learned:  # SES knows the configuration set belongs to the tenant
        sandbox.ses.add_tenant(
            name, resources=[f"arn:aws:ses:us-east-1:111122223333:configuration-set/{cs}"]
        )
    # No `tenant` tag: sends and deliveries name only the configuration set; SES adds the
    # tenant name to bounce records alone, as AWS documents.
    profile = TenantProfile(
        name, bounce=0.03, complaint=0.0, transient=0.0, configuration_set=cs, tag_tenant=False
    )
    traffic = Traffic([profile], seed=3)
    now = time.time()
    records = [r for _ in range(40) for r in traffic.records(traffic.mail(now, profile), now)]
    sent = sum(len(r["mail"]["destination"]) for r in records if r["eventType"] == "Send")
    bounced = sum(
        len(r["bounce"]["bouncedRecipients"]) for r in records if r["eventType"] == "Bounce"
    )
    assert bounced > 0
    running = await start(queue, rules_dir, tmp_path / "state.db")
    try:
        await send_paced(sqs, queue, [sns(r) for r in records])
        await eventually(lambda: queue_depth(sqs, queue, below=1), what="all messages deleted")
        engine = running.daemon.engine
        snap = engine.tenants[name].snapshot(Channel.EMAIL, time.time())
        if learned:
            assert snap.email_sent == sent
            assert snap.rate(Rate.EMAIL_BOUNCE) == pytest.approx(bounced / sent)
            assert UNASSIGNED not in engine.tenants
        else:  # without the map the sends are lost to `unassigned` and the rate is wrong
            assert (
                engine.tenants[UNASSIGNED].snapshot(Channel.EMAIL, time.time()).email_sent == sent
            )
            assert snap.rate(Rate.EMAIL_BOUNCE) == 1.0
    finally:
        assert await running.stop() == 0


SMS_RULES = """\
policies:
  small-sms:
    min_volume: 60
    email:
      bounce:    {warn: 0.025, pause: 0.05}
    sms:
      failure:   {warn: 0.10, pause: 0.20}
      opt_out:   {warn: 0.01, pause: 0.02}
default_policy: small-sms
"""


def sms_record(n: int, tenant: str, status: str, t: float) -> dict[str, Any]:
    final = {"DELIVERED": "TEXT_DELIVERED", "CARRIER_BLOCKED": "TEXT_CARRIER_BLOCKED"}[status]
    return {
        "eventType": final,
        "eventVersion": "1.0",
        "eventTimestamp": int(t * 1000),
        "isFinal": True,
        "originationPhoneNumber": "+12065550123",
        "destinationPhoneNumber": f"+1425555{n:04d}",
        "messageId": f"{tenant}-{n}",
        "messageStatus": status,
        "configurationSetName": f"{tenant}-sms",
        "context": {"tenant": tenant},
    }


async def test_sms_tenant_paused_on_carrier_failures_while_email_keeps_flowing(
    sandbox: Sandbox,
    sqs: Any,
    queue: str,
    tmp_path: Path,
) -> None:
    name = f"textco-{uuid.uuid4().hex[:6]}"
    sandbox.ses.add_tenant(name)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "policies.yaml").write_text(SMS_RULES)
    now = time.time()
    email = TenantProfile(name, bounce=0.0, complaint=0.0, transient=0.0)
    traffic = Traffic([email], seed=5)
    bodies = [sns(r) for _ in range(40) for r in traffic.records(traffic.mail(now, email), now)]
    # 100 texts, every fourth blocked by the carrier: 25 % ≥ the 20 % pause threshold.
    bodies += [
        sns(sms_record(i, name, "CARRIER_BLOCKED" if i % 4 == 0 else "DELIVERED", now))
        for i in range(100)
    ]
    running = await start(queue, rules, tmp_path / "state.db")
    try:
        await send_paced(sqs, queue, bodies)
        await eventually(lambda: queue_depth(sqs, queue, below=1), what="all messages deleted")
        state = running.daemon.engine.tenants[name].state
        assert state.paused_channels == ["sms"]
        assert state.channels[Channel.EMAIL].status.value == "healthy"
        # The email channel is untouched at SES: no tenant-wide pause for an SMS problem.
        arn_calls = [
            c
            for c in sandbox.ses.calls_to("UpdateReputationEntityCustomerManagedStatus")
            if f"tenant/{name}/" in c.params["ReputationEntityReference"]
        ]
        assert arn_calls == []
        assert sandbox.ses.sending_status(name) == "ENABLED"
        assert (
            running.sample(
                "repmon_tenant_rate", {"tenant": name, "rate": "failure", "window": "24h"}
            )
            == 0.25
        )
        assert running.sample("repmon_tenant_status", {"tenant": name, "status": "paused"}) == 1.0
        paused = {"tenant": name, "channel": "sms"}
        assert running.sample("repmon_tenant_channel_paused", paused) == 1.0
        assert running.sample("repmon_tenant_channel_paused", paused | {"channel": "email"}) == 0.0
    finally:
        assert await running.stop() == 0
