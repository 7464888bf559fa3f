"""Composition root: builds clients, registry, store and tasks; owns signals and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from monitor import logs
from monitor.actions.actuator import Actuator
from monitor.actions.base import Action
from monitor.actions.eventbridge import EventBridgeAction
from monitor.actions.ses_configuration_set import (
    SesConfigurationSetAction,
    rules_configuration_sets,
)
from monitor.actions.ses_tenant import SesTenantAction
from monitor.actions.webhook import WebhookAction
from monitor.aws import classify, client_config, region_of, session
from monitor.core.decode import DecodeError
from monitor.core.engine import Engine
from monitor.core.rules import Rules
from monitor.core.windows import BUCKETS
from monitor.http.server import Admin, HttpServer, build_app
from monitor.metrics import Metrics, TenantCollector, TenantLabels
from monitor.pipeline import Committer, Pipeline
from monitor.settings import Settings
from monitor.sources import ses_resources
from monitor.sources.sqs import Message, SqsSource
from monitor.store.base import Store
from monitor.store.sqlite import SqliteStore, path_from_url

log = logs.get("monitor.app")

READY_POLL_AGE_S = 60.0
TICK_S = 5.0  # time-driven transitions: auto-resume, warnings clearing as windows roll
PRUNE_S = 600.0


class ConfigError(Exception):
    """A setting that cannot work (exit 2)."""


def open_store(url: str) -> Store:
    if url.startswith("sqlite:///"):
        return SqliteStore(path_from_url(url))
    raise ConfigError(
        "invalid setting REPMON_STATE_URL: dynamodb:// state is not in this build yet; "
        "use sqlite:///PATH (one replica)"
    )


class Daemon:
    """`reputation-monitor run`. `stop` may be given by an embedding caller (demo, tests);
    otherwise SIGTERM/SIGINT set it."""

    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        *,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
        stop: asyncio.Event | None = None,
        wait_time_s: int = 20,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.clock = clock
        self.registry = registry or CollectorRegistry()
        self.stop = stop or asyncio.Event()
        self._own_signals = stop is None
        self.wait_time_s = wait_time_s
        self.metrics = Metrics(self.registry)
        self.engine = Engine(rules, max_tenants=settings.max_tenants)
        self.labels = TenantLabels(settings.metrics_tenant_limit)
        self.sources: list[SqsSource] = []
        self.http: HttpServer | None = None
        self.loaded = False
        self.started = asyncio.Event()  # set once serving: for embedding callers
        self.pipeline: Pipeline | None = None
        self.committer: Committer | None = None
        self.actuator: Actuator | None = None
        self.resources = ses_resources.TenantResources()  # what SES says each tenant owns
        self._learned_at = 0.0

    def ready(self) -> bool:
        if not self.loaded or not self.sources:
            return False
        now = self.clock()
        ok = all(
            s.last_ok is not None and now - s.last_ok <= READY_POLL_AGE_S for s in self.sources
        )
        self.metrics.ready.set(1 if ok else 0)
        return ok

    async def run(self) -> int:
        s = self.settings
        if not s.queue_urls:
            raise ConfigError(
                "invalid setting REPMON_QUEUE_URLS: required for run "
                "(comma-separated SQS queue URLs)"
            )
        used = {a for p in self.rules.policies.values() for a in p.actions}
        if "webhook" in used and not (s.webhook_url and s.webhook_secret):
            missing = "WEBHOOK_SECRET" if s.webhook_url else "WEBHOOK_URL"
            raise ConfigError(
                f"invalid setting REPMON_{missing}: the rules use the webhook action, which "
                "needs REPMON_WEBHOOK_URL and REPMON_WEBHOOK_SECRET"
            )
        self.store = store = open_store(s.state_url)
        started = time.monotonic()
        async with AsyncExitStack() as stack:
            stack.push_async_callback(store.close)
            if self._own_signals:
                self._install_signals()
            now = self.clock()
            loaded = await store.load(
                since=now - self.rules.max_window_s - self.rules.max_window_s / BUCKETS,
                keys_since=now - self.engine.dedupe_horizon_s,
                max_keys=self.engine.dedupe.capacity,
            )
            self.engine.restore(
                states=loaded.states, buckets=loaded.buckets, keys=loaded.keys, now=now
            )
            log.info(
                "state_loaded",
                tenants=len(loaded.states),
                buckets=len(loaded.buckets),
                dedupe_keys=len(loaded.keys),
            )

            sess = session()
            region = region_of(sess, s.aws_region)
            cfg = client_config()
            ses = await stack.enter_async_context(
                sess.create_client("sesv2", region_name=region, config=cfg)
            )
            actions: dict[str, Action] = {"ses_tenant": SesTenantAction(ses)}
            # Clients only for the actions some policy uses.
            if "ses_configuration_set" in used:
                actions["ses_configuration_set"] = SesConfigurationSetAction(
                    ses, self._configuration_sets
                )
            if "eventbridge" in used:
                events = await stack.enter_async_context(
                    sess.create_client("events", region_name=region, config=cfg)
                )
                actions["eventbridge"] = EventBridgeAction(events, s.event_bus_name)
            if "webhook" in used:
                http = await stack.enter_async_context(aiohttp.ClientSession())
                try:
                    actions["webhook"] = WebhookAction(http, s.webhook_url, s.webhook_secret)
                except ValueError as e:
                    raise ConfigError(f"invalid setting REPMON_WEBHOOK_URL: {e}") from None
            self.actuator = actuator = Actuator(
                actions=actions,
                store=store,
                metrics=self.metrics,
                clock=self.clock,
                dry_run=s.dry_run,
            )
            # Every action's series exist from the start at 0, so an alert on increase()
            # sees the first error too.
            for name in actions:
                for result in ("ok", "error", "dry_run"):
                    self.metrics.actions.labels(name, result)
            self.registry.register(TenantCollector(self.engine, self.labels, self.clock))
            self.committer = committer = Committer(
                engine=self.engine,
                store=store,
                actuator=actuator,
                metrics=self.metrics,
                labels=self.labels,
                # A lingering commit goes once as many batches wait as one queue has pollers:
                # a busy queue's pollers fill it at once, whatever the other queues do.
                gather=s.pollers,
            )
            dead_letter = None
            if s.dead_letter_queue_url:
                dlq_client = await stack.enter_async_context(
                    sess.create_client("sqs", region_name=region, config=cfg)
                )
                dead_letter = _dead_letter(dlq_client, s.dead_letter_queue_url)
            self.pipeline = pipeline = Pipeline(
                engine=self.engine,
                committer=committer,
                metrics=self.metrics,
                clock=self.clock,
                dead_letter=dead_letter,
            )
            for url in s.queue_urls:
                # One session and client per queue (its own connection pool and credentials
                # cache), shared by that queue's pollers: a slow queue cannot starve another.
                client = await stack.enter_async_context(
                    session().create_client(
                        "sqs",
                        region_name=region,
                        config=client_config(read_timeout=self.wait_time_s + 10),
                    )
                )
                self.sources.append(
                    SqsSource(
                        client=client,
                        queue_url=url,
                        handler=pipeline.handle,
                        metrics=self.metrics,
                        clock=self.clock,
                        pollers=s.pollers,
                        wait_time_s=self.wait_time_s,
                    )
                )
            admin = Admin(
                engine=self.engine,
                store=store,
                commit=committer.commit,
                clock=self.clock,
                ready=self.ready,
                token=s.admin_token,
            )
            self.http = HttpServer(
                build_app(registry=self.registry, admin=admin), s.http_host, s.http_port
            )
            await self.http.start()
            stack.push_async_callback(self.http.stop)
            self.loaded = True
            log.info(
                "daemon_started",
                queues=[src.name for src in self.sources],
                pollers=s.pollers,
                http=f"http://{s.http_host}:{self.http.bound_port}",
                dry_run=s.dry_run,
                region=region,
                tenants_in_rules=len(self.rules.tenants),
            )
            resubmitted = await actuator.resubmit_pending()
            if resubmitted:
                log.info("actions_resumed", pending=resubmitted)
            await self._learn(ses)
            self.started.set()
            code = await self._serve(actuator, ses)
            log.info(
                "daemon_stopped",
                exit_code=code,
                uptime_s=round(time.monotonic() - started, 1),
                events=pipeline.events,
                commits=committer.commits,
                tenants=len(self.engine.tenants),
            )
            return code

    async def _serve(self, actuator: Actuator, ses: Any) -> int:
        assert self.committer is not None
        sources = [
            asyncio.create_task(src.run(self.stop), name=f"source-{src.name}")
            for src in self.sources
        ]
        workers = asyncio.create_task(actuator.run(), name="actuator")
        maintenance = asyncio.create_task(self._maintain(ses), name="maintenance")
        stopping = asyncio.create_task(self.stop.wait())
        code = 0
        done, _ = await asyncio.wait(
            {stopping, workers, maintenance, *sources}, return_when=asyncio.FIRST_COMPLETED
        )
        failed = [t for t in done if t is not stopping and not t.cancelled() and t.exception()]
        for t in failed:
            log.critical("task_failed", task=t.get_name(), error=repr(t.exception()))
            code = 1
        # Shutdown, in this order, within SHUTDOWN_TIMEOUT:
        # 1. stop receiving (pollers abandon their long polls; in-flight batches go on),
        self.stop.set()
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_timeout
        # 2. let in-flight batches finish: each commits its effect and deletes its messages,
        await _until(deadline, asyncio.gather(*sources, return_exceptions=True))
        maintenance.cancel()
        # 3. commit whatever is left (admin changes, ticks),
        if code == 0:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.committer.commit(), max(0.1, deadline - asyncio.get_running_loop().time())
                )
            # 4. finish the actions of committed decisions; what is left stays pending in the
            #    outbox and runs at the next start.
            await _until(deadline, actuator.join())
        workers.cancel()
        for t in (*sources, workers, maintenance, stopping):
            with contextlib.suppress(BaseException):
                await t
        return code

    def _configuration_sets(self, tenant: str) -> list[str]:
        """A tenant's configuration sets: mapped in rules, plus those SES reports it owns."""
        mapped = rules_configuration_sets(self.rules)(tenant)
        return sorted({*mapped, *self.resources.configuration_sets_of(tenant)})

    async def _learn(self, ses: Any) -> None:
        res = await ses_resources.refresh(ses)
        if res is not None:
            self.resources = res
            self.engine.learn(res.configuration_sets, res.identities)
        self._learned_at = self.clock()

    async def _maintain(self, ses: Any) -> None:
        assert self.committer is not None
        last_prune = self.clock()
        while not self.stop.is_set():
            await asyncio.sleep(TICK_S)
            now = self.clock()
            if now - self._learned_at >= ses_resources.REFRESH_S:
                await self._learn(ses)
            if self.engine.tick(now):
                await self.committer.commit()
            self.ready()
            if now - last_prune >= PRUNE_S:
                # Bounds: dedupe keys and stored buckets older than every window, and
                # healthy tenants whose windows emptied.
                last_prune = now
                self.engine.prune(now)
                evicted = self.engine.evict_idle(now)
                await self.committer.commit()
                await self.store.prune(
                    before=now - self.rules.max_window_s * (1 + 1 / BUCKETS),
                    keys_before=now - self.engine.dedupe_horizon_s,
                )
                log.info(
                    "maintenance_pruned", tenants_evicted=evicted, tenants=len(self.engine.tenants)
                )

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("shutdown_requested", signal=sig.name)
        self.stop.set()


async def _until(deadline: float, aw: Any) -> None:
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(aw, max(0.0, remaining))
    except TimeoutError:
        log.warning("shutdown_deadline_passed")


def _dead_letter(client: Any, url: str) -> Callable[[Message, DecodeError], Any]:
    async def send(m: Message, err: DecodeError) -> bool:
        try:
            await client.send_message(
                QueueUrl=url,
                MessageBody=m.body,
                MessageAttributes={
                    "repmon-reason": {"DataType": "String", "StringValue": err.reason.value},
                    "repmon-detail": {"DataType": "String", "StringValue": err.detail or "-"},
                    "repmon-source-queue": {"DataType": "String", "StringValue": m.queue},
                },
            )
        except Exception as e:
            log.warning(
                "dead_letter_failed", queue=m.queue, message_id=m.message_id, error=classify(e).code
            )
            return False
        return True

    return send
