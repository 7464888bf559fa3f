"""The decoders' fast paths (bench/README.md) give exactly what the general paths give."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.decode._common import Invalid, iso_time, iso_time_key, time_part
from monitor.core.decode.envelope import decode_body, decode_object
from monitor.core.events import event_key, key_digest

SAMPLES = Path(__file__).parents[1] / "data" / "samples"
SES_TIME = "2026-11-23T14:05:07.123Z"


def general(value: object) -> tuple[float, str] | str:
    try:
        t = iso_time(value, "p")
    except Invalid as e:
        return e.error.reason.value
    return t, time_part(t)


def fast(value: object) -> tuple[float, str] | str:
    try:
        return iso_time_key(value, "p")
    except Invalid as e:
        return e.error.reason.value


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=0, max_value=999),
)
def test_ses_timestamps_read_the_same(dt: datetime, ms: int) -> None:
    text = f"{dt.year:04d}-" + dt.strftime("%m-%dT%H:%M:%S.") + f"{ms:03d}Z"
    assert len(text) == 24
    assert repr(fast(text)) == repr(general(text))


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=23), st.sampled_from("0123456789-T:.Z+ ,W٣²")),
        max_size=3,
    )
)
def test_mangled_timestamps_are_judged_the_same(changes: list[tuple[int, str]]) -> None:
    text = list(SES_TIME)
    for i, c in changes:
        text[i] = c
    value = "".join(text)
    assert repr(fast(value)) == repr(general(value))


def test_edge_timestamps() -> None:
    for value in (
        "2026-11-23T24:00:00.000Z",
        "2026-11-23T23:60:00.000Z",
        "2026-11-23T23:59:60.000Z",
        "2024-02-29T00:00:00.000Z",
        "2026-02-29T00:00:00.000Z",
        "1970-01-01T00:00:00.000Z",
        "2026-11-23T14:05+07:00.12Z",
        None,
        17,
    ):
        assert repr(fast(value)) == repr(general(value)), value


def test_joined_key_is_event_key() -> None:
    assert key_digest("ses\x1fm\x1fSend\x1fa@b.example\x1f123\x1f") == event_key(
        "ses", "m", "Send", "a@b.example", "123"
    )


def sns(record: Any) -> str:
    return json.dumps({"Type": "Notification", "TopicArn": "arn:t", "Message": json.dumps(record)})


def records() -> list[dict[str, Any]]:
    out = []
    for path in sorted(SAMPLES.glob("ses-event-*.json")):
        value = json.loads(path.read_text())
        out.append(value)
    return out


RECORDS = records()
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.just(SES_TIME),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
PATHS = [
    ("mail",), ("mail", "messageId"), ("mail", "timestamp"), ("mail", "destination"),
    ("mail", "tags"), ("mail", "tags", "tenant"), ("mail", "source"), ("mail", "sourceArn"),
    ("mail", "commonHeaders"), ("eventType",), ("delivery",), ("delivery", "recipients"),
    ("delivery", "timestamp"), ("bounce",), ("Type",), ("detail-type",),
]  # fmt: skip


def mutate(record: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(record))
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            return out
        node = node[key]
    node[path[-1]] = value
    return out


def describe(result: Any) -> Any:
    return (
        result
        if not isinstance(result, list)
        else [tuple(ev) if isinstance(ev, tuple) else ev for ev in result]
    )


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(RECORDS), st.sampled_from(PATHS), values)
def test_sns_wrapped_ses_records_decode_as_the_general_route_does(
    record: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    body = sns(mutate(record, path, value))
    assert describe(decode_body(body)) == describe(decode_object(json.loads(body)))


def test_envelope_shapes_near_the_fast_path() -> None:
    for body in (
        {"Type": "Notification"},
        {"Type": "Notification", "eventType": "Send", "mail": {}},
        {"Type": "Notification", "Message": 5},
        {"Type": "Notification", "Message": "[1]"},
        {"Type": "Notification", "Message": json.dumps({"Type": None, "eventType": "Send"})},
        {"Type": "Notification", "Message": json.dumps({"eventType": ["Send"]})},
        {"Type": "Notification", "Message": json.dumps({"eventType": "RenderingFailure"})},
        {"Type": "Notification", "Message": json.dumps({"detail-type": "x", "detail": {}})},
    ):
        text = json.dumps(body)
        assert describe(decode_body(text)) == describe(decode_object(json.loads(text)))


def test_time_fast_path_spans_minutes() -> None:
    start = datetime(2026, 11, 23, 23, 58, 59, tzinfo=UTC)
    for seconds in range(0, 180, 7):
        dt = start + timedelta(seconds=seconds, milliseconds=seconds * 13 % 1000)
        text = dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
        assert fast(text) == (dt.timestamp(), str(round(dt.timestamp() * 1000)))
