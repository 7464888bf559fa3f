"""HTTP: /metrics, probes, and the admin API (contract: "HTTP")."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from monitor.core.engine import Engine, TenantRecord
from monitor.core.events import Channel
from monitor.core.rules import RATES_BY_CHANNEL
from monitor.core.state import Decision, Status
from monitor.store.base import Store

MAX_BODY_BYTES = 16 * 1024


@dataclass
class Admin:
    """What the admin API needs from the running daemon."""

    engine: Engine
    store: Store
    commit: Callable[[], Awaitable[None]]
    clock: Callable[[], float]
    ready: Callable[[], bool]
    token: str | None


def token_id(token: str) -> str:
    """A short, stable, non-secret name for a token, for the audit log's actor."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def tenant_view(rec: TenantRecord, now: float) -> dict[str, Any]:
    rates: dict[str, float] = {}
    volume: dict[str, int] = {}
    for channel in Channel:
        snap = rec.snapshot(channel, now) if channel in rec.windows else None
        volume[channel.value] = snap.volume(channel) if snap else 0
        for r in RATES_BY_CHANNEL[channel]:
            if r in rec.policy.thresholds:
                rates[r.value] = round(snap.rate(r), 6) if snap else 0.0
    return {
        "tenant": rec.tenant,
        "policy": rec.policy.name,
        "status": rec.state.status.value,
        "paused_channels": rec.state.paused_channels,
        "rates": rates,
        "volume": volume,
        "window": rec.policy.window_s,
        "pause_eta_seconds": {r.value: round(v, 1) for r, v in rec.pause_eta(now).items()},
        "updated_at": rec.state.updated_at,
    }


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, default=str))


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def build_app(*, registry: CollectorRegistry, admin: Admin) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    routes = web.RouteTableDef()

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if admin.ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    @routes.get("/api/v1/tenants")
    async def list_tenants(request: web.Request) -> web.Response:
        now = admin.clock()
        want = request.query.get("status")
        if want is not None and want not in {s.value for s in Status}:
            return _error(400, f"status must be one of {', '.join(s.value for s in Status)}")
        recs = sorted(admin.engine.tenants.values(), key=lambda r: r.tenant)
        return _json(
            [tenant_view(r, now) for r in recs if want is None or r.state.status.value == want]
        )

    @routes.get("/api/v1/tenants/{tenant}")
    async def show_tenant(request: web.Request) -> web.Response:
        name = request.match_info["tenant"]
        rec = admin.engine.tenants.get(name)
        if rec is None:
            return _error(404, f"no tenant {name!r} has been seen")
        view = tenant_view(rec, admin.clock())
        # Where the bounces and complaints go, by recipient domain (never an address).
        view["top_domains"] = {o.value: dc.top() for o, dc in sorted((rec.domains or {}).items())}
        view["decisions"] = await admin.store.audit(tenant=name, limit=50)
        return _json(view)

    async def _mutate(request: web.Request, pause: bool) -> web.Response:
        denied = _authorize(request, admin.token)
        if denied is not None:
            return denied
        try:
            body = await request.json() if request.can_read_body else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return _error(400, 'a non-empty "reason" is required')
        channels: list[Channel] | None = None
        if "channel" in body:
            try:
                channels = [Channel(body["channel"])]
            except ValueError:
                return _error(400, 'channel must be "email" or "sms"')
        name = request.match_info["tenant"]
        actor = f"admin:{token_id(admin.token or '')}"
        now = admin.clock()
        engine = admin.engine
        decisions: list[Decision]
        if pause:
            decisions = engine.pause(
                name, actor=actor, reason=reason.strip(), now=now, channels=channels
            )
        else:
            if name not in engine.tenants:
                return _error(404, f"no tenant {name!r} has been seen")
            decisions = engine.resume(
                name, actor=actor, reason=reason.strip(), now=now, channels=channels
            )
        await admin.commit()
        view = tenant_view(engine.tenants[name], now)
        view["decisions"] = [d.to_dict() for d in decisions]
        return _json(view)

    @routes.post("/api/v1/tenants/{tenant}/pause")
    async def pause(request: web.Request) -> web.Response:
        return await _mutate(request, True)

    @routes.post("/api/v1/tenants/{tenant}/resume")
    async def resume(request: web.Request) -> web.Response:
        return await _mutate(request, False)

    @routes.get("/api/v1/audit")
    async def audit(request: web.Request) -> web.Response:
        since: float | None = None
        if "since" in request.query:
            try:
                since = _parse_since(request.query["since"], admin.clock())
            except ValueError:
                return _error(400, "since must be epoch seconds, ISO-8601, or a duration like 2h")
        try:
            limit = min(int(request.query.get("limit", "500")), 5000)
        except ValueError:
            return _error(400, "limit must be an integer")
        entries = await admin.store.audit(
            tenant=request.query.get("tenant") or None, since=since, limit=limit
        )
        return _json(entries)

    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.add_routes(routes)
    return app


def _authorize(request: web.Request, token: str | None) -> web.Response | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return _error(401, "admin API: missing bearer token")
    if token is None:
        return _error(403, "admin API mutations are disabled: REPMON_ADMIN_TOKEN is not set")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return _error(403, "admin API: wrong token")
    return None


def _parse_since(text: str, now: float) -> float:
    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].isdigit():
        return now - int(text[:-1]) * units[text[-1]]
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


class HttpServer:
    """aiohttp runner without its own signal handling (the app owns signals and shutdown)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        self.host = host
        self.port = port
        self.bound_port: int | None = None

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port

    async def stop(self) -> None:
        await self.runner.cleanup()
