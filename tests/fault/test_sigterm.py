"""SIGTERM mid-stream: the daemon stops receiving, finishes and deletes what it took, exits 0
within SHUTDOWN_TIMEOUT with `daemon_stopped` as its last log line; a restart consumes the
rest, and nothing is lost or processed again.

SQS goes through a recording proxy (no faults) so the test sees every delete the daemon made.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from crash import (
    SHUTDOWN_TIMEOUT_S,
    DaemonProcess,
    build_events,
    check_outcome,
    create_queue,
    daemon_env,
    produce,
    read_store,
    sqs_client,
    wait_empty,
    write_rules,
)
from prometheus_client.parser import text_string_to_metric_families
from proxy import Exchange, FaultProxy

from conftest import eventually
from monitor.sandbox import Sandbox
from monitor.store.sqlite import SqliteStore

SEED = 5
BATCH_INTERVAL_S = 0.06  # the producer's pace: ten messages per interval, a steady stream
STOP_AFTER = 0.3  # SIGTERM once this share of the messages has been handled


async def messages_total(url: str, queue: str) -> dict[str, float]:
    """`repmon_messages_total` of one queue by result, scraped from a running daemon."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "repmon_messages_total" and s.labels.get("queue") == queue:
                out[s.labels["result"]] = out.get(s.labels["result"], 0.0) + s.value
    return out


def summary(d: DaemonProcess) -> dict[str, Any]:
    """The last log line, which must be the shutdown summary."""
    lines = d.lines()
    assert lines, "no log output"
    last = lines[-1]
    assert last.get("event") == "daemon_stopped", f"last log line: {last}\n{d.tail()}"
    assert last["exit_code"] == 0
    return last


def deleted(exchanges: list[Exchange]) -> int:
    """Messages SQS confirmed deleted in these exchanges."""
    return sum(
        len(json.loads(x.response).get("Successful") or [])
        for x in exchanges
        if x.operation == "DeleteMessageBatch" and x.status == 200
    )


async def stored_keys(state: Path) -> int:
    store = SqliteStore(state)
    try:
        return len((await store.load(since=0.0, keys_since=0.0, max_keys=10**9)).keys)
    finally:
        await store.close()


async def test_sigterm_mid_stream_loses_nothing_and_reprocesses_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    tag = f"term-{uuid.uuid4().hex[:6]}"
    names = [f"{tag}-t{i}" for i in range(4)]
    arns = {n: sandbox.ses.add_tenant(n) for n in names}
    events = build_events(names, seed=SEED, now=time.time(), crossing=1, good_mails=25)
    total = len(events.bodies)
    rules_dir = write_rules(tmp_path)
    state = tmp_path / "state.db"

    async with (
        sqs_client(sandbox) as sqs,
        FaultProxy(sandbox.moto.url, service="sqs", record=True) as proxy,
    ):
        queue = await create_queue(sqs, tag)
        qname = queue.rsplit("/", 1)[-1]
        env = daemon_env(sandbox, queue=queue, state=state, rules_dir=rules_dir)
        env["AWS_ENDPOINT_URL_SQS"] = proxy.url
        first = await DaemonProcess.spawn(env, tmp_path, "run-1")
        second: DaemonProcess | None = None
        producer = asyncio.create_task(
            produce(sqs, queue, events.bodies, interval=BATCH_INTERVAL_S)
        )
        try:
            url = await first.http_url()

            async def taken() -> bool:
                m = await messages_total(url, qname)
                return sum(m.values()) >= STOP_AFTER * total

            await eventually(taken, timeout=60, what=f"{STOP_AFTER:.0%} of messages handled")
            assert not producer.done(), "the stream ended before SIGTERM: pace it slower"

            code, took = await first.terminate(timeout=SHUTDOWN_TIMEOUT_S + 10)
            exited = time.monotonic()
            assert code == 0, first.tail()
            assert took < SHUTDOWN_TIMEOUT_S, f"took {took:.1f}s to stop"
            assert first.events("shutdown_requested")[0]["signal"] == "SIGTERM"
            events1 = int(summary(first)["events"])
            assert 0 < events1 < total
            run1 = [x for x in proxy.exchanges if x.time <= exited]
            # Each body is one event; `events` counts the messages a run handled. Run 1
            # deleted every message it handled before it exited: none comes back.
            assert deleted(run1) == events1
            processed1 = await stored_keys(state)  # the records run 1 committed

            second = await DaemonProcess.spawn(env, tmp_path, "run-2")
            url2 = await second.http_url()
            assert await producer == total
            await wait_empty(sqs, queue)
            after2 = await messages_total(url2, qname)
            code2, _ = await second.terminate(timeout=SHUTDOWN_TIMEOUT_S + 10)
            assert code2 == 0, second.tail()
            events2 = int(summary(second)["events"])
            run2 = [x for x in proxy.exchanges if x.time > exited]
        finally:
            producer.cancel()
            for d in (first, second):
                if d is not None and d.returncode is None:
                    await d.kill()

    assert deleted(run2) == events2
    # Run 2's counter, scraped once the queue was empty, covers everything run 2 handled.
    assert set(after2) <= {"processed", "duplicate"}
    processed2, duplicate2 = after2.get("processed", 0), after2.get("duplicate", 0)
    assert processed2 + duplicate2 == events2
    # Each record was processed exactly once over the two runs ...
    assert processed1 + processed2 == events.records
    # ... so every other message handled was a duplicate: the copies injected, plus any
    # message SQS delivered twice at once (at-least-once delivery; moto's concurrent long
    # polls can race), which the counts just below show were not counted twice.
    duplicate1 = events1 - processed1
    extra = events1 + events2 - total
    assert extra >= 0
    assert duplicate1 + duplicate2 == events.duplicates + extra
    print(
        f"run 1 handled {events1} messages and deleted them all, run 2 {events2};"
        f" {events.duplicates} copies injected, {extra} delivered twice by SQS"
    )

    stored = await read_store(state, rules_dir, names)
    assert check_outcome(events, stored, sandbox, arns) == []
