"""AWS failing 30 % of the time: the daemon keeps going, loses nothing, counts every error,
pauses once, and `/readyz` follows the age of the last good poll.

The daemon runs in-process (its clock injected, so "60 s without a successful poll" takes no
60 s) with SQS and SESv2 behind fault proxies; the producer talks to moto directly.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from crash import (
    SLOTS,
    EventSet,
    build_events,
    check_outcome,
    create_queue,
    disabled_calls,
    produce,
    read_store,
    sqs_client,
    wait_empty,
    write_rules,
)
from proxy import DROP, E500, E503, SLOW, THROTTLE, FaultProxy
from structlog.testing import capture_logs

from conftest import eventually
from monitor.app import READY_POLL_AGE_S, Daemon
from monitor.core.events import Channel
from monitor.rulesfile import load_rules_dir
from monitor.sandbox import Sandbox
from monitor.settings import load_settings

SEED = 29
# 30 % of calls fail (throttling, 500, 503, dropped connections); 5 % more are slow.
RATES = {THROTTLE: 0.12, E500: 0.06, E503: 0.06, DROP: 0.06, SLOW: 0.05}
SQS_OPERATIONS = ("ReceiveMessage", "DeleteMessageBatch")
SES_OPERATIONS = ("GetTenant", "UpdateReputationEntityCustomerManagedStatus")
# The first four pause calls are throttled: more than botocore's three attempts, so the
# actuator itself must retry.
SES_FAIL_FIRST = 4
# What the daemon's error label says for each fault (the AWS code, or botocore's exception).
ERROR_LABEL = {
    THROTTLE: "ThrottlingException",
    E500: "InternalFailure",
    E503: "ServiceUnavailable",
    DROP: "ConnectionClosedError",
}
MAX_CLOCK_JUMPS = 3
# Longer than a batch can take with every retry (4 deletes × 3 attempts with backoff), so a
# message comes back only if its delete failed for good: duplicates are then exact.
VISIBILITY_TIMEOUT_S = 30


class Clock:
    """Wall time plus an offset the test advances."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def get_status(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status


def poll_errors(daemon: Daemon, queue: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for family in daemon.registry.collect():
        for s in family.samples:
            if s.name == "repmon_queue_poll_errors_total" and s.labels["queue"] == queue:
                out[s.labels["error"]] += int(s.value)
    return out


def sample(daemon: Daemon, name: str, labels: dict[str, str]) -> float:
    return daemon.registry.get_sample_value(name, labels) or 0.0


async def test_thirty_percent_of_aws_calls_failing(
    sandbox: Sandbox, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tag = f"faults-{uuid.uuid4().hex[:6]}"
    names = [f"{tag}-t{i}" for i in range(3)]
    arns = {n: sandbox.ses.add_tenant(n) for n in names}
    bad = names[0]
    events = build_events(names, seed=SEED, now=time.time(), crossing=1, good_mails=25)
    rules_dir = write_rules(tmp_path)
    state = tmp_path / "state.db"
    clock = Clock()

    sqs_proxy = FaultProxy(
        sandbox.moto.url, service="sqs", seed=SEED, rates=RATES, operations=SQS_OPERATIONS
    )
    ses_proxy = FaultProxy(
        sandbox.ses.url,
        service="sesv2",
        seed=SEED + 1,
        rates=RATES,
        operations=SES_OPERATIONS,
        fail_first={"UpdateReputationEntityCustomerManagedStatus": SES_FAIL_FIRST},
    )
    async with sqs_client(sandbox) as sqs, sqs_proxy, ses_proxy:
        queue = await create_queue(sqs, tag, visibility_timeout=VISIBILITY_TIMEOUT_S)
        qname = queue.rsplit("/", 1)[-1]
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", sqs_proxy.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", ses_proxy.url)
        settings = load_settings(
            queue_urls=queue,
            rules_dir=str(rules_dir),
            state_url=f"sqlite:///{state}",
            http_port=0,
            pollers=2,
        )
        daemon = Daemon(
            settings, load_rules_dir(rules_dir), clock=clock, stop=asyncio.Event(), wait_time_s=1
        )
        with capture_logs() as logs:
            task = asyncio.create_task(daemon.run())
            try:
                await eventually(
                    lambda: daemon.started.is_set() or task.done(), what="daemon start"
                )
                assert not task.done(), task.result()
                assert daemon.http is not None
                base = f"http://127.0.0.1:{daemon.http.bound_port}"
                await _counts_exact_and_one_pause(daemon, sqs, queue, qname, events, logs)
                await _readyz_follows_poll_age(daemon, sqs_proxy, clock, base)
                # Faults off: every retry still pending settles, then each call the daemon saw
                # fail (after all of botocore's attempts) is one count, under its error code.
                sqs_proxy.rates = {}
                await eventually(
                    lambda: (
                        poll_errors(daemon, qname)
                        == _labels(sqs_proxy.final_faults(SQS_OPERATIONS))
                    ),
                    timeout=30,
                    what="poll errors == calls that failed after every SDK retry",
                )
                errors = poll_errors(daemon, qname)
            finally:
                daemon.stop.set()
                code = await asyncio.wait_for(task, 30)
        assert code == 0

    # Every kind was injected, on both services, and survived.
    injected_sqs = sqs_proxy.injected_by_kind(SQS_OPERATIONS)
    injected_ses = ses_proxy.injected_by_kind(SES_OPERATIONS)
    assert set(injected_sqs) == {THROTTLE, E500, E503, DROP, SLOW}, injected_sqs
    assert injected_ses[THROTTLE] >= SES_FAIL_FIRST, injected_ses
    # The set rates held: about 30 % of the calls subject to them failed.
    drawn = sum(sqs_proxy.drawn[op] for op in SQS_OPERATIONS)
    drawn_failed = sum(
        n
        for k, n in sqs_proxy.injected_by_kind(SQS_OPERATIONS, drawn_only=True).items()
        if k != SLOW
    )
    assert 0.15 < drawn_failed / drawn < 0.45, (drawn_failed, drawn)
    calls = sum(sqs_proxy.calls[op] for op in SQS_OPERATIONS)
    assert errors[ERROR_LABEL[E503]] >= 2 * settings.pollers, (
        errors
    )  # the outage: each poller, twice
    print(
        f"faults injected: SQS {dict(injected_sqs)} of {calls} calls, SES {dict(injected_ses)};"
        f" failed calls seen by the daemon: {dict(errors)}"
    )

    stored = await read_store(state, rules_dir, names)
    assert check_outcome(events, stored, sandbox, arns) == []
    assert disabled_calls(sandbox, arns[bad]) == ["DISABLED"]


def _labels(final: Counter[str]) -> Counter[str]:
    out: Counter[str] = Counter()
    for kind, n in final.items():
        out[ERROR_LABEL[kind]] += n
    return out


async def _counts_exact_and_one_pause(
    daemon: Daemon,
    sqs: Any,
    queue: str,
    qname: str,
    events: EventSet,
    logs: Sequence[MutableMapping[str, Any]],
) -> None:
    await produce(sqs, queue, events.bodies)
    await wait_empty(sqs, queue)
    assert daemon.actuator is not None
    await eventually(
        lambda: (
            sample(daemon, "repmon_actions_total", {"action": "ses_tenant", "result": "ok"}) == 1
        ),
        what="the pause action done",
    )
    now = daemon.clock()
    for t in events.tenants:
        snap = daemon.engine.tenants[t].snapshot(Channel.EMAIL, now).counts
        assert {k: snap[i] for k, i in SLOTS.items()} == events.expected[t], t
    processed = sample(daemon, "repmon_messages_total", {"queue": qname, "result": "processed"})
    duplicate = sample(daemon, "repmon_messages_total", {"queue": qname, "result": "duplicate"})
    # A batch whose delete failed for good comes back once more as duplicates, and so can a
    # receive whose response a fault swallowed (SQS is at-least-once): dedupe absorbs both,
    # which the exact counts above prove; the bound catches a redelivery storm.
    gave_up = sum(x["messages"] for x in logs if x["event"] == "sqs_delete_gave_up")
    assert processed == events.records
    assert duplicate is not None
    assert events.duplicates + gave_up <= duplicate <= events.duplicates + gave_up + 10
    assert sample(daemon, "repmon_actions_total", {"action": "ses_tenant", "result": "error"}) == 0
    (bad,) = events.crossing
    retries = [x for x in logs if x["event"] == "action_retry" and x["tenant"] == bad]
    assert retries, "the throttled pause was not retried by the actuator"
    pauses = [x for x in logs if x["event"] == "tenant_pause"]
    assert [x["tenant"] for x in pauses] == [bad]


async def _readyz_follows_poll_age(
    daemon: Daemon, proxy: FaultProxy, clock: Clock, base: str
) -> None:
    readyz = f"{base}/readyz"
    assert await get_status(readyz) == 200
    # A minute passing while polls succeed: the next good poll makes it ready again.
    clock.offset += READY_POLL_AGE_S + 1
    await eventually(lambda: _is(get_status(readyz), 200), what="ready again after a good poll")

    # SQS down for receives: once no receive admitted before the outage is still open, no
    # poll can succeed; then a minute passes (on the daemon's clock) without one.
    proxy.outage["ReceiveMessage"] = E503
    began = time.monotonic()
    failed_before = proxy.final_faults(["ReceiveMessage"], exhausted_only=True).total()
    await eventually(
        lambda: proxy.inflight_since("ReceiveMessage", began) == 0,
        what="receives admitted before the outage answered",
    )
    jumps = 0

    async def not_ready() -> bool:
        nonlocal jumps
        # A receive answered just before the outage may land after a jump; jump again.
        if await get_status(readyz) == 503:
            return True
        jumps += 1
        assert jumps <= MAX_CLOCK_JUMPS
        clock.offset += READY_POLL_AGE_S + 1
        return False

    await eventually(not_ready, what="/readyz 503 after a minute without a good poll")
    # ... and it stays so while every poller keeps failing.
    pollers = daemon.settings.pollers
    await eventually(
        lambda: (
            proxy.final_faults(["ReceiveMessage"], exhausted_only=True).total()
            >= failed_before + 2 * pollers
        ),
        what="every poller failing during the outage",
    )
    assert await get_status(readyz) == 503
    assert sample(daemon, "repmon_ready", {}) == 0
    assert await get_status(f"{base}/healthz") == 200  # alive, just not ready

    del proxy.outage["ReceiveMessage"]
    await eventually(
        lambda: _is(get_status(readyz), 200), timeout=40, what="/readyz 200 after recovery"
    )
    assert sample(daemon, "repmon_ready", {}) == 1


async def _is(aw: Any, want: int) -> bool:
    return bool(await aw == want)
