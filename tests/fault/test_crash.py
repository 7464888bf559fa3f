"""SIGKILL at random moments: nothing lost, nothing counted twice, one pause per crossing.

Three seeded trials here (about 20 s each); `python bench/crash_trials.py --trials 20` runs
twenty, and `pytest -m slow tests/fault/test_crash.py` runs them as a test.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from crash import (
    SHUTDOWN_TIMEOUT_S,
    DaemonProcess,
    build_events,
    check_outcome,
    create_queue,
    daemon_env,
    disabled_calls,
    produce,
    read_store,
    run_trial,
    sqs_client,
    wait_empty,
    write_rules,
)
from proxy import SLOW, FaultProxy

from conftest import eventually
from monitor.sandbox import Sandbox

DEFAULT_SEEDS = (11, 12, 13)
SLOW_SEEDS = tuple(range(100, 120))


async def _trial(sandbox: Sandbox, workdir: Path, seed: int, *, max_kills: int) -> None:
    r = await run_trial(sandbox, workdir, seed=seed, max_kills=max_kills)
    assert r.failures == [], f"seed {seed}, kills after {r.kill_delays}s"
    assert r.kills >= 1 and r.kills_serving >= 1  # the trial did kill a serving daemon
    assert r.duplicates > 0 and r.messages == r.records + r.duplicates
    assert not r.resent, f"a pause re-sent to SES after a kill: {r.resent}"


@pytest.mark.parametrize("seed", DEFAULT_SEEDS)
async def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    sandbox: Sandbox, tmp_path: Path, seed: int
) -> None:
    await _trial(sandbox, tmp_path, seed, max_kills=4)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
async def test_sigkill_twenty_trials(sandbox: Sandbox, tmp_path: Path, seed: int) -> None:
    await _trial(sandbox, tmp_path, seed, max_kills=6)


UPDATE = "UpdateReputationEntityCustomerManagedStatus"
PAUSE_CALL_DELAY_S = 2.0  # the proxy holds the pause call this long before SES gets it


async def test_kill_while_the_pause_call_is_in_flight(sandbox: Sandbox, tmp_path: Path) -> None:
    """The worst moment: the pause is committed and its SES call is on the wire when the
    daemon dies; SES applies it. The restart must not pause the tenant a second time."""
    tag = f"inflight-{uuid.uuid4().hex[:6]}"
    names = [f"{tag}-t0", f"{tag}-t1"]
    arns = {n: sandbox.ses.add_tenant(n) for n in names}
    events = build_events(names, seed=3, now=time.time(), crossing=1, good_mails=10)
    rules_dir = write_rules(tmp_path)
    state = tmp_path / "state.db"
    async with (
        sqs_client(sandbox) as sqs,
        FaultProxy(
            sandbox.ses.url,
            service="sesv2",
            rates={SLOW: 1.0},
            operations=[UPDATE],
            slow_s=(PAUSE_CALL_DELAY_S, PAUSE_CALL_DELAY_S),
        ) as ses_proxy,
    ):
        queue = await create_queue(sqs, tag)
        env = daemon_env(sandbox, queue=queue, state=state, rules_dir=rules_dir)
        env["AWS_ENDPOINT_URL_SESV2"] = ses_proxy.url
        first = await DaemonProcess.spawn(env, tmp_path, "run-1")
        runs = [first]
        try:
            await produce(sqs, queue, events.bodies)
            await eventually(
                lambda: ses_proxy.inflight_since(UPDATE, time.monotonic()) > 0,
                what="the pause call in flight",
            )
            await first.kill()
            # SES still gets the call and applies it; the daemon never hears back.
            (bad,) = events.crossing
            await eventually(lambda: disabled_calls(sandbox, arns[bad]), what="SES applied it")
            ses_proxy.rates = {}
            last = await DaemonProcess.spawn(env, tmp_path, "run-2")
            runs.append(last)
            await wait_empty(sqs, queue)
            await last.wait_logged("daemon_started")
            code, _ = await last.terminate(timeout=SHUTDOWN_TIMEOUT_S + 5)
            assert code == 0, last.tail()
        finally:
            for d in runs:
                if d.returncode is None:
                    await d.kill()
    stored = await read_store(state, rules_dir, names)
    assert check_outcome(events, stored, sandbox, arns) == []
