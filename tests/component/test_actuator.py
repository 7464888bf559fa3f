"""The actuator and the ses_tenant action against the SES stand-in over HTTP."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from conftest import until_idle
from monitor.actions.actuator import Actuator
from monitor.actions.ses_tenant import SesTenantAction
from monitor.core.engine import Changes
from monitor.core.events import Channel
from monitor.core.state import Decision, Evidence, Kind
from monitor.metrics import Metrics
from monitor.ratelimit import TokenBucket
from monitor.sandbox import SesStandIn
from monitor.store.sqlite import SqliteStore

OP = "UpdateReputationEntityCustomerManagedStatus"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state.db")
    yield s
    await s.close()


async def no_sleep(_: float) -> None:
    return None


def pause(tenant: str) -> Decision:
    return Decision(
        time=1.0,
        tenant=tenant,
        channel=Channel.EMAIL,
        kind=Kind.PAUSE,
        actor="policy",
        reason="email.bounce 9% ≥ pause 5%",
        actions=("ses_tenant",),
        received_at=0.5,
    )


async def commit(store: SqliteStore, d: Decision) -> dict[str, Any]:
    [audit_id] = await store.commit(Changes(decisions=[d]))
    return d.to_dict() | {"id": audit_id}


def actuator(ses: Any, store: SqliteStore, metrics: Metrics, *, dry_run: bool = False) -> Actuator:
    return Actuator(
        actions={"ses_tenant": SesTenantAction(ses)},
        store=store,
        metrics=metrics,
        clock=lambda: 2.0,
        dry_run=dry_run,
        sleep=no_sleep,
    )


async def run_one(act: Actuator, entry: dict[str, Any]) -> None:
    act.submit(entry["id"], entry, ("ses_tenant",), received_at=0.5)
    await until_idle(act)


async def test_throttling_is_retried_until_the_pause_lands(
    standin: SesStandIn, ses: Any, store: SqliteStore
) -> None:
    arn = standin.add_tenant("acme")
    failures = iter([(429, "TooManyRequestsException"), (503, "ServiceUnavailable")])
    standin.fault = lambda op: next(failures, None) if op == OP else None
    metrics = Metrics(CollectorRegistry())
    entry = await commit(store, pause("acme"))
    await run_one(actuator(ses, store, metrics), entry)
    calls = standin.calls_to(OP)
    assert [c.status for c in calls] == [429, 503, 200]
    assert calls[-1].params == {
        "ReputationEntityType": "RESOURCE",
        "ReputationEntityReference": arn,
        "SendingStatus": "DISABLED",
    }
    assert standin.sending_status("acme") == "DISABLED"
    assert len(standin.calls_to("GetTenant")) == 1  # the ARN is looked up once
    assert (
        metrics.registry.get_sample_value(
            "repmon_actions_total", {"action": "ses_tenant", "result": "ok"}
        )
        == 1
    )
    assert metrics.registry.get_sample_value("repmon_decision_latency_seconds_count") == 1
    [audited] = await store.audit(tenant="acme")
    assert audited["actions"][0]["result"] == "ok" and arn in audited["actions"][0]["detail"]
    assert await store.pending_actions() == []


async def test_dry_run_calls_nothing_but_counts_and_audits(
    standin: SesStandIn, ses: Any, store: SqliteStore
) -> None:
    standin.add_tenant("acme")
    metrics = Metrics(CollectorRegistry())
    entry = await commit(store, pause("acme"))
    await run_one(actuator(ses, store, metrics, dry_run=True), entry)
    assert standin.calls == []
    assert standin.sending_status("acme") == "ENABLED"
    assert (
        metrics.registry.get_sample_value(
            "repmon_actions_total", {"action": "ses_tenant", "result": "dry_run"}
        )
        == 1
    )
    [audited] = await store.audit(tenant="acme")
    assert audited["actions"] == [
        {"action": "ses_tenant", "result": "dry_run", "detail": "DRY_RUN: not called"}
    ]


async def test_unknown_tenant_is_a_permanent_error_not_retried(
    ses: Any, store: SqliteStore, standin: SesStandIn
) -> None:
    metrics = Metrics(CollectorRegistry())
    entry = await commit(store, pause("ghost"))
    await run_one(actuator(ses, store, metrics), entry)
    assert [c.operation for c in standin.calls] == ["GetTenant"]
    [audited] = await store.audit(tenant="ghost")
    assert audited["actions"][0]["result"] == "error"
    assert "SES has no tenant named 'ghost'" in audited["actions"][0]["detail"]
    assert (
        metrics.registry.get_sample_value(
            "repmon_actions_total", {"action": "ses_tenant", "result": "error"}
        )
        == 1
    )


async def test_committed_but_unrun_actions_run_at_the_next_start(
    standin: SesStandIn, ses: Any, store: SqliteStore
) -> None:
    standin.add_tenant("acme")
    await commit(store, pause("acme"))  # committed, then the process died before acting
    act = actuator(ses, store, Metrics(CollectorRegistry()))
    assert await act.resubmit_pending() == 1
    await until_idle(act)
    assert standin.sending_status("acme") == "DISABLED"
    assert await store.pending_actions() == []


async def test_a_burst_of_500_crossings_is_paced_and_worst_first(
    standin: SesStandIn, ses: Any, store: SqliteStore
) -> None:
    """500 tenants cross at once: every pause lands without a throttling error, the calls are
    paced by the token bucket, and the worst tenants are paused first."""
    clock = [0.0]

    async def advance(d: float) -> None:  # the bucket's sleep on a fake clock: no wall time
        clock[0] += d

    bucket = TokenBucket(5.0, 5, clock=lambda: clock[0], sleep=advance)
    act = Actuator(
        actions={"ses_tenant": SesTenantAction(ses, bucket=bucket)},
        store=store,
        metrics=Metrics(CollectorRegistry()),
        clock=lambda: clock[0],
        sleep=no_sleep,
        workers=4,
    )
    arns: dict[str, int] = {}
    rng = random.Random(5)
    severities = [rng.uniform(1.0, 5.0) for _ in range(500)]
    for i, sev in enumerate(severities):
        arns[standin.add_tenant(f"t{i}")] = i
        d = Decision(
            time=1.0,
            tenant=f"t{i}",
            channel=Channel.EMAIL,
            kind=Kind.PAUSE,
            actor="policy",
            reason="crossed",
            actions=("ses_tenant",),
            evidence=Evidence(
                policy="standard",
                window="24h",
                counts={"sent": 1000},
                rates={"email.bounce": 0.05 * sev},
                thresholds={"email.bounce": {"warn": 0.025, "pause": 0.05}},
            ),
        )
        entry = await commit(store, d)
        act.submit(entry["id"], entry, d.actions)
    await until_idle(act)
    calls = standin.calls_to(OP)
    assert len(calls) == 500 and all(c.status == 200 for c in calls)
    # 1000 SES calls (GetTenant + Update each) at 5/s after a burst of 5: ~199 s of fake time.
    assert clock[0] == pytest.approx((1000 - 5) / 5.0, rel=0.01)
    by_rank = {t: r for r, t in enumerate(sorted(range(500), key=lambda i: -severities[i]))}
    ranks = [by_rank[arns[c.params["ReputationEntityReference"]]] for c in calls]
    assert all(
        abs(r - i) <= 4 for i, r in enumerate(ranks)
    )  # worst first, give or take the 4 workers
