"""The typed fast path (decode.typed) answers exactly as the general path does, for any body.

The reference is `decode_body_general`: decode_body as it was before the typed path (orjson
and the format decoders). Each test compares the two on the same body, by value and by repr
(so 1 and 1.0, or an equal but differently typed value, would show).
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.decode.envelope import decode_body, decode_body_general
from monitor.core.decode.typed import decode_ses_record, decode_sns
from monitor.core.events import Event
from monitor.replay.reading import decode_record
from monitor.sandbox.traffic import TenantProfile, Traffic

SAMPLES = Path(__file__).parents[1] / "data" / "samples"
SAMPLE_TEXT = {p.stem: p.read_text() for p in sorted(SAMPLES.glob("*.json"))}
SES_RECORDS = {
    n: json.loads(t) for n, t in SAMPLE_TEXT.items() if n.startswith("ses-event-")
}  # fmt: skip
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def traffic_records() -> list[dict[str, Any]]:
    tenants = [
        TenantProfile("t1", bounce=0.3, complaint=0.3, transient=0.2),
        TenantProfile("t2", configuration_set="cs-2", tag_tenant=False),
    ]
    traffic, out = Traffic(tenants, seed=3), []
    for i in range(40):
        mail = traffic.mail(1_795_000_000.0 + i * 1.37, tenants[i % 2])
        out.extend(traffic.records(mail, mail.time))
    return out


RECORDS = list(SES_RECORDS.values()) + traffic_records()


def envelope(message: str) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "4f6c1e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
        "TopicArn": "arn:aws:sns:us-east-1:111122223333:ses-events",
        "Message": message,
        "Timestamp": "2026-11-23T14:05:07.123Z",
        "SignatureVersion": "1",
        "Signature": "ZmFrZQ==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def sns(message: str, *, pretty: bool = False) -> str:
    if pretty:  # as SNS writes it to SQS
        return json.dumps(envelope(message), indent=2, separators=(",", " : "))
    return json.dumps(envelope(message), separators=(",", ":"))


def assert_same(body: bytes | str) -> None:
    new, old = decode_body(body), decode_body_general(body)
    assert new == old
    assert repr(new) == repr(old)
    # The same text as a raw record (a line of a Firehose archive): replay's workers read it
    # typed, and must read what its general path makes of the line (orjson, decode_record).
    event = decode_ses_record(body)
    if event is not None:
        value = orjson.loads(body)  # typed accepted it: so must orjson
        assert type(value) is dict and "Messages" not in value and "Body" not in value
        general = decode_record(value)
        assert general == [event]
        assert repr(general) == repr([event])


# --- the samples, in every envelope -----------------------------------------------------------


def test_samples_raw_and_wrapped() -> None:
    for text in SAMPLE_TEXT.values():
        assert_same(text)
        assert_same(text.encode())
        try:
            messages = [text, json.dumps(json.loads(text), separators=(",", ":"))]
        except ValueError:  # bad-truncated
            messages = [text]
        for message in messages:
            for pretty in (False, True):
                body = sns(message, pretty=pretty)
                assert_same(body)
                assert_same(body.encode())


def test_the_plain_case_takes_the_typed_path() -> None:
    """Not vacuous: SES's own records (bar Subscription) and the bench's traffic are typed."""
    for record in RECORDS:
        if record["eventType"] == "Subscription":
            continue
        for raw in (json.dumps(record), json.dumps(record, indent=2)):
            event = decode_ses_record(raw)
            assert isinstance(event, Event)
            assert [event] == decode_record(json.loads(raw))
        for pretty in (False, True):
            body = sns(json.dumps(record), pretty=pretty)
            event = decode_sns(body.encode())
            assert isinstance(event, Event)
            assert [event] == decode_body_general(body)


# --- structured mutations: the record and the envelope ----------------------------------------

# Number literals json.dumps cannot write: out of a double's range (orjson refuses them),
# past int64 (msgspec's bounds), and other spellings. They stand in the text for a marker.
LITERALS = [
    "1e999", "-1E400", "1" + "0" * 400, "18446744073709551616", "9223372036854775808",
    "-9223372036854775809", "9223372036854775807", "1.5", "-0", "0e0", "1e-999", "900",
]  # fmt: skip
MARKERS = [f"@@{i}@@" for i in range(len(LITERALS))]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "", "Permanent", "Transient", "Suppressed", "OnAccountSuppressionList", "Delivery",
            "2026-11-23T14:05:07.123Z", "2026-11-23T14:05:07Z", "2026-11-23T14:05:07.123+01:00",
            "a@b.example", "Name <x@y.example>", "\udcff", "é", "\x00", *MARKERS,
        ]
    )
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.text(max_size=6) | st.sampled_from(["tenant", "from"]), children, max_size=3
        )
    ),
    max_leaves=6,
)
FIELDS = [
    "eventType", "mail", "messageId", "timestamp", "destination", "tags", "tenant",
    "ses:tenant-name", "ses:configuration-set", "ses:from-domain", "source", "sourceArn",
    "commonHeaders", "from", "headers", "recipients", "bounceType", "bounceSubType",
    "bouncedRecipients", "complainedRecipients", "complaintSubType", "delayedRecipients",
    "emailAddress", "processingTimeMillis", "send", "delivery", "bounce", "complaint", "Type",
    "detail-type", "detail", "unknown",
]  # fmt: skip


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(paths(v, (*prefix, i)))
    return out


def literals(text: str) -> str:
    for marker, literal in zip(MARKERS, LITERALS, strict=True):
        text = text.replace(f'"{marker}"', literal)
    return text


@st.composite
def mutated(draw: st.DrawFn, node: Any) -> Any:
    """1-3 edits anywhere in `node`: drop a key or item, replace a value, add a key."""
    node = copy.deepcopy(node)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(node) or [()]))
        if not path:
            break
        parent = node
        for step in path[:-1]:
            parent = parent[step]
        op = draw(st.sampled_from(["drop", "replace", "replace", "add"]))
        if op == "drop":
            del parent[path[-1]]
        elif op == "replace":
            parent[path[-1]] = draw(values)
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(FIELDS))] = draw(values)
    return node


@FUZZ
@given(st.sampled_from(RECORDS), st.data())
def test_mutated_records(record: dict[str, Any], data: st.DataObject) -> None:
    message = literals(json.dumps(data.draw(mutated(record))))
    assert_same(message)  # as a raw record
    body = sns(message, pretty=data.draw(st.booleans()))
    assert_same(body)
    assert_same(body.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.sampled_from(RECORDS), st.data())
def test_mutated_envelopes(record: dict[str, Any], data: st.DataObject) -> None:
    outer = data.draw(mutated(envelope(json.dumps(record))))
    assert_same(literals(json.dumps(outer)))


# --- text-level mutations: JSON grammar, UTF-8, escapes ---------------------------------------

PIECES = [
    b"\\", b'"', b"\\u", b"\\ud800", b"\\udc00", b'\\"', b"\xff", b"\xc0\xaf", b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80", b"\xc3\xa9", b"\x00", b"\x1f", b"\x7f", b"\t", b"\n", b" ", b"\x0b",
    b"e", b"E", b"9", b"-", b".", b"+", b"0", b"1e999", b"[", b"]", b"{", b"}", b",", b":",
    b"null", b"true", b"[[[[", b"\xef\xbb\xbf", b"\\\\", b'\\\\\\"', b"\\n", b"\\/", b"\\x",
]  # fmt: skip


@FUZZ
@given(st.sampled_from(RECORDS), st.booleans(), st.booleans(), st.randoms(use_true_random=False))
def test_edited_text(record: dict[str, Any], pretty: bool, raw: bool, rng: random.Random) -> None:
    if raw:  # a Firehose line
        text = json.dumps(record, indent=2 if pretty else None)
    else:
        text = sns(json.dumps(record), pretty=pretty)
    body = bytearray(text.encode())
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(body) + 1)
        piece = rng.choice(PIECES)
        if rng.random() < 0.5:
            body[at : at + rng.randint(0, 3)] = piece  # replace a few bytes
        else:
            body[at:at] = piece
    assert_same(bytes(body))
    try:
        text = bytes(body).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return
    assert_same(text)


# --- the shapes at the edge of the plain case, by hand ----------------------------------------


def delivery(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(SES_RECORDS["ses-event-delivery"])
    for path, value in changes.items():
        node = record
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        if value is ...:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return record


EDGE_RECORDS = [
    delivery(delivery__recipients=None),
    delivery(delivery__recipients=[]),
    delivery(delivery__recipients=...),
    delivery(delivery__recipients=[""]),
    delivery(delivery=None),
    delivery(delivery=...),
    delivery(delivery__timestamp=None),
    delivery(delivery__timestamp="2026-11-23T14:05:07Z"),
    delivery(delivery__timestamp="2026-11-23T14:05:07.123+00:00"),
    delivery(delivery__timestamp="2026-11-23t14:05:07.123z"),
    delivery(delivery__timestamp="2026-11-23T14:05:60.123Z"),
    delivery(delivery__processingTimeMillis=2**63),
    delivery(delivery__processingTimeMillis=2**64),
    delivery(delivery__processingTimeMillis=True),
    delivery(delivery__processingTimeMillis=9.5),
    delivery(mail__messageId=""),
    delivery(mail__messageId=None),
    delivery(mail__destination=[]),
    delivery(mail__tags=None),
    delivery(mail__tags={}),
    delivery(mail__tags=[]),
    delivery(mail__tags=""),
    delivery(mail__tags={"tenant": "bare"}),
    delivery(mail__tags={"tenant": [None]}),
    delivery(mail__tags={"tenant": []}),
    delivery(mail__tags={"tenant": [""], "ses:from-domain": ["X.Example"]}),
    delivery(mail__tags={"tenant": ["a", "b"], "other": [5]}),
    delivery(mail__tags={"ses:tenant-name": ["acme"]}),
    delivery(mail__commonHeaders=None),
    delivery(mail__commonHeaders={"from": []}),
    delivery(mail__commonHeaders={"from": [5]}),
    delivery(mail__commonHeaders="x"),
    delivery(mail__source=""),
    delivery(mail__source=None),
    delivery(mail__sourceArn="arn:aws:ses:us-east-1:1:identity/"),
    delivery(mail=None),
    delivery(eventType="RenderingFailure"),
    delivery(eventType="Subscription"),
    delivery(eventType="TEXT_DELIVERED"),
    delivery(eventType="Unknown"),
    delivery(eventType=None),
    delivery(Type=None),
    delivery(Type="Notification"),
    delivery(detail=None),
    delivery(delivery__processingTimeMillis=MARKERS[2]),  # 400 digits: past a double
    delivery(delivery__processingTimeMillis=MARKERS[0]),  # 1e999
    delivery(mail__tags={"ses:tenant-name": [""], "tenant": ["t"]}),
    delivery(mail__tags={"ses:configuration-set": [""], "ses:from-domain": [""]}),
    delivery(mail__tags={"ses:from-domain": ["acme.example.com"]}, mail__commonHeaders=...),
    *[
        {
            **SES_RECORDS["ses-event-bounce-permanent"],
            "bounce": {**SES_RECORDS["ses-event-bounce-permanent"]["bounce"], **change},
        }
        for change in [
            {"bounceSubType": "Suppressed"},
            {"bounceSubType": "OnAccountSuppressionList"},
            {"bounceSubType": ""},
            {"bounceSubType": None},
            {"bounceType": "Transient", "bounceSubType": "Suppressed"},
            {"bounceType": "Undetermined"},
            {"bounceType": ""},
            {"bouncedRecipients": [{"emailAddress": ""}]},
            {
                "bouncedRecipients": [
                    {"emailAddress": "b@x.example"},
                    {"emailAddress": "a@y.example"},
                ]
            },
            {"bouncedRecipients": []},
            {"bouncedRecipients": [{}]},
        ]
    ],
    *[
        {
            **SES_RECORDS["ses-event-complaint-abuse"],
            "complaint": {**SES_RECORDS["ses-event-complaint-abuse"]["complaint"], **change},
        }
        for change in [
            {"complaintSubType": "OnAccountSuppressionList"},
            {"complaintSubType": None},
            {"complaintSubType": 5},
            {"complainedRecipients": [{"emailAddress": ""}]},
            {
                "complainedRecipients": [
                    {"emailAddress": "x@Y.example"},
                    {"emailAddress": "z@y.example"},
                ]
            },
        ]
    ],
    {**SES_RECORDS["ses-event-bounce-permanent"], "bounce": None},
    {**SES_RECORDS["ses-event-delivery-delay"], "deliveryDelay": {"delayedRecipients": None}},
    {**SES_RECORDS["ses-event-delivery-delay"], "deliveryDelay": {}},
    {**SES_RECORDS["ses-event-send"], "send": None},
    {**SES_RECORDS["ses-event-send"], "send": {"timestamp": "2026-11-23T14:05:07.999Z"}},
]


def test_edge_records() -> None:
    for record in EDGE_RECORDS:
        assert_same(literals(json.dumps(record)))  # as a raw record
        for pretty in (False, True):
            body = sns(literals(json.dumps(record)), pretty=pretty)
            assert_same(body)
            assert_same(body.encode())


def test_edge_bodies() -> None:
    message = json.dumps(SES_RECORDS["ses-event-delivery"])
    good = sns(message)
    cut = good.index('"Signature":"') + len('"Signature":"')
    for body in [
        good.replace('"Type":"Notification"', '"Type":"Notification","Type":"Other"'),
        good.replace('"Type":"Notification"', '"Type":"Other","Type":"Notification"'),
        good.replace('"Type"', '"Typ\\u0065"'),
        good.replace('"Type":"Notification",', "") + " ",
        good.replace('"Signature"', '"Extra":1e999,"Signature"'),
        good.replace('"Signature"', '"Subject":null,"Signature"'),
        good.replace(
            '"Signature"', '"MessageAttributes":{"a":{"Type":"String","Value":"v"}},"Signature"'
        ),
        good.replace(
            '"Signature"', '"MessageAttributes":{"a":{"Type":"Number","Value":5}},"Signature"'
        ),
        good.replace('"Signature"', '"SequenceNumber":"1","Signature"'),
        good.replace('"Type":"Notification"', '"Type":"SubscriptionConfirmation"'),
        sns(message.replace('"mail"', '"x":1e999,"mail"')),
        sns(message.replace('"mail"', '"x":' + "[" * 1100 + "]" * 1100 + ',"mail"')),
        sns(message.replace('"mail"', '"messageId":"dup","mail"')),
        sns(message + " "),
        sns(message[:-1]),
        sns(message.replace('"eventType"', '"event\\u0054ype"')),
        sns(message.replace('"smtpResponse": "', '"smtpResponse": "\\ud800')),
        " " + good + "\n",
        good + "x",
        "\ufeff" + good,
        good[:cut] + "\ud800" + good[cut:],
        "[" + good + "]",
    ]:
        assert_same(body)
        assert_same(body.encode("utf-8", "surrogatepass"))
    assert_same(good.encode()[:cut] + b"\xff" + good.encode()[cut:])  # not UTF-8, skipped field
    assert decode_body(good, max_bytes=100) == decode_body_general(good, max_bytes=100)


def test_tags_seen_before_are_read_the_same() -> None:
    """The typed path caches hints by the raw text of mail.tags (decode.typed._hints)."""
    record = SES_RECORDS["ses-event-delivery"]
    bad = delivery(mail__tags={**record["mail"]["tags"], "n": [1]})
    for body in [sns(json.dumps(record)), sns(json.dumps(bad))] * 2:
        assert_same(body)
