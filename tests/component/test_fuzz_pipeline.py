"""10,000 generated bodies through the real pipeline: none escapes, every one is accounted for."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor.actions.actuator import Actuator
from monitor.core.engine import Engine
from monitor.metrics import Metrics, TenantLabels
from monitor.pipeline import Committer, Pipeline
from monitor.rulesfile import load_rules_dir
from monitor.sources.sqs import Message
from monitor.store.sqlite import SqliteStore

SAMPLES = Path(__file__).parents[1] / "data" / "samples"
BODIES = [p.read_bytes() for p in sorted(SAMPLES.glob("*.json"))]
RULES = Path(__file__).parents[2] / "rules"
N = 10_000
NOW = 1_748_880_000.0  # 2025-06-02 16:00Z: the SES samples count; the 2024 SMS ones are late


def mutate(rng: random.Random, body: bytes) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:  # random bytes
        return rng.randbytes(rng.randrange(0, 400))
    if kind == 1:  # truncated
        return body[: rng.randrange(0, len(body) + 1)]
    if kind == 2:  # a flipped byte (often invalid UTF-8 or JSON)
        b = bytearray(body)
        if b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return body
    if kind == 3 and isinstance(doc, dict) and doc:  # a field dropped
        doc = copy.deepcopy(doc)
        del doc[rng.choice(sorted(doc))]
    elif kind == 4 and isinstance(doc, dict) and doc:  # a field of the wrong type
        doc = copy.deepcopy(doc)
        doc[rng.choice(sorted(doc))] = rng.choice([None, 7, "x", [], {}, True, 1e300])
    else:  # wrapped in SNS, unchanged
        doc = {"Type": "Notification", "MessageId": str(rng.random()), "Message": json.dumps(doc)}
    return json.dumps(doc).encode()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state.db")
    yield s
    await s.close()


async def test_ten_thousand_fuzzed_bodies_are_all_accounted_for(store: SqliteStore) -> None:
    rng = random.Random(20261123)
    bodies = [mutate(rng, rng.choice(BODIES)) for _ in range(N)]
    metrics = Metrics(CollectorRegistry())
    engine = Engine(load_rules_dir(RULES))
    actuator = Actuator(actions={}, store=store, metrics=metrics, clock=lambda: NOW)
    committer = Committer(
        engine=engine, store=store, actuator=actuator, metrics=metrics, labels=TenantLabels(100)
    )
    pipeline = Pipeline(engine=engine, committer=committer, metrics=metrics, clock=lambda: NOW)
    deleted = 0
    for i in range(0, N, 10):
        batch = [
            Message("fuzz", str(j), f"rh-{j}", b.decode("utf-8", "surrogateescape"), NOW, 1)
            for j, b in enumerate(bodies[i : i + 10], start=i)
        ]
        deleted += len(await pipeline.handle(batch))
    results = {
        r: metrics.registry.get_sample_value(
            "repmon_messages_total", {"queue": "fuzz", "result": r}
        )
        or 0
        for r in ("processed", "duplicate", "undecodable", "late")
    }
    assert sum(results.values()) == N
    assert deleted == N - results["undecodable"]  # undecodable ones stay for the redrive policy
    # every kind of outcome ran, so the sum above is not vacuous
    assert (
        min(results["undecodable"], results["processed"], results["late"], results["duplicate"])
        > 10
    )
