"""The pure pipeline: dedupe → resolve → window → evaluate → drain, with a fake clock."""

from __future__ import annotations

from monitor.core.engine import Changes, Engine, MessageResult
from monitor.core.events import (
    Channel,
    Event,
    Outcome,
    TenantHints,
    TenantStatusEvent,
    TenantStatusKind,
    event_key,
)
from monitor.core.rules import Policy, Rate, Rules, TenantRule, Threshold
from monitor.core.state import ChannelState, Kind, Status, TenantState
from monitor.core.tenants import UNASSIGNED

T0 = 1_750_000_000.0
STD = Policy(
    name="standard",
    min_volume=100,
    thresholds={
        Rate.EMAIL_BOUNCE: Threshold(0.025, 0.05),
        Rate.EMAIL_COMPLAINT: Threshold(0.0005, 0.001),
    },
)
RULES = Rules(
    default_policy="standard",
    policies={"standard": STD},
    tenants=(TenantRule("bigco", configuration_sets=("bigco-tx",)),),
)


def ev(
    n: int,
    outcome: Outcome,
    tenant: str | None = "acme",
    t: float = T0,
    *,
    cs: str | None = None,
    count: int = 1,
) -> Event:
    return Event(
        key=event_key(str(n), outcome.value),
        time=t,
        channel=Channel.EMAIL,
        outcome=outcome,
        count=count,
        hints=TenantHints(tenant_tag=tenant, configuration_set=cs),
    )


def send_batch(
    engine: Engine, tenant: str, sends: int, bounces: int, now: float, start: int = 0
) -> None:
    for i in range(sends):
        engine.ingest([ev(start + i, Outcome.SEND, tenant, now)], now, now)
    for i in range(bounces):
        engine.ingest([ev(start + i, Outcome.BOUNCE_PERMANENT, tenant, now)], now, now)


def test_duplicates_count_once() -> None:
    e = Engine(RULES)
    assert e.ingest([ev(1, Outcome.SEND)], T0, T0) is MessageResult.PROCESSED
    assert e.ingest([ev(1, Outcome.SEND)], T0, T0) is MessageResult.DUPLICATE
    assert e.tenants["acme"].snapshot(Channel.EMAIL, T0).email_sent == 1
    assert e.event_counts[("acme", Channel.EMAIL, Outcome.SEND)] == 1


def test_late_events_are_dropped_and_not_remembered() -> None:
    e = Engine(RULES)
    old = T0 - 2 * 86400
    assert e.ingest([ev(1, Outcome.SEND, t=old)], T0, T0) is MessageResult.LATE
    assert event_key("1", "send") not in e.dedupe


def test_resolution_by_configuration_set_and_unassigned() -> None:
    e = Engine(RULES)
    e.ingest([ev(1, Outcome.SEND, None, cs="bigco-tx")], T0, T0)
    e.ingest([ev(2, Outcome.SEND, None, cs="unknown")], T0, T0)
    assert set(e.tenants) == {"bigco", UNASSIGNED}


def test_unassigned_is_counted_but_never_paused() -> None:
    e = Engine(RULES)
    send_batch(e, None, 200, 100, T0)  # type: ignore[arg-type]
    assert e.evaluate(T0) == []
    assert e.tenants[UNASSIGNED].state.status is Status.HEALTHY


def test_crossing_pauses_once_and_drains_everything_to_persist() -> None:
    e = Engine(RULES)
    send_batch(e, "acme", 100, 4, T0)
    assert e.evaluate(T0)[0].kind is Kind.WARN
    send_batch(e, "acme", 0, 3, T0 + 1, start=500)
    decisions = e.evaluate(T0 + 1)
    assert [d.kind for d in decisions] == [Kind.PAUSE]
    send_batch(e, "acme", 0, 10, T0 + 2, start=900)
    assert e.evaluate(T0 + 2) == []  # one pause per crossing
    ch = e.drain()
    assert [d.kind for d in ch.decisions] == [Kind.WARN, Kind.PAUSE]
    assert len(ch.keys) == 100 + 4 + 3 + 10
    assert [t for t, _ in ch.states] == ["acme"]
    assert sum(c[0] for *_, c in ch.buckets) == 100  # sends, in the buckets to upsert
    assert not e.drain()


def test_take_decisions_leaves_the_rest_to_drain() -> None:
    e = Engine(RULES)
    send_batch(e, "acme", 100, 7, T0)
    warn_or_pause = e.evaluate(T0)
    assert e.take_decisions() == warn_or_pause and warn_or_pause
    assert e.take_decisions() == []
    ch = e.drain()
    assert not ch.decisions
    assert len(ch.keys) == 107 and ch.states and ch.buckets


def test_manual_pause_holds_and_resume_starts_afresh() -> None:
    e = Engine(RULES)
    send_batch(e, "acme", 200, 0, T0)
    [d] = e.pause(
        "acme", actor="admin:abc", reason="customer asked", now=T0, channels=[Channel.EMAIL]
    )
    assert d.kind is Kind.PAUSE and d.actions == ("ses_tenant",)
    # already paused by hand: idempotent, no second audit entry
    assert (
        e.pause("acme", actor="admin:abc", reason="again", now=T0, channels=[Channel.EMAIL]) == []
    )
    send_batch(e, "acme", 200, 0, T0 + 1, start=1000)
    assert e.evaluate(T0 + 1) == []
    assert e.tenants["acme"].state.channels[Channel.EMAIL].status is Status.PAUSED
    [r] = e.resume(
        "acme", actor="admin:abc", reason="fixed list", now=T0 + 2, channels=[Channel.EMAIL]
    )
    assert r.kind is Kind.RESUME and r.evidence is not None and r.evidence.counts["sent"] == 400
    rec = e.tenants["acme"]
    assert rec.state.channels[Channel.EMAIL].status is Status.PROBATION
    assert rec.snapshot(Channel.EMAIL, T0 + 2).email_sent == 0
    # evidence from before the resume no longer counts, even if it arrives late
    assert (
        e.ingest([ev(5000, Outcome.BOUNCE_PERMANENT, t=T0 + 1)], T0 + 3, T0 + 3)
        is MessageResult.LATE
    )
    ch = e.drain()
    assert ("acme", "email") in ch.resets


def test_probation_repauses_at_once_and_recovers_at_min_volume() -> None:
    e = Engine(RULES)
    e.pause("acme", actor="admin:x", reason="r", now=T0, channels=[Channel.EMAIL])
    e.resume("acme", actor="admin:x", reason="r", now=T0 + 1, channels=[Channel.EMAIL])
    send_batch(e, "acme", 10, 1, T0 + 2)
    assert [d.kind for d in e.evaluate(T0 + 2)] == [Kind.PAUSE]
    e.resume("acme", actor="admin:x", reason="r", now=T0 + 3, channels=[Channel.EMAIL])
    send_batch(e, "acme", 100, 0, T0 + 4, start=100)
    assert [d.kind for d in e.evaluate(T0 + 4)] == [Kind.RECOVER]
    assert e.tenants["acme"].state.status is Status.HEALTHY


def test_warning_clears_on_tick_as_the_window_rolls() -> None:
    e = Engine(RULES)
    send_batch(e, "acme", 100, 3, T0)
    assert e.evaluate(T0)[0].kind is Kind.WARN
    assert e.tick(T0 + 3600) == []
    assert [d.kind for d in e.tick(T0 + 2 * 86400)] == [Kind.CLEAR]


def test_auto_resume_on_tick() -> None:
    auto = Policy(name="standard", min_volume=100, thresholds=STD.thresholds, auto_resume_s=600)
    e = Engine(Rules(default_policy="standard", policies={"standard": auto}))
    send_batch(e, "acme", 100, 10, T0)
    assert e.evaluate(T0)[0].kind is Kind.PAUSE
    assert e.tick(T0 + 599) == []
    [d] = e.tick(T0 + 600)
    assert d.kind is Kind.RESUME and d.actor == "policy"


def test_ses_status_events_pause_and_resume_without_actions() -> None:
    e = Engine(RULES)
    off = TenantStatusEvent(
        b"k1", T0, "acme", TenantStatusKind.SENDING_DISABLED, "AWS_MANAGED", "bounce finding"
    )
    assert e.ingest([off], T0, T0) is MessageResult.PROCESSED
    d = e.drain().decisions
    assert [(x.kind, x.actor, x.actions) for x in d] == [(Kind.PAUSE, "ses", ())]
    on = TenantStatusEvent(
        b"k2", T0 + 5, "acme", TenantStatusKind.SENDING_ENABLED, "CUSTOMER_MANAGED"
    )
    e.ingest([on], T0 + 5, T0 + 5)
    assert [x.kind for x in e.drain().decisions] == [Kind.RESUME]
    assert e.tenants["acme"].state.status is Status.PROBATION


def test_restore_from_drained_changes_gives_the_same_state() -> None:
    """What a store persists is enough to rebuild the engine exactly (restart)."""
    e = Engine(RULES)
    log = Changes()
    send_batch(e, "acme", 150, 6, T0)
    send_batch(e, "bigco", 120, 1, T0 + 10, start=1000)
    e.evaluate(T0 + 10)
    ch = e.drain()
    log.buckets += ch.buckets
    log.keys += ch.keys
    log.states += ch.states
    again = Engine(RULES)
    again.restore(states=log.states, buckets=log.buckets, keys=log.keys, now=T0 + 20)
    for t in ("acme", "bigco"):
        assert again.tenants[t].snapshot(Channel.EMAIL, T0 + 20) == e.tenants[t].snapshot(
            Channel.EMAIL, T0 + 20
        )
        assert again.tenants[t].state.status is e.tenants[t].state.status
    assert (
        again.ingest([ev(0, Outcome.SEND, "acme", T0)], T0 + 20, T0 + 20) is MessageResult.DUPLICATE
    )


def test_a_flood_of_tenant_names_stays_bounded_and_never_evicts_a_paused_tenant() -> None:
    e = Engine(RULES, max_tenants=100)
    send_batch(e, "acme", 100, 10, T0)
    assert e.evaluate(T0)[0].kind is Kind.PAUSE
    for i in range(1000):  # every event a new tenant tag
        e.ingest([ev(10_000 + i, Outcome.SEND, f"flood-{i}", T0 + 1 + i)], T0 + 1 + i, T0 + 1 + i)
        assert len(e.tenants) <= 100
    assert e.tenants["acme"].state.status is Status.PAUSED
    assert e.evicted["capacity"] >= 900
    assert len({t for t, *_ in e.event_counts}) <= 100
    ch = e.drain()
    assert "acme" not in ch.evicted and "flood-0" in ch.evicted


def test_idle_healthy_tenants_are_forgotten_once_their_window_is_empty() -> None:
    e = Engine(RULES)
    send_batch(e, "acme", 10, 0, T0)
    send_batch(e, "warned", 100, 3, T0, start=500)
    e.evaluate(T0)
    assert e.evict_idle(T0 + 3600) == 0  # evidence still in the window
    assert e.evict_idle(T0 + 2 * 86400) == 1  # acme; "warned" is not healthy
    assert set(e.tenants) == {"warned"}
    assert e.drain().evicted == ["acme"]


def sms(n: int, outcome: Outcome, t: float) -> Event:
    return Event(
        event_key("sms", str(n)), t, Channel.SMS, outcome, 1, TenantHints(tenant_tag="textco")
    )


def test_sms_receipts_up_to_72_hours_late_still_count_once() -> None:
    e = Engine(RULES)
    now = T0 + 10 * 86400
    late = now - 60 * 3600  # 60 h: older than the 24 h window, within the 72 h grace
    assert e.ingest([sms(1, Outcome.SMS_FAILED, late)], now, now) is MessageResult.PROCESSED
    assert e.tenants["textco"].snapshot(Channel.SMS, now).sms_sent == 1
    assert (
        e.ingest([sms(1, Outcome.SMS_FAILED, late)], now + 60, now + 60) is MessageResult.DUPLICATE
    )
    e.prune(now + 3600)  # the key outlives the 24 h window: a redelivery is still a duplicate
    assert (
        e.ingest([sms(1, Outcome.SMS_FAILED, late)], now + 3600, now + 3600)
        is MessageResult.DUPLICATE
    )
    too_late = now - 73 * 3600
    assert e.ingest([sms(2, Outcome.SMS_FAILED, too_late)], now, now) is MessageResult.LATE
    # email has no such grace
    assert e.ingest([ev(3, Outcome.SEND, "textco", late)], now, now) is MessageResult.LATE


def test_a_tenant_has_a_window_per_channel_it_has_seen() -> None:
    e = Engine(RULES)
    e.ingest([sms(1, Outcome.SMS_DELIVERED, T0)], T0, T0)
    rec = e.tenants["textco"]
    assert list(rec.windows) == [Channel.SMS]  # no email window yet
    e.ingest([ev(2, Outcome.SEND, "textco")], T0, T0)
    assert rec.windows == {Channel.EMAIL: rec.email_window, Channel.SMS: rec.sms_window}
    assert rec.window(Channel.EMAIL) is rec.email_window
    assert {(t, c) for t, c, *_ in e.drain().buckets} == {("textco", "sms"), ("textco", "email")}
    # A window made after a restart starts at the last resume: the channel state's floor.
    state = TenantState("acme", {Channel.SMS: ChannelState(Status.PROBATION, floor=T0 + 5)})
    e.restore(states=[("acme", state)], buckets=[], keys=[], now=T0 + 10)
    assert e.tenants["acme"].window(Channel.SMS).floor == T0 + 5
    assert e.tenants["acme"].window(Channel.EMAIL).floor == 0.0
