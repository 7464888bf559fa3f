"""A fault-injecting reverse proxy for AWS calls, on 127.0.0.1 and a free port.

Put it between the daemon and moto or the SES stand-in (`AWS_ENDPOINT_URL_SQS` /
`AWS_ENDPOINT_URL_SESV2` → `proxy.url`). It forwards each request unchanged (method, raw path
and query, headers including the SigV4 ones, body) and, per call and operation, with a seeded
RNG, answers instead with one of:

| kind | SQS (JSON protocol) | SESv2 (restJson1) |
| --- | --- | --- |
| `throttle` | 400 `com.amazonaws.sqs#ThrottlingException` | 429 `TooManyRequestsException` |
| `500` | 500 `InternalFailure` | 500 `InternalFailure` |
| `503` | 503 `ServiceUnavailable` | 503 `ServiceUnavailable` |
| `drop` | the connection closed without an answer | the same |
| `slow` | forwarded after a delay | the same |

Every fault is decided before forwarding, so a failed call never reaches the service (a retry
is the only copy that does). The operation is the `X-Amz-Target` header's for SQS and the
route's (from the stand-in's table, which follows botocore's model) for SESv2.

botocore retries below the daemon's own retries; to know which calls the daemon saw fail,
the proxy groups attempts by botocore's `amz-sdk-invocation-id` header: an invocation whose
last attempt was answered with a fault failed as a whole (`final_faults`).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from monitor.sandbox.ses_standin import ROUTES

THROTTLE, E500, E503, DROP, SLOW = "throttle", "500", "503", "drop", "slow"
KINDS = (THROTTLE, E500, E503, DROP, SLOW)
FAILING = frozenset({THROTTLE, E500, E503, DROP})
UPSTREAM_ERROR = "upstream_error"  # the service itself could not be reached (not injected)

Service = Literal["sqs", "sesv2"]

# Not forwarded: they describe one hop, not the request.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
UPSTREAM_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 1.0
DECK = 100  # calls per round of faults (see _shuffle)

_SQS_ERRORS = {
    THROTTLE: (400, "ThrottlingException", "Sender", "Rate exceeded"),
    E500: (500, "InternalFailure", "Receiver", "We encountered an internal error."),
    E503: (503, "ServiceUnavailable", "Receiver", "Service is unavailable. Try again later."),
}
_SES_ERRORS = {
    THROTTLE: (429, "TooManyRequestsException", "Too Many Requests"),
    E500: (500, "InternalFailure", "Internal server error"),
    E503: (503, "ServiceUnavailable", "Service Unavailable"),
}


def error_response(service: Service, kind: str) -> web.Response:
    """An AWS-shaped error answer, as botocore's parser for the service expects it."""
    request_id = str(uuid.uuid4())
    if service == "sqs":
        status, code, fault, message = _SQS_ERRORS[kind]
        return web.Response(
            status=status,
            body=json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "x-amzn-RequestId": request_id,
                # SQS is query-compatible: the old query error code and fault ride along.
                "x-amzn-query-error": f"{code};{fault}",
            },
        )
    status, code, message = _SES_ERRORS[kind]
    return web.Response(
        status=status,
        body=json.dumps({"message": message}),
        headers={
            "Content-Type": "application/json",
            "x-amzn-RequestId": request_id,
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.sesv2/",
        },
    )


def operation_of(service: Service, request: web.Request) -> str:
    if service == "sqs":
        target = request.headers.get("X-Amz-Target", "")
        return target.rpartition(".")[2] or "Unknown"
    segments = request.raw_path.split("?", 1)[0].strip("/").split("/")
    for route in ROUTES:
        if route.match(request.method, segments) is not None:
            return route.operation
    return "Unknown"


@dataclass(frozen=True)
class Exchange:
    operation: str
    request: bytes
    status: int
    response: bytes
    time: float  # monotonic, when the answer came back


@dataclass
class _Invocation:
    operation: str
    last: str | None  # the fault kind of the last attempt, None when it was forwarded
    attempts: int
    exhausted: bool = False  # the last attempt was the SDK's last (`amz-sdk-request` max)


def _attempt_of(header: str) -> tuple[int, int] | None:
    """botocore's `amz-sdk-request: attempt=2; max=3` → (2, 3)."""
    fields = dict(part.strip().partition("=")[::2] for part in header.split(";") if "=" in part)
    try:
        return int(fields["attempt"]), int(fields["max"])
    except (KeyError, ValueError):
        return None


class FaultProxy:
    """`rates` maps fault kinds to per-call probabilities (their sum at most 1), applied to
    `operations` (None: every operation). `outage` maps operations to a kind every one of
    their calls gets; `fail_first` throttles the first N calls of an operation. All three may
    be changed while the proxy runs."""

    def __init__(
        self,
        upstream: str,
        *,
        service: Service,
        seed: int = 0,
        rates: Mapping[str, float] | None = None,
        operations: Iterable[str] | None = None,
        fail_first: Mapping[str, int] | None = None,
        slow_s: tuple[float, float] = (0.2, 0.6),
        record: bool = False,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.service: Service = service
        self.rng = random.Random(seed)
        self.rates: dict[str, float] = dict(rates or {})
        self.operations: frozenset[str] | None = (
            frozenset(operations) if operations is not None else None
        )
        self.outage: dict[str, str] = {}
        self.fail_first: dict[str, int] = dict(fail_first or {})
        self.slow_s = slow_s
        self.record = record
        # With `record`: every forwarded exchange, in the order the answers came back.
        self.exchanges: list[Exchange] = []
        self.calls: Counter[str] = Counter()  # operation → requests seen
        self.drawn: Counter[str] = Counter()  # operation → requests subject to `rates`
        # (operation, kind) → faults chosen by `rates` (not by an outage or `fail_first`)
        self.drawn_injected: Counter[tuple[str, str]] = Counter()
        self.forwarded: Counter[str] = Counter()  # operation → requests that reached upstream
        self.injected: Counter[tuple[str, str]] = Counter()  # (operation, kind) → faults
        self._invocations: dict[str, _Invocation] = {}
        self._deck: list[str | None] = []
        self._deck_rates: dict[str, float] = {}
        self._inflight: dict[int, tuple[str, float]] = {}  # request → (operation, admitted)
        self._next = 0
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the proxy is not started")
        return self._url

    async def start(self) -> str:
        if sum(self.rates.values()) > 1:
            raise ValueError(f"fault rates add up to more than 1: {self.rates}")
        self._client = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_S),
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        )
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A long poll forwarded for a client that has gone keeps its handler until the service
        # answers; do not wait for those at stop.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self._url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()
        self._runner = self._client = self._url = None

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what happened -------------------------------------------------------------------

    def injected_by_kind(
        self, operations: Iterable[str] | None = None, *, drawn_only: bool = False
    ) -> Counter[str]:
        """Faults injected, by kind; `drawn_only`: only those chosen by `rates`."""
        ops = set(operations) if operations is not None else None
        out: Counter[str] = Counter()
        for (op, kind), n in (self.drawn_injected if drawn_only else self.injected).items():
            if ops is None or op in ops:
                out[kind] += n
        return out

    def final_faults(
        self, operations: Iterable[str] | None = None, *, exhausted_only: bool = False
    ) -> Counter[str]:
        """Invocations (a call with all its SDK retries) whose last attempt got a failing
        fault, by kind: what the caller saw fail. Exact once no retry is pending; with
        `exhausted_only`, only those whose last attempt was the SDK's last (certain now, but
        missing any the SDK gave up on early, e.g. for want of retry quota)."""
        ops = set(operations) if operations is not None else None
        return Counter(
            inv.last
            for inv in self._invocations.values()
            if inv.last in FAILING
            and (ops is None or inv.operation in ops)
            and (inv.exhausted or not exhausted_only)
        )

    def inflight_since(self, operation: str, before: float) -> int:
        """Requests of `operation` still open that were admitted before `before` (monotonic)."""
        return sum(1 for op, t in self._inflight.values() if op == operation and t < before)

    # -- the proxy -----------------------------------------------------------------------

    def _choose(self, operation: str) -> str | None:
        if operation in self.outage:
            return self.outage[operation]
        if self.fail_first.get(operation, 0) > 0:
            self.fail_first[operation] -= 1
            return THROTTLE
        if self.operations is not None and operation not in self.operations:
            return None
        if not self._deck or self._deck_rates != self.rates:
            self._shuffle()
        self.drawn[operation] += 1
        kind = self._deck.pop()
        if kind is not None:
            self.drawn_injected[(operation, kind)] += 1
        return kind

    def _shuffle(self) -> None:
        # A shuffled deck rather than independent draws: every DECK calls see the set rates
        # exactly, so a short test sees them too.
        deck: list[str | None] = []
        for kind in KINDS:
            deck += [kind] * round(self.rates.get(kind, 0.0) * DECK)
        deck += [None] * (DECK - len(deck))
        self.rng.shuffle(deck)
        self._deck, self._deck_rates = deck, dict(self.rates)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation = operation_of(self.service, request)
        body = await request.read()
        self.calls[operation] += 1
        kind = self._choose(operation)
        if kind is not None:
            self.injected[(operation, kind)] += 1
        invocation = request.headers.get("amz-sdk-invocation-id") or f"anon-{uuid.uuid4()}"
        inv = self._invocations.setdefault(invocation, _Invocation(operation, None, 0))
        inv.attempts += 1
        inv.last = kind if kind in FAILING else None
        attempt = _attempt_of(request.headers.get("amz-sdk-request", ""))
        inv.exhausted = attempt is not None and attempt[0] >= attempt[1]

        if kind == DROP:
            if request.transport is not None:
                request.transport.close()  # no answer at all: the client sees a disconnect
            return web.Response(status=204)  # never written: the transport is closed
        if kind in (THROTTLE, E500, E503):
            return error_response(self.service, kind)

        self._next += 1
        key = self._next
        self._inflight[key] = (operation, time.monotonic())
        try:
            if kind == SLOW:
                await asyncio.sleep(self.rng.uniform(*self.slow_s))
            return await self._forward(request, body)
        except (aiohttp.ClientError, TimeoutError):
            inv.last = UPSTREAM_ERROR
            return web.Response(status=502, text="upstream unreachable")
        finally:
            del self._inflight[key]

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._client is not None
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
        )
        url = URL(self.upstream + request.raw_path, encoded=True)
        async with self._client.request(
            request.method, url, headers=headers, data=body or None, allow_redirects=False
        ) as resp:
            payload = await resp.read()
            out = CIMultiDict(
                (k, v) for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP
            )
            operation = operation_of(self.service, request)
            self.forwarded[operation] += 1
            if self.record:
                self.exchanges.append(
                    Exchange(operation, body, resp.status, payload, time.monotonic())
                )
            return web.Response(status=resp.status, body=payload, headers=out)
