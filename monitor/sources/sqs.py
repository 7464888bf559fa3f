"""SQS: long-poll receive, hand each batch to the pipeline, delete what it committed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor import logs
from monitor.aws import classify
from monitor.metrics import Metrics
from monitor.retry import Backoff

log = logs.get("monitor.sqs")

MAX_MESSAGES = 10
WAIT_TIME_S = 20
DEFAULT_VISIBILITY_S = 30  # SQS's default, until GetQueueAttributes says otherwise


@dataclass(frozen=True, slots=True)
class Message:
    queue: str  # the queue's name: a metric label and log field
    message_id: str
    receipt_handle: str
    body: str
    received_at: float
    receive_count: int


# Processes a batch; returns the messages whose effect is committed and may be deleted.
Handler = Callable[[Sequence[Message]], Awaitable[Sequence[Message]]]


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class SqsSource:
    """`pollers` concurrent receive loops on one queue, sharing one client."""

    def __init__(
        self,
        *,
        client: Any,
        queue_url: str,
        handler: Handler,
        metrics: Metrics,
        clock: Callable[[], float],
        pollers: int = 4,
        wait_time_s: int = WAIT_TIME_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.url = queue_url
        self.name = queue_name(queue_url)
        self.handler = handler
        self.metrics = metrics
        self.clock = clock
        self.pollers = pollers
        self.wait_time_s = wait_time_s
        self.sleep = sleep
        self.last_ok: float | None = None  # monotonic-free wall time of the last good receive
        self.requests = 0  # SQS calls made, for the benchmark's requests-per-event
        self.deleted = 0
        self.extended = 0  # visibility extensions of slow batches
        self.visibility_s = DEFAULT_VISIBILITY_S
        self._stopping: asyncio.Future[Any] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        await self._read_visibility()
        # One waiter on `stop` shared by every receive, rather than a task made and
        # cancelled per ReceiveMessage (measurable CPU at high message rates).
        self._stopping = asyncio.ensure_future(stop.wait())
        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(self.pollers):
                    tg.create_task(self._poll(stop), name=f"sqs-{self.name}-{i}")
        finally:
            self._stopping.cancel()

    async def _poll(self, stop: asyncio.Event) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        while not stop.is_set():
            try:
                resp = await self._receive(stop)
            except Exception as e:
                err = classify(e)
                self.metrics.poll_errors.labels(self.name, err.code).inc()
                delay = backoff.next()
                log.warning(
                    "sqs_receive_failed",
                    queue=self.name,
                    error=err.code,
                    retry_in_s=round(delay, 2),
                )
                await _wait(stop, delay, self.sleep)
                continue
            if resp is None:
                return  # stopping: the receive in flight was abandoned
            backoff.reset()
            self.last_ok = self.clock()
            raw = resp.get("Messages") or []
            if not raw:
                continue
            now = self.clock()
            batch = [
                Message(
                    queue=self.name,
                    message_id=m["MessageId"],
                    receipt_handle=m["ReceiptHandle"],
                    body=m.get("Body", ""),
                    received_at=now,
                    receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                )
                for m in raw
            ]
            # Not cancelled by stop: an in-flight batch is finished, committed and deleted.
            # While it runs its messages are kept invisible, so a slow commit never lets SQS
            # hand them to another poller.
            keeper = asyncio.create_task(self._keep_invisible(batch))
            try:
                done = await self.handler(batch)
                if done:
                    await self.delete(done)  # still hidden while delete retries
            finally:
                keeper.cancel()

    async def _read_visibility(self) -> None:
        try:
            self.requests += 1
            attrs = await self.client.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["VisibilityTimeout"]
            )
            self.visibility_s = int(attrs["Attributes"]["VisibilityTimeout"])
        except Exception as e:
            err = classify(e)
            self.metrics.poll_errors.labels(self.name, err.code).inc()
            log.warning(
                "sqs_visibility_unknown",
                queue=self.name,
                error=err.code,
                assumed_s=self.visibility_s,
            )

    async def _keep_invisible(self, batch: Sequence[Message]) -> None:
        """Extend the batch's visibility at half the timeout until cancelled."""
        period = max(1.0, self.visibility_s / 2)
        while True:
            await self.sleep(period)
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": m.receipt_handle,
                    "VisibilityTimeout": self.visibility_s,
                }
                for i, m in enumerate(batch)
            ]
            try:
                self.requests += 1
                await self.client.change_message_visibility_batch(
                    QueueUrl=self.url, Entries=entries
                )
                self.extended += 1
                log.info(
                    "sqs_visibility_extended",
                    queue=self.name,
                    messages=len(batch),
                    seconds=self.visibility_s,
                )
            except Exception as e:
                err = classify(e)
                self.metrics.poll_errors.labels(self.name, err.code).inc()
                log.warning("sqs_visibility_extend_failed", queue=self.name, error=err.code)

    async def _receive(self, stop: asyncio.Event) -> dict[str, Any] | None:
        self.requests += 1
        receive = asyncio.ensure_future(
            self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=MAX_MESSAGES,
                WaitTimeSeconds=self.wait_time_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        )
        stopping = self._stopping
        if stopping is None or (stopping.done() and not stop.is_set()):
            stopping = self._stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if receive.done():
            return receive.result()  # type: ignore[no-any-return]
        # Stop receiving: abandon the long poll. Anything SQS handed out in that response
        # stays invisible until its visibility timeout and is then redelivered; nothing lost.
        receive.cancel()
        with contextlib.suppress(BaseException):  # cancelled on purpose
            await receive
        return None

    async def delete(self, messages: Sequence[Message]) -> None:
        """DeleteMessageBatch in tens; retry the failed entries a few times, then leave them
        to reappear (dedupe makes a redelivery harmless)."""
        for i in range(0, len(messages), MAX_MESSAGES):
            chunk = {str(j): m for j, m in enumerate(messages[i : i + MAX_MESSAGES])}
            backoff = Backoff(base=0.2, cap=5.0)
            for attempt in range(4):
                try:
                    self.requests += 1
                    resp = await self.client.delete_message_batch(
                        QueueUrl=self.url,
                        Entries=[
                            {"Id": k, "ReceiptHandle": m.receipt_handle} for k, m in chunk.items()
                        ],
                    )
                except Exception as e:
                    err = classify(e)
                    self.metrics.poll_errors.labels(self.name, err.code).inc()
                    log.warning(
                        "sqs_delete_failed", queue=self.name, error=err.code, attempt=attempt + 1
                    )
                    if not err.transient:
                        break
                    await self.sleep(backoff.next())
                    continue
                failed = resp.get("Failed") or []
                self.deleted += len(resp.get("Successful") or [])
                for f in failed:
                    self.metrics.poll_errors.labels(
                        self.name, str(f.get("Code", "Unknown"))[:64]
                    ).inc()
                # Sender faults (e.g. an expired receipt handle) will not succeed on retry.
                chunk = {f["Id"]: chunk[f["Id"]] for f in failed if not f.get("SenderFault")}
                if not chunk:
                    break
                await self.sleep(backoff.next())
            if chunk:
                log.warning("sqs_delete_gave_up", queue=self.name, messages=len(chunk))


async def _wait(
    stop: asyncio.Event, delay: float, sleep: Callable[[float], Awaitable[None]]
) -> None:
    """Sleep `delay`, or less if `stop` is set meanwhile."""
    sleeper = asyncio.ensure_future(sleep(delay))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        stopping.cancel()
