"""TenantState: two channel slots behind the `channels` mapping, and its stored shape."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.events import Channel
from monitor.core.state import ChannelState, Status, TenantState

channel_states = st.builds(
    ChannelState,
    status=st.sampled_from(Status),
    since=st.floats(0, 2e9),
    manual=st.booleans(),
    paused_by=st.sampled_from(["", "policy", "admin", "ses"]),
    would_pause=st.booleans(),
    floor=st.floats(0, 2e9),
)


def test_a_channel_is_created_on_first_use_from_updated_at() -> None:
    s = TenantState("acme", updated_at=5.0)
    assert s.channels == {} and s.get(Channel.SMS) is None
    sms = s.channel(Channel.SMS)
    assert sms == ChannelState(since=5.0)
    assert s.channel(Channel.SMS) is sms and s.get(Channel.SMS) is sms
    assert s.channels == {Channel.SMS: sms} and s.get(Channel.EMAIL) is None
    email = s.channel(Channel.EMAIL)
    assert list(s.channels.items()) == [(Channel.EMAIL, email), (Channel.SMS, sms)]


def test_the_stored_shape() -> None:
    s = TenantState("acme", updated_at=7.0)
    s.channel(Channel.EMAIL).status = Status.PAUSED
    assert s.to_dict() == {
        "channels": {
            "email": {
                "status": "paused",
                "since": 7.0,
                "manual": False,
                "paused_by": "",
                "would_pause": False,
                "floor": 0.0,
            }
        },
        "updated_at": 7.0,
    }
    assert s.status is Status.PAUSED and s.paused_channels == ["email"]


@given(
    email=st.none() | channel_states,
    sms=st.none() | channel_states,
    updated_at=st.floats(0, 2e9),
    sms_first=st.booleans(),
)
def test_round_trip_and_equality(
    email: ChannelState | None, sms: ChannelState | None, updated_at: float, sms_first: bool
) -> None:
    channels = {c: cs for c, cs in ((Channel.EMAIL, email), (Channel.SMS, sms)) if cs}
    if sms_first:
        channels = dict(reversed(channels.items()))
    s = TenantState("acme", channels=channels, updated_at=updated_at)
    assert s.channels == channels
    assert s.get(Channel.EMAIL) is email and s.get(Channel.SMS) is sms
    d = s.to_dict()
    assert set(d["channels"]) == {c.value for c in channels}
    back = TenantState.from_dict("acme", d)
    assert back == s and back.to_dict() == d
    assert back != TenantState("other", channels=channels, updated_at=updated_at)
    worst = max((cs.status for cs in channels.values()), default=Status.HEALTHY, key=_severity)
    assert s.status is worst


def _severity(s: Status) -> int:
    return [Status.HEALTHY, Status.PROBATION, Status.WARNING, Status.PAUSED].index(s)
