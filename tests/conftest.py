"""Shared fixtures: the local AWS sandbox, AWS env pointing at it, and deadline polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from monitor.sandbox import Sandbox

POLL_INTERVAL_S = 0.02


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
