"""The SQS source against moto's server: deletes after the handler, keeps slow batches hidden."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from conftest import eventually
from monitor.metrics import Metrics
from monitor.sources.sqs import Handler, Message, SqsSource


def source_on(sqs: Any, queue: str, handler: Handler, **options: Any) -> SqsSource:
    """A source with a fresh registry and a fixed clock, unless `options` say otherwise."""
    options.setdefault("metrics", Metrics(CollectorRegistry()))
    return SqsSource(client=sqs, queue_url=queue, handler=handler, clock=lambda: 0.0, **options)


@contextlib.asynccontextmanager
async def running(source: SqsSource, release: asyncio.Event) -> AsyncIterator[None]:
    """Run `source` for the block; then release the handler and wait for the source to stop."""
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    try:
        yield
    finally:
        stop.set()
        release.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def test_slow_batch_stays_invisible_until_done(sqs: Any) -> None:
    queue = (await sqs.create_queue(QueueName="slow-batch", Attributes={"VisibilityTimeout": "2"}))[
        "QueueUrl"
    ]
    await sqs.send_message(QueueUrl=queue, MessageBody="hello")
    release = asyncio.Event()
    seen: list[str] = []

    async def handler(batch: Sequence[Message]) -> Sequence[Message]:
        seen.extend(m.message_id for m in batch)
        await release.wait()  # a commit that takes longer than the visibility timeout
        return batch

    source = source_on(sqs, queue, handler, pollers=1, wait_time_s=1)
    async with running(source, release):
        await eventually(
            lambda: source.extended >= 3, timeout=15, what="three visibility extensions"
        )
        # 3 extensions at 1 s each: well past the 2 s timeout, and nobody else got the message.
        other = await sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
        assert "Messages" not in other
        release.set()
        await eventually(lambda: source.deleted == 1, what="message deleted")
        assert len(seen) == 1


async def test_entries_that_fail_to_stay_invisible_are_counted_and_dropped(sqs: Any) -> None:
    queue = (await sqs.create_queue(QueueName="half-gone", Attributes={"VisibilityTimeout": "2"}))[
        "QueueUrl"
    ]
    for body in ("kept", "gone"):
        await sqs.send_message(QueueUrl=queue, MessageBody=body)
    metrics = Metrics(CollectorRegistry())
    release = asyncio.Event()
    batches: list[list[str]] = []

    async def handler(batch: Sequence[Message]) -> Sequence[Message]:
        batches.append([m.body for m in batch])
        for m in batch:  # its receipt handle goes stale: SQS fails that entry alone
            if m.body == "gone":
                await sqs.delete_message(QueueUrl=queue, ReceiptHandle=m.receipt_handle)
        await release.wait()
        return [m for m in batch if m.body == "kept"]

    source = source_on(sqs, queue, handler, metrics=metrics, pollers=1, wait_time_s=1)
    async with running(source, release):
        await eventually(lambda: source.extended >= 3, timeout=15, what="three extensions")
        assert sorted(batches[0]) == ["gone", "kept"]
        # Counted once: the stale handle is not sent again, the other one still is.
        failures = metrics.registry.get_sample_value(
            "repmon_queue_poll_errors_total",
            {"queue": "half-gone", "error": "ReceiptHandleIsInvalid"},
        )
        assert failures == 1
        other = await sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
        assert "Messages" not in other
        release.set()
        await eventually(lambda: source.deleted == 1, what="the kept message deleted")


async def test_receive_errors_are_counted_and_the_loop_keeps_going(sqs: Any) -> None:
    metrics = Metrics(CollectorRegistry())
    stop = asyncio.Event()
    naps: list[float] = []

    async def nap(d: float) -> None:
        naps.append(d)
        if len(naps) >= 3:
            stop.set()

    missing = "http://127.0.0.1:1/123456789012/no-such-queue"
    source = SqsSource(
        client=sqs,
        queue_url=missing.replace("127.0.0.1:1", sqs.meta.endpoint_url.split("//")[1]),
        handler=lambda b: asyncio.sleep(0, b),
        metrics=metrics,
        clock=lambda: 0.0,
        pollers=1,
        wait_time_s=0,
        sleep=nap,
    )
    await asyncio.wait_for(source.run(stop), 10)
    errors = metrics.registry.get_sample_value(
        "repmon_queue_poll_errors_total",
        {"queue": "no-such-queue", "error": "AWS.SimpleQueueService.NonExistentQueue"},
    )
    assert errors is not None and errors >= 3
    assert len(naps) >= 3 and all(0 <= d <= 30 for d in naps)  # backed off, never crashed


async def test_stop_abandons_the_long_polls_and_a_quick_batch_is_never_extended(
    sqs: Any,
) -> None:
    queue = (await sqs.create_queue(QueueName="stop-abandons"))["QueueUrl"]
    await sqs.send_message(QueueUrl=queue, MessageBody="hello")
    handled: list[str] = []

    async def handler(batch: Sequence[Message]) -> Sequence[Message]:
        handled.extend(m.body for m in batch)
        return batch

    stop = asyncio.Event()
    source = source_on(sqs, queue, handler, pollers=3, wait_time_s=20)
    task = asyncio.create_task(source.run(stop))
    await eventually(lambda: source.deleted == 1, what="message deleted")
    # Every poller is now in a 20 s long poll on the empty queue.
    await eventually(lambda: len(source._receiving) == 3, what="three pollers waiting")
    stop.set()
    await asyncio.wait_for(task, 5)  # well inside WaitTimeSeconds: the polls were abandoned
    assert handled == ["hello"]
    assert source.extended == 0  # done long before half the visibility timeout
    assert not source._receiving and not source._abandoned


async def test_a_poller_cancelled_from_outside_is_not_taken_for_a_stop(sqs: Any) -> None:
    queue = (await sqs.create_queue(QueueName="outside-cancel"))["QueueUrl"]
    stop = asyncio.Event()
    source = source_on(sqs, queue, lambda b: asyncio.sleep(0, b), pollers=1, wait_time_s=20)
    task = asyncio.create_task(source.run(stop))
    await eventually(lambda: len(source._receiving) == 1, what="the poller waiting")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert task.cancelled()
    assert not stop.is_set()
