"""The admin API's guards over real HTTP: auth, body limits, and the default bind address."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from monitor.core.engine import Engine
from monitor.core.state import Status
from monitor.http.server import MAX_BODY_BYTES, Admin, HttpServer, build_app, token_id
from monitor.rulesfile import load_rules_dir
from monitor.settings import Settings
from monitor.store.sqlite import SqliteStore

RULES = Path(__file__).parents[2] / "rules"
TOKEN = "s3cret-token"


async def serve(tmp_path: Path, token: str | None) -> AsyncIterator[tuple[str, Engine]]:
    store = SqliteStore(tmp_path / "state.db")
    engine = Engine(load_rules_dir(RULES))

    async def commit() -> None:
        await store.commit(engine.drain())

    admin = Admin(
        engine=engine,
        store=store,
        commit=commit,
        clock=lambda: 1_750_000_000.0,
        ready=lambda: True,
        token=token,
    )
    server = HttpServer(
        build_app(registry=CollectorRegistry(), admin=admin), Settings().http_host, 0
    )
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.bound_port}", engine
    finally:
        await server.stop()
        await store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[str, Engine]]:
    async for x in serve(tmp_path, TOKEN):
        yield x


@pytest.fixture
async def api_without_token(tmp_path: Path) -> AsyncIterator[tuple[str, Engine]]:
    async for x in serve(tmp_path, None):
        yield x


async def post(
    url: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body, headers=headers or {}) as r,
    ):
        text = await r.text()
    try:
        return r.status, json.loads(text)
    except ValueError:  # aiohttp's own 413 page is plain text
        return r.status, {"error": text}


def test_listens_on_loopback_unless_told_otherwise() -> None:
    assert Settings().http_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "missing bearer token"),
        ({"Authorization": "Bearer nope"}, 403, "wrong token"),
        ({"Authorization": f"Basic {TOKEN}"}, 403, "wrong token"),
    ],
)
async def test_mutations_need_the_right_token(
    api: tuple[str, Engine], headers: dict[str, str], status: int, message: str
) -> None:
    url, engine = api
    got, body = await post(f"{url}/api/v1/tenants/acme/pause", {"reason": "r"}, headers)
    assert got == status and message in str(body["error"])
    assert "acme" not in engine.tenants  # nothing changed


async def test_mutations_are_refused_when_no_token_is_configured(
    api_without_token: tuple[str, Engine],
) -> None:
    url, engine = api_without_token
    for action in ("pause", "resume"):
        got, body = await post(
            f"{url}/api/v1/tenants/acme/{action}",
            {"reason": "r"},
            {"Authorization": "Bearer anything"},
        )
        assert got == 403 and "REPMON_ADMIN_TOKEN is not set" in str(body["error"])
    assert "acme" not in engine.tenants


async def test_oversized_body_is_refused(api: tuple[str, Engine]) -> None:
    url, engine = api
    got, _ = await post(
        f"{url}/api/v1/tenants/acme/pause",
        {"reason": "x" * (MAX_BODY_BYTES + 1)},
        {"Authorization": f"Bearer {TOKEN}"},
    )
    assert got == 413
    assert "acme" not in engine.tenants


async def test_a_pause_with_the_token_pins_the_tenant_and_names_the_token(
    api: tuple[str, Engine],
) -> None:
    url, engine = api
    got, body = await post(
        f"{url}/api/v1/tenants/acme/pause",
        {"reason": "customer asked", "channel": "email"},
        {"Authorization": f"Bearer {TOKEN}"},
    )
    assert got == 200 and body["status"] == "paused" and body["paused_channels"] == ["email"]
    assert engine.tenants["acme"].state.status is Status.PAUSED
    [decision] = body["decisions"]  # type: ignore[misc]
    assert decision["actor"] == f"admin:{token_id(TOKEN)}" and TOKEN not in str(body)
    got, body = await post(
        f"{url}/api/v1/tenants/acme/pause", {"reason": ""}, {"Authorization": f"Bearer {TOKEN}"}
    )
    assert got == 400 and "reason" in str(body["error"])
