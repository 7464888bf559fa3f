"""`webhook`: a signed JSON POST to `WEBHOOK_URL` on warnings, pauses and resumes.

The body is the `eventbridge` detail (the decision's audit entry) plus `"type"`: one of
`tenant_warning`, `tenant_paused`, `tenant_resumed`. It never carries a recipient address.

Signing, as Stripe does it: the request carries `X-Repmon-Timestamp` (epoch seconds) and
`X-Repmon-Signature: sha256=<hex>`, the HMAC-SHA256 under `WEBHOOK_SECRET` of the timestamp, a
dot, and the raw body. A receiver verifies before parsing:

    ts = request.headers["X-Repmon-Timestamp"]
    mac = hmac.new(secret, ts.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(request.headers["X-Repmon-Signature"], "sha256=" + mac)
    ok = ok and abs(time.time() - int(ts)) <= 300      # refuse replays of old deliveries

Delivery is at least once (retries, and a restart re-runs unfinished actions): receivers dedupe
on the body's `id` (the audit entry id) with its `decision`. Answers: 2xx is delivered; 429, 5xx,
timeouts (10 s) and connection errors are retried; any other status is a permanent failure.
Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import aiohttp

from monitor import __version__
from monitor.actions.base import ActionFailed, ActionRequest
from monitor.actions.eventbridge import DETAIL_TYPES, notification

TIMEOUT_S = 10.0
SIGNATURE_HEADER = "X-Repmon-Signature"
TIMESTAMP_HEADER = "X-Repmon-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookAction:
    name = "webhook"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str | None,
        secret: str | None,
        *,
        timeout_s: float = TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # An unsigned webhook would let anyone who learns the URL forge pauses: refuse it.
        if not url or not url.startswith(("https://", "http://")):
            raise ValueError("the webhook action needs an http(s) URL")
        if not secret:
            raise ValueError("the webhook action needs a secret to sign its requests")
        self.session = session
        self.url = url
        self.secret = secret
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.clock = clock

    async def __call__(self, req: ActionRequest) -> str:
        detail_type = DETAIL_TYPES.get(req.kind)
        if detail_type is None:
            return "nothing to do"
        payload = {"type": detail_type.lower().replace(" ", "_"), **notification(req)}
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"reputation-monitor/{__version__}",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
        }
        # The URL stays out of errors and the audit log: it may embed a credential.
        try:
            async with self.session.post(
                self.url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            ) as resp:
                status = resp.status
                text = "" if status < 300 else (await resp.text(errors="replace"))[:200]
        except (aiohttp.ClientError, TimeoutError) as e:
            # The type (and OS error) only: aiohttp's messages can quote the URL.
            why = getattr(e, "os_error", None)
            detail = type(e).__name__ + (f" ({why.strerror})" if isinstance(why, OSError) else "")
            raise ActionFailed(f"webhook not delivered: {detail}", transient=True) from e
        if status < 300:
            return f"HTTP {status}"
        raise ActionFailed(
            f"webhook answered HTTP {status}" + (f": {text}" if text.strip() else ""),
            transient=status >= 500 or status == 429,
        )
