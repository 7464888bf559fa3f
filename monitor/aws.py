"""AWS client construction and error classification: the only place that knows botocore."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

import aiobotocore
import botocore
from aiobotocore.session import AioSession, get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from monitor import __version__

# Every call names the daemon, so CloudTrail shows which pauses it made. A fixed string also
# spares botocore rebuilding its own User-Agent before each request (twice, ~75 µs each
# here: ~7 % of the CPU of an SQS receive or delete).
USER_AGENT = (
    f"reputation-monitor/{__version__} aiobotocore/{aiobotocore.__version__} "
    f"botocore/{botocore.__version__} Python/{platform.python_version()}"
)

# Throttling and server-side trouble: worth retrying. Anything else is the request's fault.
TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        "RequestTimeout",
        "RequestTimeoutException",
        "AWS.SimpleQueueService.ServiceUnavailable",
    }
)


class AwsError(Exception):
    """An AWS call failed; `code` is a short, bounded name fit for a metric label."""

    def __init__(self, code: str, message: str, *, transient: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.transient = transient


def classify(e: BaseException) -> AwsError:
    if isinstance(e, AwsError):
        return e
    if isinstance(e, ClientError):
        err: Mapping[str, Any] = e.response.get("Error", {})
        code = str(err.get("Code") or "Unknown")
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        transient = code in TRANSIENT_CODES or status >= 500 or status == 429
        return AwsError(code[:64], str(err.get("Message") or ""), transient=transient)
    if isinstance(e, BotoCoreError | OSError | TimeoutError):
        # Connection refused/reset, read timeouts, DNS: the network, not the request.
        return AwsError(type(e).__name__, str(e), transient=True)
    return AwsError(type(e).__name__, str(e), transient=False)


def client_config(*, max_attempts: int = 3, read_timeout: float = 30.0) -> Config:
    # Connect/read timeouts bound every call; botocore's standard retry mode adds jittered
    # backoff for throttling below our own retries.
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=50,
        user_agent=USER_AGENT,
    )


def session() -> AioSession:
    return get_session()


def region_of(sess: AioSession, configured: str | None) -> str:
    return configured or sess.get_config_variable("region") or "us-east-1"
