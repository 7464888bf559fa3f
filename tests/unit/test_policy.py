"""State machine transitions (contract: "Tenant states"), as a table plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.events import Channel
from monitor.core.policy import actions_for, auto_resume_due, evaluate
from monitor.core.rules import Policy, Rate, Threshold
from monitor.core.state import Actor, ChannelState, Kind, Status
from monitor.core.windows import Snapshot

STANDARD = Policy(
    name="standard",
    min_volume=500,
    thresholds={
        Rate.EMAIL_BOUNCE: Threshold(0.025, 0.05),
        Rate.EMAIL_COMPLAINT: Threshold(0.0005, 0.001),
        Rate.SMS_FAILURE: Threshold(0.10, 0.20),
        Rate.SMS_OPT_OUT: Threshold(0.01, 0.02),
    },
    actions=("ses_tenant", "eventbridge"),
)
MONITOR = Policy(name="monitor", thresholds=STANDARD.thresholds, actions=())
AUTO = Policy(name="auto", thresholds=STANDARD.thresholds, auto_resume_s=3600.0)


def email(sent: int, bounces: int = 0, complaints: int = 0) -> Snapshot:
    return Snapshot((sent, 0, bounces, 0, complaints, 0, 0, 0))


def sms(final: int, failed: int = 0, opt_out: int = 0) -> Snapshot:
    return Snapshot((0, 0, 0, 0, 0, final, failed, opt_out))


def step(
    status: Status,
    snap: Snapshot,
    policy: Policy = STANDARD,
    channel: Channel = Channel.EMAIL,
    **state: object,
) -> tuple[Status, Kind | None, ChannelState]:
    cs = ChannelState(status=status, **state)  # type: ignore[arg-type]
    d = evaluate("t1", channel, cs, policy, snap, 1000.0)
    return cs.status, (d.kind if d else None), cs


@pytest.mark.parametrize(
    ("start", "snap", "end", "kind"),
    [
        # below min_volume nothing acts, however bad the rate
        (Status.HEALTHY, email(499, 100), Status.HEALTHY, None),
        (Status.HEALTHY, email(1000, 10), Status.HEALTHY, None),  # 1 % < warn 2.5 %
        (Status.HEALTHY, email(1000, 25), Status.WARNING, Kind.WARN),  # = warn
        (Status.HEALTHY, email(1000, 50), Status.PAUSED, Kind.PAUSE),  # = pause, straight through
        (Status.HEALTHY, email(2000, 0, 1), Status.WARNING, Kind.WARN),  # complaint 0.05 % = warn
        (Status.HEALTHY, email(1000, 0, 1), Status.PAUSED, Kind.PAUSE),  # complaint 0.1 % = pause
        (Status.WARNING, email(1000, 60), Status.PAUSED, Kind.PAUSE),
        # hysteresis: warning holds until every rate < 0.8 × warn (2.0 %)
        (Status.WARNING, email(1000, 24), Status.WARNING, None),
        (Status.WARNING, email(1000, 20), Status.WARNING, None),
        (Status.WARNING, email(1000, 19), Status.HEALTHY, Kind.CLEAR),
        # a pause holds: only resume ends it
        (Status.PAUSED, email(1000, 0), Status.PAUSED, None),
        # probation: a pause-level crossing pauses again at once, before min_volume
        (Status.PROBATION, email(20, 2), Status.PAUSED, Kind.PAUSE),
        (Status.PROBATION, email(20, 0), Status.PROBATION, None),
        (Status.PROBATION, email(500, 5), Status.HEALTHY, Kind.RECOVER),
        (Status.PROBATION, email(500, 15), Status.WARNING, Kind.WARN),
    ],
)
def test_email_transitions(start: Status, snap: Snapshot, end: Status, kind: Kind | None) -> None:
    status, got, _ = step(start, snap)
    assert (status, got) == (end, kind)


@pytest.mark.parametrize(
    ("snap", "end", "kind"),
    [
        (sms(1000, 150), Status.WARNING, Kind.WARN),
        (sms(1000, 200), Status.PAUSED, Kind.PAUSE),
        (sms(1000, 0, 20), Status.PAUSED, Kind.PAUSE),
        (sms(100, 90), Status.HEALTHY, None),
    ],
)
def test_sms_transitions(snap: Snapshot, end: Status, kind: Kind | None) -> None:
    status, got, _ = step(Status.HEALTHY, snap, channel=Channel.SMS)
    assert (status, got) == (end, kind)


def test_policy_without_actions_records_would_pause_once_and_stays_warning() -> None:
    cs = ChannelState()
    d1 = evaluate("t", Channel.EMAIL, cs, MONITOR, email(1000, 80), 1.0)
    d2 = evaluate("t", Channel.EMAIL, cs, MONITOR, email(1100, 90), 2.0)
    assert d1 is not None and d1.kind is Kind.WOULD_PAUSE
    assert d2 is None
    assert cs.status is Status.WARNING and cs.would_pause
    # back under 80 % of the pause threshold the latch opens; a new crossing records again
    assert evaluate("t", Channel.EMAIL, cs, MONITOR, email(1000, 30), 3.0) is None
    assert not cs.would_pause
    d3 = evaluate("t", Channel.EMAIL, cs, MONITOR, email(1000, 70), 4.0)
    assert d3 is not None and d3.kind is Kind.WOULD_PAUSE


def test_pause_decision_carries_evidence_and_actions() -> None:
    cs = ChannelState()
    d = evaluate("t", Channel.EMAIL, cs, STANDARD, email(1000, 62), 5.0, received_at=4.5)
    assert d is not None
    assert d.actions == ("ses_tenant", "eventbridge")
    assert d.actor == Actor.POLICY.value and d.received_at == 4.5
    assert d.evidence is not None
    assert d.evidence.rates["email.bounce"] == pytest.approx(0.062)
    assert d.evidence.thresholds["email.bounce"] == {"warn": 0.025, "pause": 0.05}
    assert d.evidence.counts["sent"] == 1000 and d.evidence.window == "24h"
    assert "email.bounce 6.20% ≥ pause 5.00%" in d.reason
    assert cs.paused_by == "policy" and cs.since == 5.0


def test_warn_runs_only_notifications_and_sms_skips_email_actions() -> None:
    assert actions_for(STANDARD, Kind.WARN, Channel.EMAIL) == ("eventbridge",)
    assert actions_for(STANDARD, Kind.PAUSE, Channel.SMS) == ("eventbridge",)
    assert actions_for(STANDARD, Kind.CLEAR, Channel.EMAIL) == ()


def test_auto_resume_only_for_policy_pauses_after_the_delay() -> None:
    cs = ChannelState(status=Status.PAUSED, since=0.0, paused_by="policy")
    assert not auto_resume_due(cs, AUTO, 3599.0)
    assert auto_resume_due(cs, AUTO, 3600.0)
    assert not auto_resume_due(cs, STANDARD, 10**9)  # auto_resume: false
    manual = ChannelState(status=Status.PAUSED, since=0.0, paused_by="admin:x", manual=True)
    assert not auto_resume_due(manual, AUTO, 10**9)


rates = st.integers(min_value=0, max_value=2000)


@settings(max_examples=300, deadline=None)
@given(
    start=st.sampled_from(list(Status)), sent=st.integers(0, 5000), bounces=rates, complaints=rates
)
def test_never_pauses_below_min_volume_outside_probation(
    start: Status, sent: int, bounces: int, complaints: int
) -> None:
    snap = email(sent, bounces, complaints)
    status, kind, _ = step(start, snap)
    if start is Status.PAUSED:
        assert status is Status.PAUSED and kind is None  # nothing automatic ends a pause
    if snap.email_sent < 500 and start in (Status.HEALTHY, Status.WARNING):
        assert kind in (None, Kind.CLEAR)
    if kind is not None:
        assert status is not start or kind is Kind.WOULD_PAUSE


@settings(max_examples=300, deadline=None)
@given(
    seq=st.lists(st.tuples(st.integers(500, 5000), st.integers(0, 400)), min_size=1, max_size=30)
)
def test_one_pause_per_crossing(seq: list[tuple[int, int]]) -> None:
    """However the rates move, a channel is paused at most once without a resume between."""
    cs = ChannelState()
    pauses = 0
    for i, (sent, bounces) in enumerate(seq):
        d = evaluate("t", Channel.EMAIL, cs, STANDARD, email(sent, bounces), float(i))
        pauses += d is not None and d.kind is Kind.PAUSE
    assert pauses <= 1
