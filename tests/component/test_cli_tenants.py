"""`reputation-monitor tenants` against a running daemon (in-process, over real HTTP), with
moto SQS/EventBridge and the SES stand-in behind it; the CLI runs on a thread, as it blocks."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from aiohttp import web

from conftest import eventually
from monitor.app import Daemon
from monitor.cli import tenants
from monitor.rulesfile import load_rules_dir, write_rules_dir
from monitor.sandbox import Sandbox
from monitor.sandbox.traffic import TenantProfile, Traffic, sns
from monitor.settings import load_settings

TOKEN = "cli-test-token-0123456789abcdef"


async def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(tenants.main, list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


class Hooks:
    """A webhook receiver that records what it was sent."""

    def __init__(self) -> None:
        self.types: list[str] = []
        self.url = ""
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.types.append((await request.json())["type"])
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hook"


class Env:
    """A running daemon and what it talks to."""

    def __init__(self, daemon: Daemon, task: asyncio.Task[int], tenant: str) -> None:
        self.daemon, self.task, self.tenant = daemon, task, tenant

    @property
    def url(self) -> str:
        assert self.daemon.http is not None
        return f"http://127.0.0.1:{self.daemon.http.bound_port}"


async def start_daemon(
    sandbox: Sandbox,
    tmp_path: Path,
    *,
    tenant: str,
    token: str | None,
    rules: str,
    **settings: Any,
) -> tuple[Daemon, asyncio.Task[int], str]:
    async with get_session().create_client("sqs") as sqs:
        queue = (await sqs.create_queue(QueueName=f"cli-{uuid.uuid4().hex[:8]}"))["QueueUrl"]
        # A little clean traffic, so the tenant has a policy, rates and volume to show.
        profile = TenantProfile(tenant, bounce=0.0, complaint=0.0, transient=0.0)
        traffic = Traffic([profile], seed=3)
        now = time.time()
        bodies = [sns(r) for _ in range(4) for r in traffic.records(traffic.mail(now), now)]
        for i in range(0, len(bodies), 10):
            await sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])
                ],
            )
    rules_dir = write_rules_dir(tmp_path / "rules", {"test.yaml": rules})
    s = load_settings(
        queue_urls=queue,
        rules_dir=str(rules_dir),
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        http_port=0,
        pollers=1,
        admin_token=token,
        **settings,
    )
    daemon = Daemon(s, load_rules_dir(rules_dir), stop=asyncio.Event(), wait_time_s=1)
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: daemon.started.is_set() or task.done(), what="daemon start")
    if task.done():
        task.result()
    await eventually(lambda: tenant in daemon.engine.tenants, what="the tenant's traffic counted")
    return daemon, task, queue


async def stop(daemon: Daemon, task: asyncio.Task[int]) -> None:
    daemon.stop.set()
    assert await asyncio.wait_for(task, 30) == 0


@pytest.fixture
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPMON_ADMIN_TOKEN", raising=False)


@pytest.fixture
async def env(
    sandbox: Sandbox, aws_env: dict[str, str], tmp_path: Path, no_env_token: None
) -> AsyncIterator[tuple[Env, Hooks, str, str]]:
    """A daemon whose policy uses every action: the wiring of each is exercised by a pause."""
    suffix = uuid.uuid4().hex[:6]
    tenant, config_set, bus = f"acme-{suffix}", f"acme-{suffix}-tx", f"bus-{suffix}"
    sandbox.ses.add_tenant(tenant)
    sandbox.ses.server.add_configuration_set(config_set)
    hooks = Hooks()
    await hooks.start()
    async with get_session().create_client("events") as events:
        await events.create_event_bus(Name=bus)
    rules = f"""\
policies:
  ops:
    window: 24h
    min_volume: 60
    email:
      bounce:    {{warn: 0.025, pause: 0.05}}
    actions: [ses_tenant, ses_configuration_set, eventbridge, webhook]
default_policy: ops
tenants:
  {tenant}:
    configuration_sets: [{config_set}]
"""
    daemon, task, _ = await start_daemon(
        sandbox,
        tmp_path,
        tenant=tenant,
        token=TOKEN,
        rules=rules,
        event_bus_name=bus,
        webhook_url=hooks.url,
        webhook_secret="s3cret-for-hooks",
    )
    try:
        yield Env(daemon, task, tenant), hooks, config_set, bus
    finally:
        await stop(daemon, task)
        assert hooks.runner is not None
        await hooks.runner.cleanup()


async def config_set_enabled(sandbox: Sandbox, name: str) -> bool:
    async with get_session().create_client("sesv2") as ses:
        resp = await ses.get_configuration_set(ConfigurationSetName=name)
    return bool(resp["SendingOptions"]["SendingEnabled"])


async def test_list_show_pause_resume(
    sandbox: Sandbox, env: tuple[Env, Hooks, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    e, hooks, config_set, _ = env
    url, tenant = e.url, e.tenant

    code, out, err = await cli("list", "--url", url)
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["TENANT", "POLICY", "STATUS", "PAUSED"]
    [row] = [r.split() for r in rows if r.startswith(tenant + " ")]
    assert row[:4] == [tenant, "ops", "healthy", "-"]
    assert row[4] == "0.00%" and int(row[-2]) > 0  # bounce rate, email sent

    code, out, _ = await cli("list", "--url", url, "--json")
    data = json.loads(out)
    [mine] = [t for t in data if t["tenant"] == tenant]
    assert code == 0 and mine["status"] == "healthy" and mine["volume"]["email"] > 0

    code, out, _ = await cli("show", tenant, "--url", url)
    assert code == 0
    assert f"tenant   {tenant}" in out and "policy   ops" in out and "window   24h" in out
    assert "no decisions" in out

    # Pause by hand (token from the environment), then every action lands.
    monkeypatch.setenv("REPMON_ADMIN_TOKEN", TOKEN)
    code, out, err = await cli("pause", tenant, "--reason", "list bought", "--url", url)
    assert (code, err) == (0, "")
    assert out.startswith(f"{tenant}: paused email, sms (status paused)")
    await eventually(
        lambda: sandbox.ses.sending_status(tenant) == "DISABLED", what="SES tenant disabled"
    )
    assert not await config_set_enabled(sandbox, config_set)
    await eventually(lambda: "tenant_paused" in hooks.types, what="webhook delivered")

    async def all_ok() -> str | None:
        code, out, _ = await cli("show", tenant, "--url", url)
        ok = "ses_tenant=ok, ses_configuration_set=ok, eventbridge=ok, webhook=ok"
        return out if code == 0 and ok in out else None

    out = await eventually(all_ok, timeout=15, what="every action reported ok")
    assert "status   paused" in out and "paused   email, sms" in out
    assert re.search(r"pause +email +admin:[0-9a-f]{8} +list bought", out)
    assert "list bought" in out

    code, out, _ = await cli("list", "--url", url, "--status", "paused", "--json")
    assert [t["tenant"] for t in json.loads(out)] == [tenant]

    # Pausing again changes nothing.
    code, out, _ = await cli("pause", tenant, "--reason", "again", "--url", url)
    assert (code, out.strip()) == (0, f"{tenant}: nothing to pause (status paused)")

    # Resume one channel with --token, then the rest.
    code, out, _ = await cli(
        "resume",
        tenant,
        "--reason",
        "cleaned",
        "--channel",
        "email",
        "--token",
        TOKEN,
        "--url",
        url,
    )
    assert code == 0 and out.startswith(f"{tenant}: resumed email (status paused)")
    await eventually(
        lambda: sandbox.ses.sending_status(tenant) == "ENABLED", what="SES tenant enabled"
    )
    await eventually(lambda: config_set_enabled(sandbox, config_set), what="config set enabled")
    code, out, _ = await cli("resume", tenant, "--reason", "cleaned", "--url", url, "--json")
    body = json.loads(out)
    assert code == 0 and body["status"] == "probation" and body["paused_channels"] == []
    assert [d["channel"] for d in body["decisions"]] == ["sms"]


async def test_auth_failures_and_unknown_tenants(
    env: tuple[Env, Hooks, str, str], sandbox: Sandbox
) -> None:
    e = env[0]
    url, tenant = e.url, e.tenant
    code, out, err = await cli("pause", tenant, "--reason", "r", "--url", url)
    assert (code, out) == (1, "")
    assert err.strip() == "reputation-monitor: admin API: missing bearer token (HTTP 401)"
    code, _, err = await cli("resume", tenant, "--reason", "r", "--url", url, "--token", "nope")
    assert code == 1 and err.strip() == "reputation-monitor: admin API: wrong token (HTTP 403)"
    assert sandbox.ses.sending_status(tenant) == "ENABLED"
    assert e.daemon.engine.tenants[tenant].state.status.value == "healthy"

    code, _, err = await cli("show", "ghost", "--url", url)
    assert (
        code == 1
        and err.strip() == "reputation-monitor: no tenant 'ghost' has been seen (HTTP 404)"
    )
    code, _, err = await cli("resume", "ghost", "--reason", "r", "--url", url, "--token", TOKEN)
    assert code == 1 and "(HTTP 404)" in err


async def test_mutations_refused_when_the_daemon_has_no_token(
    sandbox: Sandbox, aws_env: dict[str, str], tmp_path: Path, no_env_token: None
) -> None:
    tenant = f"solo-{uuid.uuid4().hex[:6]}"
    sandbox.ses.add_tenant(tenant)
    daemon, task, _ = await start_daemon(
        sandbox, tmp_path, tenant=tenant, token=None, rules="default_policy: standard\n"
    )
    try:
        url = f"http://127.0.0.1:{daemon.http.bound_port if daemon.http else 0}"
        code, _, err = await cli("pause", tenant, "--reason", "r", "--url", url, "--token", TOKEN)
        assert code == 1
        assert err.strip() == (
            "reputation-monitor: admin API mutations are disabled: "
            "REPMON_ADMIN_TOKEN is not set (HTTP 403)"
        )
        assert sandbox.ses.sending_status(tenant) == "ENABLED"
        code, out, _ = await cli("list", "--url", url)  # reading needs no token
        assert code == 0 and tenant in out
    finally:
        await stop(daemon, task)


@pytest.mark.parametrize(
    "argv",
    [
        ["pause", "acme"],  # no --reason
        ["resume", "acme", "--reason", "r", "--channel", "fax"],
        ["list", "--status", "sleepy"],
        ["frobnicate"],
        ["list", "--url", "ftp://127.0.0.1:9464"],
    ],
)
async def test_usage_errors_exit_2(argv: list[str]) -> None:
    code, out, _ = await cli(*argv)
    assert (code, out) == (2, "")


async def test_an_unreachable_daemon_exits_1() -> None:
    code, out, err = await cli("list", "--url", "http://127.0.0.1:1", "--timeout", "5")
    assert (code, out) == (1, "")
    assert err.startswith("reputation-monitor: cannot reach http://127.0.0.1:1: ")
