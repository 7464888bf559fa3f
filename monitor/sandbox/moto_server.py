"""moto's in-process server on 127.0.0.1 and a free port: SQS, DynamoDB, EventBridge for the
sandbox.

moto 5.2's `ThreadedMotoServer` hands the port straight to werkzeug's `make_server`, so port 0
binds a free port atomically and `get_host_and_port()` reports it: no probe-then-bind race.
moto is imported only on start, so the SES stand-in works where moto is not installed. Note that
moto keeps its backends in process-global state: every server (and `mock_aws`) in one
process sees the same queues and tables.
"""

from __future__ import annotations

import logging
import urllib.request
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer


class MotoServer:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: ThreadedMotoServer | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the moto server is not started")
        return self._url

    def start(self) -> str:
        # start() blocks until werkzeug has bound the socket (it would block forever if the bind
        # failed, which a fixed port can provoke; port 0 cannot).
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as e:
            raise RuntimeError(
                "the local sandbox needs moto: pip install 'reputation-monitor[demo]'"
            ) from e
        # werkzeug logs every request to stderr on its own handler; that is noise here.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server, self._url = server, f"http://{host}:{port}"
        return self._url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = self._url = None

    def reset(self) -> None:
        """Drop every moto resource in this process (moto's own reset endpoint)."""
        # S310: the URL is the http:// one this object built, never user input.
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def queue_depth(sqs: Any, queue_url: str, *, visible_only: bool = False) -> int:
    """Messages in a queue (visible, plus in flight unless `visible_only`), as SQS estimates
    them: what the tests' and fault trials' paced producers and drains poll on."""
    attrs = (
        await sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    )["Attributes"]
    n = int(attrs["ApproximateNumberOfMessages"])
    if not visible_only:
        n += int(attrs["ApproximateNumberOfMessagesNotVisible"])
    return n
