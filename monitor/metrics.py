"""Every metric, declared once against an injected registry (contract: "Metrics").

Per-tenant series come from a collector that reads the engine at scrape time, so the hot
path only bumps plain dict counters; the tenant label is capped by `METRICS_TENANT_LIMIT`.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.core.engine import Engine
from monitor.core.policy import format_duration
from monitor.core.state import Status

OTHER = "_other"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            "repmon_messages", "SQS messages handled", ["queue", "result"], registry=registry
        )
        self.undecodable = Counter(
            "repmon_undecodable_messages",
            "Messages that could not be decoded, by reason",
            ["queue", "reason"],
            registry=registry,
        )
        self.poll_errors = Counter(
            "repmon_queue_poll_errors", "Failed SQS calls", ["queue", "error"], registry=registry
        )
        self.actions = Counter(
            "repmon_actions", "Actions carried out", ["action", "result"], registry=registry
        )
        self.pauses = Counter(
            "repmon_tenant_pauses", "Tenant pauses", ["tenant", "reason"], registry=registry
        )
        self.event_lag = Histogram(
            "repmon_event_lag_seconds",
            "From event time to processing",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.decision_latency = Histogram(
            "repmon_decision_latency_seconds",
            "From receipt of the crossing event to the action done",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ready = Gauge("repmon_ready", "1 when /readyz answers 200", registry=registry)


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """`histogram.observe(v)` for each of `values` (no exemplars), with one update per bucket
    touched and one of the sum: a batch's event lags in a few increments, not one observe
    (a lock and a scan of the bounds) per event. Falls back to `observe` if this
    prometheus_client's Histogram is not laid out as expected."""
    if not values:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if (
        not (isinstance(bounds, list) and isinstance(buckets, list) and len(bounds) == len(buckets))
        or total is None
        or not hasattr(total, "inc")
    ):
        for v in values:
            histogram.observe(v)
        return
    counts: dict[int, int] = {}
    for v in values:
        if math.isnan(v):  # in the sum, in no bucket (no bound compares >= to it)
            continue
        i = bisect_left(bounds, v)  # the first bound >= v, as observe's scan finds it
        counts[i] = counts.get(i, 0) + 1
    total.inc(sum(values))
    for i, n in counts.items():
        buckets[i].inc(n)


class TenantLabels:
    """Which tenants get their own label value.

    The first `limit` tenants seen keep their label for the life of the process, and so does
    any tenant once it is not healthy (so on-call always sees it by name); the rest fold into
    `_other`. Sticky, so a counter never moves between series.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._named: set[str] = set()

    def label(self, tenant: str, status: Status = Status.HEALTHY) -> str:
        named = self._named
        if tenant in named:
            return tenant
        if len(named) < self.limit or status is not Status.HEALTHY:
            named.add(tenant)
            return tenant
        return OTHER


class TenantCollector(Collector):
    """repmon_events_total, repmon_tenant_rate/threshold/status and repmon_tenants, read from
    the engine at scrape time."""

    def __init__(self, engine: Engine, labels: TenantLabels, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.labels = labels
        self.clock = clock

    def describe(self) -> Iterator[Metric]:
        return iter(())  # collected lazily; nothing to describe up front

    def collect(self) -> Iterator[Metric]:
        engine, now = self.engine, self.clock()
        label = self.labels.label
        statuses = {t: rec.state.status for t, rec in engine.tenants.items()}
        # Label non-healthy tenants first so they are never folded.
        for t, st in statuses.items():
            if st is not Status.HEALTHY:
                label(t, st)

        events = CounterMetricFamily(
            "repmon_events", "Events counted", labels=["tenant", "channel", "outcome"]
        )
        folded: dict[tuple[str, str, str], int] = {}
        for (tenant, channel, outcome), n in engine.event_counts.items():
            k = (label(tenant, statuses.get(tenant, Status.HEALTHY)), channel.value, outcome.value)
            folded[k] = folded.get(k, 0) + n
        for k, n in folded.items():
            events.add_metric(list(k), n)
        yield events

        rate = GaugeMetricFamily(
            "repmon_tenant_rate", "Rate over the policy window", labels=["tenant", "rate", "window"]
        )
        threshold = GaugeMetricFamily(
            "repmon_tenant_threshold", "Policy thresholds", labels=["tenant", "rate", "level"]
        )
        status = GaugeMetricFamily(
            "repmon_tenant_status", "1 for the tenant's current status", labels=["tenant", "status"]
        )
        channel_paused = GaugeMetricFamily(
            "repmon_tenant_channel_paused",
            "1 while a tenant's channel is paused (a pause can be email or SMS alone)",
            labels=["tenant", "channel"],
        )
        eta = GaugeMetricFamily(
            "repmon_tenant_pause_eta_seconds",
            "Projected time until a warning rate reaches its pause threshold at its current trend",
            labels=["tenant", "rate"],
        )
        counts = dict.fromkeys((s.value for s in Status), 0)
        for tenant, rec in engine.tenants.items():
            st = statuses[tenant]
            counts[st.value] += 1
            name = label(tenant, st)
            if name == OTHER:
                continue
            window = format_duration(rec.policy.window_s)
            for channel in rec.windows:
                snap = rec.snapshot(channel, now)
                for r, th in rec.policy.channel_thresholds(channel).items():
                    rate.add_metric([name, r.short, window], snap.rate(r))
                    threshold.add_metric([name, r.short, "warn"], th.warn)
                    threshold.add_metric([name, r.short, "pause"], th.pause)
            for one in Status:
                status.add_metric([name, one.value], 1.0 if one is st else 0.0)
            for channel, cs in rec.state.channels.items():
                channel_paused.add_metric(
                    [name, channel.value], 1.0 if cs.status is Status.PAUSED else 0.0
                )
            if rec.trends:
                for r, seconds in rec.pause_eta(now).items():
                    eta.add_metric([name, r.short], seconds)
        yield rate
        yield threshold
        yield status
        yield channel_paused
        yield eta
        evicted = CounterMetricFamily(
            "repmon_tenants_evicted", "Tenants forgotten to bound memory", labels=["reason"]
        )
        for reason, n in engine.evicted.items():
            evicted.add_metric([reason], n)
        yield evicted
        tenants = GaugeMetricFamily("repmon_tenants", "Tenants by status", labels=["status"])
        for value, n in counts.items():
            tenants.add_metric([value], n)
        yield tenants
