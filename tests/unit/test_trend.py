from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.engine import Engine
from monitor.core.events import Channel, Event, Outcome, TenantHints, event_key
from monitor.core.rules import Policy, Rate, Rules, Threshold
from monitor.core.state import Status
from monitor.core.trend import DomainCounts, Trend

T0 = 1_750_000_000.0


def test_eta_on_a_linear_trend() -> None:
    trend = Trend()
    for i in range(30):
        trend.add(T0 + 10 * i, 0.03 + 0.0001 * i)
    # last point at 3.29 %, rising 0.01 % per 10 s: 5 % is 1710 s later
    eta = trend.eta(0.05)
    assert eta == pytest.approx(1710.0, rel=0.10)


def test_no_eta_without_history_or_when_falling() -> None:
    t = Trend()
    t.add(T0, 0.03)
    assert t.eta(0.05) is None
    for i in range(1, 10):
        t.add(T0 + 10 * i, 0.03 - 0.001 * i)
    assert t.eta(0.05) is None
    t.add(T0 + 200, 0.06)
    assert t.eta(0.05) == 0.0


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(0, 0.04),
    slope=st.floats(1e-7, 1e-3),
    n=st.integers(7, 60),
    target=st.floats(0.041, 0.5),
)
def test_eta_is_exact_on_noise_free_lines(
    start: float, slope: float, n: int, target: float
) -> None:
    trend = Trend()
    for i in range(n):
        trend.add(T0 + 10 * i, start + slope * 10 * i)
    last = start + slope * 10 * (n - 1)
    eta = trend.eta(target)
    if last >= target:
        assert eta == 0.0
    else:
        assert eta == pytest.approx((target - last) / slope, rel=0.10)


def test_domain_counts_are_bounded_and_ranked() -> None:
    dc = DomainCounts(limit=3)
    dc.add(("a.example",) * 8)
    dc.add(("b.example",) * 2)
    for i in range(100):
        dc.add((f"r{i}.example",))
    assert len(dc.counts) <= 3
    top = dc.top()
    assert top[0] == {
        "domain": "a.example",
        "count": 8,
        "share": pytest.approx(8 / sum(dc.counts.values()), abs=1e-4),
    }


def test_engine_projects_the_pause_time_of_a_warning_tenant() -> None:
    """1000 sent; one more bounce every 10 s from 3 %: 5 % (pause) is 200 s away."""
    policy = Policy(
        name="p", min_volume=100, thresholds={Rate.EMAIL_BOUNCE: Threshold(0.025, 0.05)}
    )
    e = Engine(Rules(default_policy="p", policies={"p": policy}))
    hints = TenantHints(tenant_tag="acme")

    def add(n: int, outcome: Outcome, t: float, count: int = 1) -> None:
        e.ingest(
            [
                Event(
                    event_key(str(n), outcome),
                    t,
                    Channel.EMAIL,
                    outcome,
                    count,
                    hints,
                    ("x.example",),
                )
            ],
            t,
            t,
        )

    add(0, Outcome.SEND, T0, 1000)
    add(1, Outcome.BOUNCE_PERMANENT, T0, 30)
    e.evaluate(T0)
    assert e.tenants["acme"].state.status is Status.WARNING
    for i in range(1, 10):
        add(100 + i, Outcome.BOUNCE_PERMANENT, T0 + 10 * i)
        e.evaluate(T0 + 10 * i)
    # at T0 + 90 the rate is 3.9 %: 11 more bounces, 110 s, to 5 %
    eta = e.tenants["acme"].pause_eta(T0 + 90)[Rate.EMAIL_BOUNCE]
    assert eta == pytest.approx(110.0, rel=0.10)
    assert e.tenants["acme"].domains is not None
    assert e.tenants["acme"].domains[Outcome.BOUNCE_PERMANENT].top()[0]["domain"] == "x.example"
