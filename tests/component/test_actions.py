"""ses_configuration_set, eventbridge and webhook against their local counterparts over HTTP:
the SES stand-in, moto's EventBridge (rule → SQS target), and an aiohttp receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiobotocore.session import get_session
from aiohttp import web
from prometheus_client import CollectorRegistry

from conftest import FakeTime, eventually, until_idle
from monitor.actions.actuator import Actuator
from monitor.actions.base import Action, ActionFailed, ActionRequest
from monitor.actions.eventbridge import EventBridgeAction
from monitor.actions.ses_configuration_set import (
    SesConfigurationSetAction,
    rules_configuration_sets,
)
from monitor.actions.webhook import WebhookAction
from monitor.app import ConfigError, Daemon
from monitor.aws import AwsError
from monitor.core.engine import Changes
from monitor.core.events import Channel
from monitor.core.rules import Policy, Rules, TenantRule
from monitor.core.state import Decision, Evidence, Kind
from monitor.metrics import Metrics
from monitor.ratelimit import TokenBucket
from monitor.sandbox import SesStandIn
from monitor.settings import load_settings
from monitor.store.sqlite import SqliteStore

EVIDENCE = Evidence(
    policy="standard",
    window="24h",
    counts={"sent": 1200, "bounce_permanent": 74},
    rates={"email.bounce": 0.061667},
    thresholds={"email.bounce": {"warn": 0.025, "pause": 0.05}},
)


def request(kind: Kind, tenant: str = "acme", audit_id: int = 7) -> ActionRequest:
    d = Decision(
        time=1_700_000_000.0,
        tenant=tenant,
        channel=Channel.EMAIL,
        kind=kind,
        actor="policy",
        reason="email.bounce 6.17% ≥ pause 5.00% over 24h (1200 sent)",
        evidence=EVIDENCE,
    )
    return ActionRequest(
        audit_id=audit_id,
        tenant=tenant,
        channel=Channel.EMAIL,
        kind=kind,
        reason=d.reason,
        entry=d.to_dict() | {"id": audit_id},
    )


async def no_sleep(_: float) -> None:
    return None


# --- ses_configuration_set against the SES stand-in ---


async def sending_enabled(ses: Any, name: str) -> bool:
    resp = await ses.get_configuration_set(ConfigurationSetName=name)
    return bool(resp["SendingOptions"]["SendingEnabled"])


def config_set_action(
    ses: Any, sets: dict[str, list[str]], t: FakeTime
) -> SesConfigurationSetAction:
    bucket = TokenBucket(1.0, 1, clock=t.clock, sleep=t.sleep)
    return SesConfigurationSetAction(ses, lambda tenant: sets.get(tenant, []), bucket=bucket)


async def test_configuration_sets_disabled_on_pause_enabled_on_resume_paced(
    standin: SesStandIn, ses: Any
) -> None:
    for name in ("acme-tx", "acme-marketing", "other"):
        standin.add_configuration_set(name)
    t = FakeTime()
    action = config_set_action(ses, {"acme": ["acme-tx", "acme-marketing"]}, t)

    detail = await action(request(Kind.PAUSE))
    assert detail == "sending disabled for configuration sets acme-marketing, acme-tx"
    assert not await sending_enabled(ses, "acme-tx")
    assert not await sending_enabled(ses, "acme-marketing")
    assert await sending_enabled(ses, "other")  # another tenant's set is untouched
    assert t.slept == [1.0]  # the second call waited for its token

    assert await action(request(Kind.RESUME)) == (
        "sending enabled for configuration sets acme-marketing, acme-tx"
    )
    assert await sending_enabled(ses, "acme-tx")
    assert await sending_enabled(ses, "acme-marketing")
    # The resume right after the pause is paced too: one call a second, across requests.
    assert t.slept == [1.0, 1.0, 1.0]
    puts = standin.calls_to("PutConfigurationSetSendingOptions")
    assert [(c.params["ConfigurationSetName"], c.params["SendingEnabled"]) for c in puts] == [
        ("acme-marketing", False),
        ("acme-tx", False),
        ("acme-marketing", True),
        ("acme-tx", True),
    ]


async def test_configuration_set_warning_does_nothing_and_no_sets_is_permanent(
    standin: SesStandIn, ses: Any
) -> None:
    action = config_set_action(ses, {}, FakeTime())
    assert await action(request(Kind.WARN)) == "nothing to do"
    with pytest.raises(ActionFailed, match="no configuration sets known for tenant 'acme'") as e:
        await action(request(Kind.PAUSE))
    assert e.value.transient is False
    assert standin.calls == []


async def test_a_missing_set_does_not_keep_the_others_sending(
    standin: SesStandIn, ses: Any
) -> None:
    standin.add_configuration_set("acme-tx")
    action = config_set_action(ses, {"acme": ["acme-gone", "acme-tx"]}, FakeTime())
    with pytest.raises(ActionFailed, match="sending disabled for acme-tx; failed acme-gone") as e:
        await action(request(Kind.PAUSE))
    assert e.value.transient is False
    assert "NotFoundException" in str(e.value)
    assert not await sending_enabled(ses, "acme-tx")


async def test_configuration_set_throttling_is_transient(standin: SesStandIn, ses: Any) -> None:
    standin.add_configuration_set("acme-tx")
    standin.fault = lambda op: (429, "TooManyRequestsException")
    action = config_set_action(ses, {"acme": ["acme-tx"]}, FakeTime())
    with pytest.raises(AwsError) as e:
        await action(request(Kind.PAUSE))
    assert e.value.transient is True and e.value.code == "TooManyRequestsException"


def test_configuration_sets_come_from_the_tenant_rule() -> None:
    rules = Rules(
        default_policy="p",
        policies={"p": Policy("p")},
        tenants=(TenantRule("bigco", configuration_sets=("bigco-tx", "bigco-mkt")),),
    )
    sets = rules_configuration_sets(rules)
    assert sets("bigco") == ["bigco-tx", "bigco-mkt"]
    assert sets("nobody") == []


# --- eventbridge against moto: bus → rule → SQS target ---


@pytest.fixture
async def bus_queue(aws_env: dict[str, str]) -> AsyncIterator[tuple[Any, str, Any, str]]:
    """An event bus whose rule sends `reputation-monitor` events to a fresh SQS queue."""
    suffix = uuid.uuid4().hex[:8]
    session = get_session()
    async with session.create_client("events") as events, session.create_client("sqs") as sqs:
        bus = f"repmon-{suffix}"
        await events.create_event_bus(Name=bus)
        queue = (await sqs.create_queue(QueueName=f"bus-{suffix}"))["QueueUrl"]
        arn = (await sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        await events.put_rule(
            Name=f"to-queue-{suffix}",
            EventBusName=bus,
            EventPattern=json.dumps({"source": ["reputation-monitor"]}),
        )
        await events.put_targets(
            Rule=f"to-queue-{suffix}", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}]
        )
        yield events, bus, sqs, queue


async def receive_all(sqs: Any, queue: str, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    async def more() -> bool:
        resp = await sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        got.extend(json.loads(m["Body"]) for m in resp.get("Messages", []))
        return len(got) >= n

    await eventually(more, timeout=10, what=f"{n} events on the queue")
    return got


async def test_eventbridge_events_reach_a_rule_target(
    bus_queue: tuple[Any, str, Any, str],
) -> None:
    events, bus, sqs, queue = bus_queue
    action = EventBridgeAction(events, bus)
    pause, resume = request(Kind.PAUSE, audit_id=1), request(Kind.RESUME, audit_id=2)
    assert (await action(pause)).startswith("Tenant Paused ")
    assert (await action(resume)).endswith(f" on bus {bus}")
    assert await action(request(Kind.CLEAR)) == "nothing to do"

    got = sorted(await receive_all(sqs, queue, 2), key=lambda e: e["detail"]["id"])
    assert [(e["source"], e["detail-type"]) for e in got] == [
        ("reputation-monitor", "Tenant Paused"),
        ("reputation-monitor", "Tenant Resumed"),
    ]
    detail = got[0]["detail"]
    assert detail == {
        "id": 1,
        "time": 1_700_000_000.0,
        "tenant": "acme",
        "channel": "email",
        "decision": "pause",
        "actor": "policy",
        "reason": pause.reason,
        "evidence": EVIDENCE.to_dict(),
    }
    assert got[1]["detail"]["decision"] == "resume"


async def test_eventbridge_warning_and_would_pause_are_tenant_warnings(
    bus_queue: tuple[Any, str, Any, str],
) -> None:
    events, bus, sqs, queue = bus_queue
    action = EventBridgeAction(events, bus)
    await action(request(Kind.WARN, audit_id=1))
    await action(request(Kind.WOULD_PAUSE, audit_id=2))
    got = sorted(await receive_all(sqs, queue, 2), key=lambda e: e["detail"]["id"])
    assert [(e["detail-type"], e["detail"]["decision"]) for e in got] == [
        ("Tenant Warning", "warn"),
        ("Tenant Warning", "would_pause"),
    ]


class FailingEvents:
    """PutEvents answering 200 with a failed entry, as EventBridge does."""

    def __init__(self, code: str) -> None:
        self.code = code

    async def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": self.code, "ErrorMessage": "no"}],
        }


@pytest.mark.parametrize(
    ("code", "transient"),
    [("ThrottlingException", True), ("InternalFailure", True), ("AccessDeniedException", False)],
)
async def test_eventbridge_failed_entry_is_an_error(code: str, transient: bool) -> None:
    with pytest.raises(AwsError) as e:
        await EventBridgeAction(FailingEvents(code), "default")(request(Kind.PAUSE))
    assert e.value.code == code and e.value.transient is transient


# --- webhook against a local aiohttp receiver ---

SECRET = "whsec-test-0123456789"


class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies signatures as the webhook docs say."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.deliveries: list[dict[str, Any]] = []
        self.hang = asyncio.Event()  # set: requests hang (until released)
        self.release = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        ts = request.headers["X-Repmon-Timestamp"]
        mac = hmac.new(SECRET.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        verified = hmac.compare_digest(request.headers["X-Repmon-Signature"], "sha256=" + mac)
        fresh = abs(time.time() - int(ts)) <= 300
        self.deliveries.append(
            {"verified": verified and fresh, "body": json.loads(raw), "raw": raw}
        )
        if self.hang.is_set():
            await self.release.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"ok": status < 300}, status=status)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hooks/repmon", self.handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hooks/repmon"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state.db")
    yield s
    await s.close()


async def run_through_actuator(
    action: Action, store: SqliteStore, kind: Kind = Kind.PAUSE
) -> tuple[dict[str, Any], Metrics]:
    """Commit a decision with `action`, run the real actuator until idle, return the audit."""
    d = Decision(
        time=1.0,
        tenant="acme",
        channel=Channel.EMAIL,
        kind=kind,
        actor="policy",
        reason="email.bounce 9% ≥ pause 5%",
        actions=(action.name,),
    )
    [audit_id] = await store.commit(Changes(decisions=[d]))
    metrics = Metrics(CollectorRegistry())
    act = Actuator(
        actions={action.name: action},
        store=store,
        metrics=metrics,
        clock=lambda: 2.0,
        sleep=no_sleep,
    )
    act.submit(audit_id, d.to_dict() | {"id": audit_id}, d.actions)
    await until_idle(act)
    [audited] = await store.audit(tenant="acme")
    return audited, metrics


async def test_webhook_is_signed_and_a_server_error_is_retried(
    http: aiohttp.ClientSession, store: SqliteStore
) -> None:
    async with Receiver([500, 200]) as rx:
        audited, metrics = await run_through_actuator(WebhookAction(http, rx.url, SECRET), store)
    assert [d["verified"] for d in rx.deliveries] == [True, True]
    body = rx.deliveries[-1]["body"]
    assert body["type"] == "tenant_paused"
    assert (body["id"], body["tenant"], body["channel"], body["decision"], body["actor"]) == (
        audited["id"],
        "acme",
        "email",
        "pause",
        "policy",
    )
    assert body["reason"] == "email.bounce 9% ≥ pause 5%"
    assert set(body) == {"type", "id", "time", "tenant", "channel", "decision", "actor"} | {
        "reason",
        "evidence",
    }
    assert b"@" not in rx.deliveries[-1]["raw"]
    assert audited["actions"] == [{"action": "webhook", "result": "ok", "detail": "HTTP 200"}]
    assert (
        metrics.registry.get_sample_value(
            "repmon_actions_total", {"action": "webhook", "result": "ok"}
        )
        == 1
    )


async def test_webhook_client_error_is_not_retried(
    http: aiohttp.ClientSession, store: SqliteStore
) -> None:
    async with Receiver([400]) as rx:
        audited, _ = await run_through_actuator(WebhookAction(http, rx.url, SECRET), store)
    assert len(rx.deliveries) == 1
    [result] = audited["actions"]
    assert result["result"] == "error"
    assert result["detail"].startswith("webhook answered HTTP 400")
    assert rx.url not in result["detail"]


async def test_webhook_a_wrong_secret_fails_verification(http: aiohttp.ClientSession) -> None:
    async with Receiver([]) as rx:
        await WebhookAction(http, rx.url, "not-the-secret")(request(Kind.RESUME))
    [delivery] = rx.deliveries
    assert delivery["verified"] is False
    assert delivery["body"]["type"] == "tenant_resumed"


async def test_webhook_timeouts_and_refused_connections_are_transient(
    http: aiohttp.ClientSession,
) -> None:
    async with Receiver([]) as rx:
        rx.hang.set()
        with pytest.raises(ActionFailed, match="webhook not delivered") as e:
            await WebhookAction(http, rx.url, SECRET, timeout_s=0.2)(request(Kind.PAUSE))
        assert e.value.transient is True
        url = rx.url
    with pytest.raises(ActionFailed, match="webhook not delivered: ClientConnectorError") as e:
        await WebhookAction(http, url, SECRET)(request(Kind.PAUSE))
    assert e.value.transient is True
    assert "hooks" not in str(e.value)  # the URL (which may hold a credential) stays out


@pytest.mark.parametrize(
    ("url", "secret", "message"),
    [
        ("https://hooks.example/x", None, "needs a secret"),
        ("https://hooks.example/x", "", "needs a secret"),
        (None, SECRET, "needs an http"),
        ("ftp://hooks.example/x", SECRET, "needs an http"),
    ],
)
async def test_webhook_refuses_to_run_unsigned_or_without_url(
    http: aiohttp.ClientSession, url: str | None, secret: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        WebhookAction(http, url, secret)


# --- wiring: a policy that uses an action needs its settings ---


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "REPMON_WEBHOOK_URL"),
        ({"webhook_url": "https://hooks.example/x"}, "REPMON_WEBHOOK_SECRET"),
        ({"webhook_secret": SECRET}, "REPMON_WEBHOOK_URL"),
    ],
)
async def test_daemon_refuses_webhook_rules_without_its_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], named: str
) -> None:
    for var in ("REPMON_WEBHOOK_URL", "REPMON_WEBHOOK_SECRET"):
        monkeypatch.delenv(var, raising=False)
    rules = Rules(
        default_policy="p", policies={"p": Policy("p", actions=("ses_tenant", "webhook"))}
    )
    s = load_settings(
        queue_urls="http://127.0.0.1:1/111122223333/q",
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        **settings,
    )
    with pytest.raises(ConfigError, match=f"invalid setting {named}: the rules use the webhook"):
        await Daemon(s, rules, stop=asyncio.Event()).run()
    assert not (tmp_path / "state.db").exists()  # refused before touching anything
