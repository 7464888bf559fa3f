"""Shared fixtures: the local AWS sandbox, AWS env pointing at it, and deadline polling."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from monitor.actions.actuator import Actuator
from monitor.app import Daemon
from monitor.aws import client_config
from monitor.rulesfile import load_rules_dir, write_rules_dir
from monitor.sandbox import Sandbox, SesStandIn
from monitor.sandbox.moto_server import queue_depth as moto_queue_depth
from monitor.settings import load_settings

POLL_INTERVAL_S = 0.02

# Property tests check behaviour, not speed: no per-example deadline for any of them.
# Hypothesis's default (200 ms) fails a test when one example is paused by something else: a
# gen-2 garbage collection over the heap a full run builds up (0.3-1.2 s measured on a loaded
# 2-core machine) or the process waiting for a CPU. The example then runs in 1 ms on replay,
# and Hypothesis reports the test as failing ("Unreliable test timings!", FlakyFailure).
# The same pauses can trip the too_slow health check (generation timing): suppressed too.
hypothesis_settings.register_profile(
    "repmon", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("repmon")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def aws_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point every AWS client created in this test at the sandbox."""
    env = sandbox.env()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


async def eventually(
    check: Callable[[], Awaitable[Any] | Any], *, timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll `check` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last) or isinstance(last, asyncio.Future):
            last = await last
        if last:
            return last
        await asyncio.sleep(POLL_INTERVAL_S)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


TEST_RULES = """\
policies:
  small:                      # the standard thresholds at a volume a test can reach
    window: 24h
    min_volume: 60
    email:
      bounce:    {warn: 0.025, pause: 0.05}
      complaint: {warn: 0.0005, pause: 0.001}
default_policy: small
"""


@pytest.fixture
async def sqs(aws_env: dict[str, str]) -> AsyncIterator[Any]:
    async with get_session().create_client("sqs") as client:
        yield client


@pytest.fixture
async def queue(sqs: Any) -> str:
    # A stopping daemon abandons its long polls; a message the server hands to an abandoned poll
    # comes back after the visibility timeout, kept short here so a restart test sees it soon.
    url: str = (
        await sqs.create_queue(
            QueueName=f"events-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "8"}
        )
    )["QueueUrl"]
    return url


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_rules_dir(tmp_path / "rules", {"test.yaml": TEST_RULES})


@pytest.fixture
async def standin() -> AsyncIterator[SesStandIn]:
    """A fresh SES stand-in of the test's own (the session sandbox's is shared)."""
    async with SesStandIn() as s:
        yield s


@pytest.fixture
async def ses(standin: SesStandIn) -> AsyncIterator[Any]:
    """An sesv2 client on `standin`, with botocore's retries off so ours can be counted."""
    async with get_session().create_client(
        "sesv2",
        endpoint_url=standin.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=client_config(max_attempts=1),
    ) as c:
        yield c


class FakeTime:
    """A clock that moves only when someone sleeps on it: pacing without wall time."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# -- the daemon in-process, for integration tests ---------------------------------------


class Running:
    def __init__(self, daemon: Daemon, task: asyncio.Task[int]) -> None:
        self.daemon = daemon
        self.task = task

    @property
    def url(self) -> str:
        assert self.daemon.http is not None
        return f"http://127.0.0.1:{self.daemon.http.bound_port}"

    def sample(self, name: str, labels: dict[str, str]) -> float | None:
        return self.daemon.registry.get_sample_value(name, labels)

    async def stop(self) -> int:
        self.daemon.stop.set()
        return await asyncio.wait_for(self.task, 30)


async def start(queue: str, rules_dir: Path, state: Path, **settings: Any) -> Running:
    """The real daemon, in-process, on `queue`; `settings` override the test defaults."""
    defaults: dict[str, Any] = {
        "queue_urls": queue,
        "rules_dir": str(rules_dir),
        "state_url": f"sqlite:///{state}",
        "http_port": 0,
        "pollers": 2,
    }
    s = load_settings(**(defaults | settings))
    daemon = Daemon(s, load_rules_dir(rules_dir), stop=asyncio.Event(), wait_time_s=1)
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: daemon.started.is_set() or task.done(), what="daemon start")
    if task.done():
        task.result()
    return Running(daemon, task)


async def send_paced(sqs: Any, queue: str, bodies: list[str], depth: int = 60) -> None:
    """Send in batches of ten, keeping the queue shallow as real traffic would."""
    for i in range(0, len(bodies), 10):
        await sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])],
        )
        await eventually(
            lambda: queue_depth(sqs, queue, visible_only=True, below=depth), what="queue drains"
        )


async def queue_depth(
    sqs: Any, queue: str, *, visible_only: bool = False, below: int | None = None
) -> Any:
    """The depth, or with `below` whether it is under that (for `eventually`)."""
    n = await moto_queue_depth(sqs, queue, visible_only=visible_only)
    return n < below if below is not None else n


async def until_idle(act: Actuator) -> None:
    """Run the actuator's real workers until every submitted job is done."""
    workers = asyncio.create_task(act.run())
    try:
        await asyncio.wait_for(act.join(), 30)
    finally:
        workers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await workers
