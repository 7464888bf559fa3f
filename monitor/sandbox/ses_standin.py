"""A local stand-in for the SESv2 tenant APIs that moto lacks, spoken over HTTP as restJson1.

Routes, URI members and error codes follow botocore's `sesv2` service model (a test checks the
route table against it), so the real aiobotocore client talks to it unchanged, e.g. through
`AWS_ENDPOINT_URL_SESV2`. Every request lands in a call log; `fault` and `delays` let tests
inject throttling or slowness per operation.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import unquote

from aiohttp import web

from monitor.sandbox.ses_state import Json, SesError, SesState, bad_request

# fault(operation) -> None to proceed, or (HTTP status, error code) to fail the call with.
FaultHook = Callable[[str], tuple[int, str] | None]
UNKNOWN_OPERATION = "UnknownOperation"


@dataclass(frozen=True)
class Route:
    method: str
    uri: str  # the model's requestUri; `{Name}` segments are URI members
    operation: str
    handler: Callable[[SesState, Json], Json]
    required: tuple[str, ...] = ()  # the input shape's required members, URI ones included

    def match(self, method: str, segments: list[str]) -> Json | None:
        parts = self.uri.strip("/").split("/")
        if method != self.method or len(parts) != len(segments):
            return None
        params: Json = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{"):
                params[part[1:-1]] = segment
            elif part != segment:
                return None
        return params


ROUTES = (
    Route("POST", "/v2/email/tenants", "CreateTenant", SesState.create_tenant, ("TenantName",)),
    Route("POST", "/v2/email/tenants/get", "GetTenant", SesState.get_tenant, ("TenantName",)),
    Route("POST", "/v2/email/tenants/list", "ListTenants", SesState.list_tenants),
    Route(
        "POST", "/v2/email/tenants/delete", "DeleteTenant", SesState.delete_tenant, ("TenantName",)
    ),
    Route(
        "POST",
        "/v2/email/tenants/resources",
        "CreateTenantResourceAssociation",
        SesState.create_tenant_resource_association,
        ("TenantName", "ResourceArn"),
    ),
    Route(
        "POST",
        "/v2/email/tenants/resources/delete",
        "DeleteTenantResourceAssociation",
        SesState.delete_tenant_resource_association,
        ("TenantName", "ResourceArn"),
    ),
    Route(
        "POST",
        "/v2/email/tenants/resources/list",
        "ListTenantResources",
        SesState.list_tenant_resources,
        ("TenantName",),
    ),
    Route(
        "GET",
        "/v2/email/reputation/entities/{ReputationEntityType}/{ReputationEntityReference}",
        "GetReputationEntity",
        SesState.get_reputation_entity,
        ("ReputationEntityReference", "ReputationEntityType"),
    ),
    Route(
        "PUT",
        "/v2/email/reputation/entities/{ReputationEntityType}/{ReputationEntityReference}"
        "/customer-managed-status",
        "UpdateReputationEntityCustomerManagedStatus",
        SesState.update_reputation_entity_customer_managed_status,
        ("ReputationEntityType", "ReputationEntityReference", "SendingStatus"),
    ),
    Route(
        "POST",
        "/v2/email/configuration-sets",
        "CreateConfigurationSet",
        SesState.create_configuration_set,
        ("ConfigurationSetName",),
    ),
    Route(
        "GET",
        "/v2/email/configuration-sets/{ConfigurationSetName}",
        "GetConfigurationSet",
        SesState.get_configuration_set,
        ("ConfigurationSetName",),
    ),
    Route(
        "PUT",
        "/v2/email/configuration-sets/{ConfigurationSetName}/sending",
        "PutConfigurationSetSendingOptions",
        SesState.put_configuration_set_sending_options,
        ("ConfigurationSetName",),
    ),
)


@dataclass(frozen=True)
class Call:
    """One request as the stand-in saw it; `time` is `time.monotonic()` at receipt."""

    operation: str
    params: Json
    time: float
    status: int
    user_agent: str = ""


class SesStandIn:
    """The stand-in on the caller's event loop. State and call log are guarded by one lock, so
    the seeding helpers and `calls` are safe from any thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str = "111122223333",
        region: str = "us-east-1",
        fault: FaultHook | None = None,
        delays: dict[str, float] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state = SesState(account_id=account_id, region=region)
        self.fault = fault
        self.delays: dict[str, float] = dict(delays or {})
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the SES stand-in is not started")
        return self._url

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- call log ---

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, operation: str) -> list[Call]:
        return [c for c in self.calls if c.operation == operation]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # --- seeding ---

    def add_tenant(self, name: str, *, resources: Iterable[str] = ()) -> str:
        """Create a tenant (and associate resource ARNs) as the API would; returns its ARN."""
        with self._lock:
            arn: str = self.state.create_tenant({"TenantName": name})["TenantArn"]
            for resource in resources:
                self.state.create_tenant_resource_association(
                    {"TenantName": name, "ResourceArn": resource}
                )
            return arn

    def add_configuration_set(self, name: str) -> str:
        """Create a configuration set with sending enabled; returns its ARN."""
        with self._lock:
            self.state.create_configuration_set({"ConfigurationSetName": name})
            return self.state.configuration_set_arn(name)

    def sending_status(self, tenant_name: str) -> str:
        """The tenant's aggregate SendingStatus, as GetTenant would report it."""
        with self._lock:
            return self.state.sending_status(tenant_name)

    def set_aws_managed_status(self, arn: str, status: str, cause: str | None = None) -> None:
        with self._lock:
            self.state.set_aws_managed_status(arn, status, cause)

    # --- HTTP ---

    async def _handle(self, request: web.Request) -> web.Response:
        received = time.monotonic()
        operation = UNKNOWN_OPERATION
        params: Json = {}
        try:
            route, uri_params = _route(request)
            operation, params = route.operation, uri_params
            # URI members are authoritative; botocore never repeats them in the body.
            params = {**await _body(request), **uri_params}
            if missing := [name for name in route.required if name not in params]:
                raise bad_request(f"Missing required members: {', '.join(missing)}.")
            await self._before(operation)
            with self._lock:
                response = _json(200, route.handler(self.state, dict(params)))
        except SesError as e:
            response = _error(e)
        with self._lock:
            self._calls.append(
                Call(
                    operation,
                    params,
                    received,
                    response.status,
                    request.headers.get("User-Agent", ""),
                )
            )
        return response

    async def _before(self, operation: str) -> None:
        """The test hooks: an optional delay, then an optional injected error."""
        delay = self.delays.get(operation)
        if delay:
            await asyncio.sleep(delay)
        injected = self.fault(operation) if self.fault is not None else None
        if injected is not None:
            status, code = injected
            raise SesError(code, status, f"injected fault in {operation}")


def _route(request: web.Request) -> tuple[Route, Json]:
    raw_path = request.rel_url.raw_path
    # Match on the raw path: botocore percent-encodes '/' inside URI members (ARNs).
    segments = [unquote(s) for s in raw_path.strip("/").split("/")]
    for route in ROUTES:
        params = route.match(request.method, segments)
        if params is not None:
            return route, params
    message = f"The SESv2 stand-in has no operation for {request.method} {raw_path}."
    raise SesError("UnknownOperationException", 404, message)


async def _body(request: web.Request) -> Json:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _json(status: int, body: Json) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def _error(e: SesError) -> web.Response:
    # botocore's restJson parser takes the code from x-amzn-ErrorType first, then the body's
    # "code"; the base JSON parser reads "__type" and "message". Send all of them.
    response = _json(e.status, {"__type": e.code, "code": e.code, "message": e.message})
    response.headers["x-amzn-ErrorType"] = e.code
    return response


class ThreadedSesStandIn:
    """The same server on its own thread and event loop, for sync callers, busy loops and
    subprocess-based tests. `server` is the underlying `SesStandIn` (seeding, fault, delays)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str = "111122223333",
        region: str = "us-east-1",
        fault: FaultHook | None = None,
        delays: dict[str, float] | None = None,
    ) -> None:
        # `fault` runs on the server's thread.
        self.server = SesStandIn(
            host=host, port=port, account_id=account_id, region=region, fault=fault, delays=delays
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def calls(self) -> list[Call]:
        return self.server.calls

    def calls_to(self, operation: str) -> list[Call]:
        return self.server.calls_to(operation)

    def add_tenant(self, name: str, *, resources: Iterable[str] = ()) -> str:
        return self.server.add_tenant(name, resources=resources)

    def sending_status(self, tenant_name: str) -> str:
        return self.server.sending_status(tenant_name)

    def start(self, timeout: float = 10.0) -> str:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="ses-standin", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            return asyncio.run_coroutine_threadsafe(self.server.start(), loop).result(timeout)
        except BaseException:
            self._shutdown_loop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
