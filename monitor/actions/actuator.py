"""Carries out committed decisions: the outbox worker.

A decision reaches the actuator only after it is committed with its actions marked pending,
so a crash between commit and action loses nothing: on start the pending entries run again
(every action is idempotent: disabling a disabled tenant changes nothing). Dry run is checked
here, at the last moment, and is still counted and audited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor import logs
from monitor.actions.base import Action, ActionFailed, ActionRequest
from monitor.aws import AwsError
from monitor.core.events import Channel
from monitor.core.state import Kind
from monitor.metrics import Metrics
from monitor.retry import Backoff
from monitor.store.base import Store

log = logs.get("monitor.actions")


@dataclass(slots=True)
class Job:
    request: ActionRequest
    actions: tuple[str, ...]
    received_at: float | None = None
    results: list[dict[str, str]] = field(default_factory=list)


# Pauses first, then resumes, then notifications; within a kind, the tenant furthest over
# its threshold first: when 500 tenants cross at once, the worst is stopped first.
KIND_ORDER = {Kind.PAUSE: 0, Kind.RESUME: 1}


def severity(entry: dict[str, Any]) -> float:
    """How far over its pause threshold the worst rate of a decision is (1.0 = at it)."""
    ev = entry.get("evidence") or {}
    rates, thresholds = ev.get("rates") or {}, ev.get("thresholds") or {}
    worst = 0.0
    for name, value in rates.items():
        pause = (thresholds.get(name) or {}).get("pause")
        if pause:
            worst = max(worst, float(value) / float(pause))
    return worst


def priority(entry: dict[str, Any], seq: int) -> tuple[int, float, int]:
    return (KIND_ORDER.get(Kind(entry["decision"]), 2), -severity(entry), seq)


class Actuator:
    def __init__(
        self,
        *,
        actions: Mapping[str, Action],
        store: Store,
        metrics: Metrics,
        clock: Callable[[], float],
        dry_run: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_attempts: int = 6,
        workers: int = 4,
    ) -> None:
        self.actions = actions
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.dry_run = dry_run
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.workers = workers
        self._queue: asyncio.PriorityQueue[tuple[tuple[int, float, int], Job]] = (
            asyncio.PriorityQueue()
        )
        self._seq = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = 0

    def submit(
        self,
        audit_id: int,
        entry: dict[str, Any],
        actions: tuple[str, ...],
        received_at: float | None = None,
        *,
        rerun: bool = False,
    ) -> None:
        req = ActionRequest(
            audit_id=audit_id,
            tenant=entry["tenant"],
            channel=Channel(entry["channel"]),
            kind=Kind(entry["decision"]),
            reason=entry["reason"],
            entry=entry,
            rerun=rerun,
        )
        self._busy += 1
        self._idle.clear()
        self._seq += 1
        self._queue.put_nowait((priority(entry, self._seq), Job(req, actions, received_at)))

    async def resubmit_pending(self) -> int:
        """Queue what a previous run committed but did not finish acting on."""
        pending = await self.store.pending_actions()
        for p in pending:
            self.submit(p.audit_id, p.entry, p.actions, rerun=True)
        return len(pending)

    async def join(self) -> None:
        """Wait until every submitted job is done (shutdown drains with a deadline)."""
        await self._idle.wait()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for _ in range(self.workers):
                tg.create_task(self._worker())

    async def _worker(self) -> None:
        while True:
            _, job = await self._queue.get()
            try:
                await self._do(job)
            finally:
                self._busy -= 1
                if self._busy == 0:
                    self._idle.set()

    async def _do(self, job: Job) -> None:
        req = job.request
        for name in job.actions:
            action = self.actions.get(name)
            if action is None:
                result, detail = "error", f"action {name!r} is not configured"
            elif self.dry_run:
                result, detail = "dry_run", "DRY_RUN: not called"
            else:
                result, detail = await self._attempt(action, req)
            self.metrics.actions.labels(name, result).inc()
            job.results.append({"action": name, "result": result, "detail": detail})
            log.info(
                "action_done" if result != "error" else "action_failed",
                action=name,
                result=result,
                detail=detail,
                tenant=req.tenant,
                channel=req.channel.value,
                decision=req.kind.value,
            )
        await self.store.record_actions(req.audit_id, job.results, done=True)
        if req.kind is Kind.PAUSE and job.received_at is not None:
            self.metrics.decision_latency.observe(max(0.0, self.clock() - job.received_at))

    async def _attempt(self, action: Action, req: ActionRequest) -> tuple[str, str]:
        backoff = Backoff(base=0.5, cap=30.0)
        for attempt in range(1, self.max_attempts + 1):
            try:
                return "ok", await action(req)
            except (AwsError, ActionFailed) as e:
                if not e.transient or attempt == self.max_attempts:
                    return "error", str(e)[:500]
                delay = backoff.next()
                log.warning(
                    "action_retry",
                    action=action.name,
                    tenant=req.tenant,
                    attempt=attempt,
                    error=str(e)[:200],
                    delay_s=round(delay, 3),
                )
                await self.sleep(delay)
            except Exception as e:  # a bug or an unexpected response: audit it, keep running
                log.exception("action_crashed", action=action.name, tenant=req.tenant)
                return "error", f"{type(e).__name__}: {e}"[:500]
        raise AssertionError("unreachable")
