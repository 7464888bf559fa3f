"""observe_many: the same exposition as one observe per value."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from monitor.metrics import LAG_BUCKETS, observe_many


def histogram() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    return registry, Histogram("lag_seconds", "lag", buckets=LAG_BUCKETS, registry=registry)


def samples(registry: CollectorRegistry) -> list[str]:
    # _created differs between two histograms made a moment apart; everything else must not.
    return [
        line for line in generate_latest(registry).decode().splitlines() if "_created" not in line
    ]


def test_observe_many_matches_one_observe_per_value() -> None:
    values = [0.0, 0.1, 0.1000001, 0.5, 3.0, 900.0, 7200.0, 86400.0, 1e9, math.inf, 42.0, 0.1]
    one, h1 = histogram()
    many, h2 = histogram()
    for v in values:
        h1.observe(v)
    observe_many(h2, values)
    observe_many(h2, [])
    assert samples(one) == samples(many)
    assert h2._sum.get() == math.inf  # type: ignore[attr-defined]


def test_observe_many_leaves_nan_out_of_the_buckets_as_observe_does() -> None:
    one, h1 = histogram()
    many, h2 = histogram()
    for v in (1.0, math.nan):
        h1.observe(v)
    observe_many(h2, [1.0, math.nan])
    assert samples(one) == samples(many)


def test_observe_many_counts_a_batch_in_its_buckets() -> None:
    registry, h = histogram()
    observe_many(h, [0.05, 0.05, 2.0])
    assert registry.get_sample_value("lag_seconds_bucket", {"le": "0.1"}) == 2
    assert registry.get_sample_value("lag_seconds_bucket", {"le": "5.0"}) == 3
    assert registry.get_sample_value("lag_seconds_count") == 3
    assert registry.get_sample_value("lag_seconds_sum") == 2.1
