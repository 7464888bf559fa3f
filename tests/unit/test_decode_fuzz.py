"""Properties of decode_body: it never raises, and never keeps a recipient's address or number."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.decode import DecodeError, DecodeResult
from monitor.core.decode.envelope import decode_body
from monitor.core.events import Event, TenantStatusEvent

SAMPLES = Path(__file__).parents[1] / "data" / "samples"
SAMPLE_TEXT = {p.stem: p.read_text() for p in sorted(SAMPLES.glob("*.json"))}
GOOD = {n: json.loads(t) for n, t in SAMPLE_TEXT.items() if not n.startswith("bad-")}

# Senders may legitimately become the `identity` hint; recipients never appear anywhere.
SENDERS = {"billing@acme.example.com", "news@acme.example.com"}
RECIPIENTS = {
    a for t in SAMPLE_TEXT.values() for a in re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", t)
} - SENDERS
PHONES = {
    m
    for t in SAMPLE_TEXT.values()
    for m in re.findall(r'"destination_?[pP]hone_?[nN]umber": "([^"]+)"', t)
}

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Keys the decoders look for, so that generated objects reach past the shape dispatch.
KNOWN_KEYS = [
    "Type", "Message", "TopicArn", "detail-type", "detail", "source", "resources", "time",
    "eventType", "notificationType", "event_type", "event_timestamp", "application", "mail",
    "messageId", "timestamp", "destination", "tags", "bounce", "bounceType", "bounceSubType",
    "bouncedRecipients", "complaint", "complainedRecipients", "delivery", "recipients",
    "emailAddress", "isFinal", "eventTimestamp", "messageStatus", "context", "attributes",
    "facets", "data", "record", "lastUpdatedTimestamp",
]  # fmt: skip
KNOWN_VALUES = [
    "Notification", "Bounce", "Complaint", "Delivery", "Send", "Permanent", "Transient",
    "TEXT_DELIVERED", "TEXT_BLOCKED", "_email.hard_bounce", "_SMS.FAILURE", "aws.ses",
    "Sending Status Disabled", "2025-06-02T14:03:12.804Z",
    "arn:aws:ses:us-east-1:111122223333:tenant/acme/tn-1",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(KNOWN_VALUES)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def check(result: DecodeResult) -> DecodeResult:
    if isinstance(result, DecodeError):
        assert isinstance(result.detail, str)
    else:
        assert isinstance(result, list)
        for ev in result:
            assert isinstance(ev, Event | TenantStatusEvent)
            assert isinstance(ev.time, float)
            if isinstance(ev, Event):
                assert ev.count >= 1
    return result


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(body: bytes) -> None:
    check(decode_body(body))


@FUZZ
@given(json_values)
def test_arbitrary_json_values(value: Any) -> None:
    text = json.dumps(value)
    check(decode_body(text))
    # the same value as the payload of each envelope
    check(decode_body(json.dumps({"Type": "Notification", "TopicArn": "t", "Message": text})))
    check(decode_body(json.dumps({"detail-type": "X", "source": "aws.ses", "detail": value})))


# --- structured mutations of the samples ------------------------------------------------------


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out.extend(paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out.extend(paths(v, (*prefix, i)))
    return out


def unwrap(doc: Any) -> tuple[Any, bool]:
    """An SNS sample's record is a JSON string: mutate the record, not the string."""
    if isinstance(doc, dict) and isinstance(doc.get("Message"), str):
        try:
            return json.loads(doc["Message"]), True
        except ValueError:
            pass
    return doc, False


@st.composite
def mutated_bodies(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(GOOD)))
    outer = copy.deepcopy(GOOD[name])
    doc, wrapped = unwrap(outer)
    for _ in range(draw(st.integers(1, 4))):
        candidates = paths(doc)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        op = draw(st.sampled_from(["drop", "replace"]))
        if op == "drop":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        else:
            parent[path[-1]] = draw(json_values)
    if wrapped:
        outer["Message"] = json.dumps(doc)
        body = json.dumps(outer)
    else:
        body = json.dumps(doc)
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return name, body


@FUZZ
@given(mutated_bodies())
def test_mutated_samples(case: tuple[str, str]) -> None:
    _, body = case
    result = check(decode_body(body))
    text = repr(result)
    for secret in RECIPIENTS | PHONES:
        assert secret not in text


def test_unmutated_samples_keep_no_recipient() -> None:
    assert RECIPIENTS and PHONES  # the check above is not vacuous
    for text in SAMPLE_TEXT.values():
        shown = repr(decode_body(text))
        for secret in RECIPIENTS | PHONES:
            assert secret not in shown
