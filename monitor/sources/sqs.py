"""SQS: long-poll receive, hand each batch to the pipeline, delete what it committed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from monitor import logs
from monitor.aws import classify
from monitor.metrics import Metrics
from monitor.retry import Backoff

log = logs.get("monitor.sqs")

MAX_MESSAGES = 10
WAIT_TIME_S = 20
DEFAULT_VISIBILITY_S = 30  # SQS's default, until GetQueueAttributes says otherwise


class Message(NamedTuple):
    """One received message (a tuple: built for every message, at a third of the cost of a
    frozen dataclass)."""

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
        # Pollers inside ReceiveMessage, and those of them that `stop` interrupted.
        self._receiving: set[asyncio.Task[Any]] = set()
        self._abandoned: set[asyncio.Task[Any]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        await self._read_visibility()
        # One waiter on `stop` for the whole source: when it fires it interrupts the pollers
        # that are in a long poll. Per receive that costs nothing, where a task for the
        # receive and an asyncio.wait on it and a stop waiter cost measurable CPU.
        self._stopping = asyncio.ensure_future(stop.wait())
        self._stopping.add_done_callback(self._abandon_receives)
        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(self.pollers):
                    tg.create_task(self._poll(stop), name=f"sqs-{self.name}-{i}")
        finally:
            self._stopping.remove_done_callback(self._abandon_receives)
            self._stopping.cancel()

    def _abandon_receives(self, _: object) -> None:
        for task in self._receiving:
            self._abandoned.add(task)
            task.cancel()

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
            self.last_ok = now = self.clock()
            raw = resp.get("Messages")
            if not raw:
                continue
            name = self.name
            batch = [
                Message(
                    name,
                    m["MessageId"],
                    m["ReceiptHandle"],
                    m.get("Body", ""),
                    now,
                    int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                )
                for m in raw
            ]
            # Not cancelled by stop: an in-flight batch is finished, committed and deleted.
            # While it runs its messages are kept invisible, so a slow commit never lets SQS
            # hand them to another poller: a keeper starts if the batch is still here at half
            # the visibility timeout (a timer per batch; almost every batch is done long before).
            keeper = _LazyKeeper(self, batch)
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

    @property
    def keep_period_s(self) -> float:
        """How often a batch in flight has its visibility extended: half the timeout."""
        return max(1.0, self.visibility_s / 2)

    async def _keep_invisible(self, batch: Sequence[Message]) -> None:
        """Extend the batch's visibility now and then every half timeout until cancelled
        (started half a timeout after the batch was received)."""
        period = self.keep_period_s
        kept = list(batch)
        while kept:
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": m.receipt_handle,
                    "VisibilityTimeout": self.visibility_s,
                }
                for i, m in enumerate(kept)
            ]
            try:
                self.requests += 1
                resp = await self.client.change_message_visibility_batch(
                    QueueUrl=self.url, Entries=entries
                )
            except Exception as e:
                err = classify(e)
                self.metrics.poll_errors.labels(self.name, err.code).inc()
                log.warning("sqs_visibility_extend_failed", queue=self.name, error=err.code)
            else:
                # The batch call succeeds even when some entries fail (an expired receipt
                # handle, say): such messages may reach another poller, so say so.
                failed = resp.get("Failed") or []
                codes = sorted({str(f.get("Code", "Unknown"))[:64] for f in failed})
                for f in failed:
                    self.metrics.poll_errors.labels(
                        self.name, str(f.get("Code", "Unknown"))[:64]
                    ).inc()
                if failed:
                    log.warning(
                        "sqs_visibility_extend_failed",
                        queue=self.name,
                        messages=len(failed),
                        of=len(kept),
                        errors=codes,
                    )
                    # A sender fault will not succeed next time; the rest is tried again.
                    lost = {f["Id"] for f in failed if f.get("SenderFault")}
                    kept = [m for i, m in enumerate(kept) if str(i) not in lost]
                if len(failed) < len(entries):
                    self.extended += 1
                    log.info(
                        "sqs_visibility_extended",
                        queue=self.name,
                        messages=len(entries) - len(failed),
                        seconds=self.visibility_s,
                    )
            await self.sleep(period)

    async def _receive(self, stop: asyncio.Event) -> dict[str, Any] | None:
        """One ReceiveMessage, or None if `stop` is set before or while it waits."""
        stopping = self._stopping
        if stopping is None or (stopping.done() and not stop.is_set()):
            # Not started by run() (or its waiter went away): a waiter of our own.
            stopping = self._stopping = asyncio.ensure_future(stop.wait())
            stopping.add_done_callback(self._abandon_receives)
        if stop.is_set():
            return None
        task = asyncio.current_task()
        assert task is not None
        self.requests += 1
        self._receiving.add(task)
        try:
            return await self.client.receive_message(  # type: ignore[no-any-return]
                QueueUrl=self.url,
                MaxNumberOfMessages=MAX_MESSAGES,
                WaitTimeSeconds=self.wait_time_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        except asyncio.CancelledError:
            if task not in self._abandoned:
                raise  # cancelled from outside: not ours to swallow
            # Stop receiving: the long poll was abandoned. Anything SQS handed out in that
            # response stays invisible until its visibility timeout and is then redelivered;
            # nothing is lost.
            self._abandoned.discard(task)
            if task.uncancel() > 0:
                raise  # also cancelled from outside meanwhile
            return None
        finally:
            self._receiving.discard(task)

    async def delete(self, messages: Sequence[Message]) -> None:
        """DeleteMessageBatch in tens; retry the failed entries a few times, then leave them
        to reappear (dedupe makes a redelivery harmless)."""
        for i in range(0, len(messages), MAX_MESSAGES):
            chunk = {str(j): m for j, m in enumerate(messages[i : i + MAX_MESSAGES])}
            backoff = None  # made on the first retry: a Random seeds itself from the OS
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
                    backoff = backoff or Backoff(base=0.2, cap=5.0)
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
                backoff = backoff or Backoff(base=0.2, cap=5.0)
                await self.sleep(backoff.next())
            if chunk:
                log.warning("sqs_delete_gave_up", queue=self.name, messages=len(chunk))


class _LazyKeeper:
    """Starts `SqsSource._keep_invisible` for a batch once it has been in flight for half the
    visibility timeout; cancelled when the batch is done."""

    __slots__ = ("_batch", "_source", "_task", "_timer")

    def __init__(self, source: SqsSource, batch: Sequence[Message]) -> None:
        self._source = source
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(source.keep_period_s, self._start)

    def _start(self) -> None:
        self._task = asyncio.create_task(self._source._keep_invisible(self._batch))

    def cancel(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


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
