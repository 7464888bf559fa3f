"""The group committer's linger on a real SQLite store: batches share a transaction, a
decision never waits, and no batch is handed back (for deletion) before it is durable."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from conftest import eventually
from monitor.actions.actuator import Actuator
from monitor.core.engine import Changes, Engine
from monitor.core.events import Channel
from monitor.metrics import Metrics, TenantLabels
from monitor.pipeline import Committer, Pipeline
from monitor.rulesfile import load_rules_dir
from monitor.sandbox.traffic import TenantProfile, Traffic, sns
from monitor.sources.sqs import Message
from monitor.store.sqlite import SqliteStore

NOW = 1_748_880_000.0


class GatedStore(SqliteStore):
    """The real store, whose commits wait for `gate` (a slow disk) and are counted."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = 0
        self.finished = 0

    async def commit(self, changes: Changes) -> list[int]:
        self.started += 1
        await self.gate.wait()
        ids = await super().commit(changes)
        self.finished += 1
        return ids


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[GatedStore]:
    s = GatedStore(tmp_path / "state.db")
    await s.load(since=0.0, keys_since=0.0, max_keys=0)  # the file and its tables exist
    yield s
    s.gate.set()
    await s.close()


def committer(store: SqliteStore, rules: Path, *, gather: int, linger_s: float) -> Committer:
    """`rules`: conftest's test policy, which pauses at 5 % bounces from 60 sent."""
    metrics = Metrics(CollectorRegistry())
    engine = Engine(load_rules_dir(rules))
    actuator = Actuator(actions={}, store=store, metrics=metrics, clock=lambda: NOW)
    return Committer(
        engine=engine,
        store=store,
        actuator=actuator,
        metrics=metrics,
        labels=TenantLabels(100),
        gather=gather,
        linger_s=linger_s,
    )


HEALTHY = Traffic([TenantProfile("t1", bounce=0.0, complaint=0.0, transient=0.0)], seed=3)


def batch(start: int, n: int = 3) -> list[Message]:
    """`n` messages, each one a Send of its own mail (one dedupe key each)."""
    bodies = [sns(HEALTHY.records(HEALTHY.mail(NOW - 60.0), NOW - 60.0)[0]) for _ in range(n)]
    return [
        Message("q", f"id-{start + i}", f"rh-{start + i}", b, NOW, 1) for i, b in enumerate(bodies)
    ]


def stored_keys(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(
            con.execute("SELECT coalesce(sum(length(keys) / width), 0) FROM seen_keys").fetchone()[
                0
            ]
        )
    finally:
        con.close()


async def test_lingering_commits_share_one_transaction_once_every_poller_waits(
    store: GatedStore, rules_dir: Path
) -> None:
    c = committer(store, rules_dir, gather=3, linger_s=3600.0)  # only the gather count can end it
    pipeline = Pipeline(engine=c.engine, committer=c, metrics=c.metrics, clock=lambda: NOW)
    first = asyncio.create_task(pipeline.handle(batch(0)))
    second = asyncio.create_task(pipeline.handle(batch(10)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not first.done() and not second.done() and store.started == 0  # lingering
    third = asyncio.create_task(pipeline.handle(batch(20)))
    done = await asyncio.wait_for(asyncio.gather(first, second, third), 10)
    assert [len(d) for d in done] == [3, 3, 3]
    assert store.finished == c.commits == 1
    assert stored_keys(store.path) == 9


async def test_a_linger_ends_on_its_timer(store: GatedStore, rules_dir: Path) -> None:
    c = committer(store, rules_dir, gather=4, linger_s=0.01)
    pipeline = Pipeline(engine=c.engine, committer=c, metrics=c.metrics, clock=lambda: NOW)
    handled = asyncio.create_task(pipeline.handle(batch(0)))
    await eventually(handled.done, what="the lone batch committed after its linger")
    assert len(handled.result()) == 3 and store.finished == 1


async def test_a_commit_that_must_not_wait_takes_the_lingering_batches_along(
    store: GatedStore, rules_dir: Path
) -> None:
    c = committer(store, rules_dir, gather=10, linger_s=3600.0)
    pipeline = Pipeline(engine=c.engine, committer=c, metrics=c.metrics, clock=lambda: NOW)
    lingering = [asyncio.create_task(pipeline.handle(batch(i * 10))) for i in range(2)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert store.started == 0
    c.engine.pause("t9", actor="alice", reason="test", now=NOW, channels=[Channel.EMAIL])
    await asyncio.wait_for(c.commit(), 10)  # what the admin API does: no linger
    await asyncio.wait_for(asyncio.gather(*lingering), 10)
    assert store.finished == c.commits == 1  # the admin commit held the batches' changes
    assert stored_keys(store.path) == 6


async def test_a_batch_that_pauses_a_tenant_does_not_linger(
    store: GatedStore, rules_dir: Path
) -> None:
    c = committer(store, rules_dir, gather=10, linger_s=3600.0)
    pipeline = Pipeline(engine=c.engine, committer=c, metrics=c.metrics, clock=lambda: NOW)
    # Enough volume with enough bounces for the test policy to pause t2 in one batch.
    profile = TenantProfile("t2", bounce=0.3, complaint=0.0, transient=0.0)
    traffic = Traffic([profile], seed=5)
    bodies = [
        sns(r)
        for _ in range(100)
        for r in traffic.records(traffic.mail(NOW - 120.0, profile), NOW - 120.0)
    ]
    messages = [Message("q", f"p{i}", f"rh-p{i}", b, NOW, 1) for i, b in enumerate(bodies)]
    done = await asyncio.wait_for(pipeline.handle(messages), 10)
    assert len(done) == len(messages)
    state = c.engine.channel_state("t2", Channel.EMAIL)
    assert state is not None and state.status.value == "paused"


async def test_no_batch_is_handed_back_before_its_commit_is_durable(
    store: GatedStore, rules_dir: Path
) -> None:
    c = committer(store, rules_dir, gather=2, linger_s=3600.0)
    pipeline = Pipeline(engine=c.engine, committer=c, metrics=c.metrics, clock=lambda: NOW)
    store.gate.clear()  # the disk is slow
    handled = [asyncio.create_task(pipeline.handle(batch(i * 10))) for i in range(2)]
    await eventually(lambda: store.started == 1, what="the shared commit started")
    # A third batch arrives meanwhile: it waits for the commit after.
    late = asyncio.create_task(pipeline.handle(batch(20)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not any(t.done() for t in [*handled, late])
    assert stored_keys(store.path) == 0
    store.gate.set()
    await asyncio.wait_for(asyncio.gather(*handled), 10)
    assert stored_keys(store.path) >= 6  # durable before either batch came back
    # The late batch lingers for a partner (gather=2) or the timer; a tick commit ends it.
    assert not late.done()
    await asyncio.wait_for(c.commit(), 10)
    await asyncio.wait_for(late, 10)
    assert stored_keys(store.path) == 9
    audit = await store.audit()
    assert json.dumps(audit)  # the store is still readable after gated commits


async def test_a_cancelled_lingerer_cancels_no_other(store: GatedStore, rules_dir: Path) -> None:
    c = committer(store, rules_dir, gather=3, linger_s=3600.0)
    pipeline = Pipeline(engine=c.engine, committer=c, metrics=c.metrics, clock=lambda: NOW)
    a = asyncio.create_task(pipeline.handle(batch(0)))
    b = asyncio.create_task(pipeline.handle(batch(10)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    a.cancel()
    await asyncio.gather(a, return_exceptions=True)
    await asyncio.wait_for(c.commit(), 10)
    assert len(await asyncio.wait_for(b, 10)) == 3
