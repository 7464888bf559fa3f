"""Decoders against the shared sample messages, their envelopes, and targeted variants."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.core.decode import DecodeError, DecodeReason, DecodeResult
from monitor.core.decode.envelope import MAX_DEPTH, decode_body
from monitor.core.events import (
    Channel,
    Event,
    Outcome,
    TenantHints,
    TenantStatusEvent,
    TenantStatusKind,
)

SAMPLES = Path(__file__).parents[1] / "data" / "samples"
SHARED_SAMPLES = Path(__file__).parents[2].parent / "shared" / "samples"


def load(name: str) -> Any:
    return json.loads((SAMPLES / f"{name}.json").read_bytes())


def decode(value: Any) -> DecodeResult:
    return decode_body(json.dumps(value).encode())


def one(result: DecodeResult) -> Any:
    assert isinstance(result, list), result
    assert len(result) == 1, result
    return result[0]


def utc(s: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in s else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(s, fmt).replace(tzinfo=UTC).timestamp()


def sns(inner: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "00000000-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:us-east-1:111122223333:relay",
        "Message": inner if isinstance(inner, str) else json.dumps(inner),
        "Timestamp": "2025-06-02T14:03:13.052Z",
        "SignatureVersion": "1",
        "Signature": "c2ln",
    }


def eventbridge(
    detail: Any, source: str = "custom.relay", resources: list[str] | None = None
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "00000000-0000-4000-8000-000000000002",
        "detail-type": "Relayed Event",
        "source": source,
        "account": "111122223333",
        "time": "2025-06-02T14:03:13Z",
        "region": "us-east-1",
        "resources": resources or [],
        "detail": detail,
    }


# --- the expected decoding of every sample -------------------------------------------------

SES_FULL = TenantHints(
    ses_tenant="acme",
    tenant_tag="acme",
    configuration_set="acme-transactional",
    identity="acme.example.com",
    from_domain="acme.example.com",
)
SES_TAGGED = TenantHints(  # ses:tenant-name is only documented on bounces and complaints
    tenant_tag="acme",
    configuration_set="acme-transactional",
    identity="acme.example.com",
    from_domain="acme.example.com",
)
SES_LEGACY = TenantHints(identity="acme.example.com", from_domain="acme.example.com")
SMS_HINTS = TenantHints(sms_configuration_set="acme-sms", sms_context=(("tenant", "acme"),))
APP = "7f3c2a1b9d8e4f60a1b2c3d4e5f6a7b8"
PINPOINT_EMAIL = TenantHints(
    tenant_tag="acme",
    identity="news@acme.example.com",
    from_domain="acme.example.com",
    pinpoint_app=APP,
)
PINPOINT_SMS = TenantHints(pinpoint_app=APP, sms_context=(("tenant", "acme"),))
NET = ("example.net",)
E, S = Channel.EMAIL, Channel.SMS
OC = Outcome
SMS_T = 1717337012.345

# name: (channel, outcome, count, time, hints, recipient_domains)
EVENTS: dict[str, tuple[Channel, Outcome, int, float, TenantHints, tuple[str, ...]]] = {
    "ses-event-bounce-permanent": (
        E, OC.BOUNCE_PERMANENT, 1, utc("2025-06-02T14:03:12.804Z"), SES_FULL, NET),
    "ses-event-bounce-transient": (
        E, OC.BOUNCE_TRANSIENT, 1, utc("2025-06-02T16:10:40.100Z"), SES_FULL, NET),
    "ses-event-click": (E, OC.CLICK, 1, utc("2025-06-02T14:21:02.118Z"), SES_TAGGED, ()),
    "ses-event-complaint-abuse": (
        E, OC.COMPLAINT, 1, utc("2025-06-02T18:22:05.000Z"), SES_FULL, NET),
    "ses-event-delivery-delay": (
        E, OC.DELIVERY_DELAY, 1, utc("2025-06-02T15:03:12.000Z"), SES_TAGGED, ()),
    "ses-event-delivery": (E, OC.DELIVERY, 1, utc("2025-06-02T14:03:12.390Z"), SES_TAGGED, ()),
    "ses-event-open": (E, OC.OPEN, 1, utc("2025-06-02T14:20:44.501Z"), SES_TAGGED, ()),
    "ses-event-reject": (E, OC.REJECT, 1, utc("2025-06-02T14:05:00.000Z"), SES_TAGGED, ()),
    "ses-event-rendering-failure": (
        E, OC.RENDERING_FAILURE, 1, utc("2025-06-02T14:06:00.000Z"), SES_TAGGED, ()),
    "ses-event-send": (E, OC.SEND, 1, utc("2025-06-02T14:03:11.210Z"), SES_TAGGED, ()),
    "ses-event-subscription": (
        E, OC.SUBSCRIPTION, 1, utc("2025-06-02T14:30:00.000Z"), SES_TAGGED, ()),
    "ses-eventbridge-bounce": (
        E, OC.BOUNCE_PERMANENT, 1, utc("2025-06-02T14:03:12.804Z"), SES_FULL, NET),
    "ses-eventbridge-complaint": (
        E, OC.COMPLAINT, 1, utc("2025-06-02T18:22:05.000Z"), SES_FULL, NET),
    "ses-notification-bounce": (
        E, OC.BOUNCE_PERMANENT, 1, utc("2025-06-02T14:03:12.804Z"), SES_LEGACY, NET),
    "ses-notification-complaint": (
        E, OC.COMPLAINT, 1, utc("2025-06-02T18:22:05.000Z"), SES_LEGACY, NET),
    "ses-notification-delivery": (
        E, OC.DELIVERY, 1, utc("2025-06-02T14:03:12.390Z"), SES_LEGACY, ()),
    "sns-envelope-ses-event-bounce": (
        E, OC.BOUNCE_PERMANENT, 1, utc("2025-06-02T14:03:12.804Z"), SES_FULL, NET),
    "sns-envelope-ses-notification-bounce": (
        E, OC.BOUNCE_PERMANENT, 1, utc("2025-06-02T14:03:12.804Z"), SES_LEGACY, NET),
    "sms-event-text-blocked": (S, OC.SMS_FAILED, 1, SMS_T, SMS_HINTS, ()),
    "sms-event-text-carrier-unreachable": (S, OC.SMS_FAILED, 1, SMS_T, SMS_HINTS, ()),
    "sms-event-text-delivered": (S, OC.SMS_DELIVERED, 1, SMS_T, SMS_HINTS, ()),
    "sms-event-text-invalid": (S, OC.SMS_FAILED, 1, SMS_T, SMS_HINTS, ()),
    "sms-event-text-protect-blocked": (S, OC.SMS_SENDER_BLOCKED, 1, SMS_T, SMS_HINTS, ()),
    "sms-event-text-spam": (S, OC.SMS_FAILED, 1, SMS_T, SMS_HINTS, ()),
    "sms-event-text-successful": (S, OC.SMS_PENDING, 1, SMS_T, SMS_HINTS, ()),  # isFinal false
    "sms-event-text-ttl-expired": (S, OC.SMS_FAILED, 1, SMS_T, SMS_HINTS, ()),
    "sms-eventbridge-text-delivered": (S, OC.SMS_DELIVERED, 1, SMS_T, SMS_HINTS, ()),
    "pinpoint-email-complaint": (E, OC.COMPLAINT, 1, 1717337100.123, PINPOINT_EMAIL, NET),
    "pinpoint-email-delivered": (E, OC.DELIVERY, 1, 1717337100.123, PINPOINT_EMAIL, ()),
    "pinpoint-email-hard-bounce": (
        E, OC.BOUNCE_PERMANENT, 1, 1717337100.123, PINPOINT_EMAIL, NET),
    "pinpoint-email-send": (E, OC.SEND, 1, 1717337100.123, PINPOINT_EMAIL, ()),
    "pinpoint-email-soft-bounce": (
        E, OC.BOUNCE_TRANSIENT, 1, 1717337100.123, PINPOINT_EMAIL, NET),
    "pinpoint-sms-failure": (S, OC.SMS_FAILED, 1, 1717337200.0, PINPOINT_SMS, ()),
    "pinpoint-sms-optout": (S, OC.SMS_OPT_OUT, 1, 1717337200.0, PINPOINT_SMS, ()),
    "pinpoint-sms-success": (S, OC.SMS_DELIVERED, 1, 1717337200.0, PINPOINT_SMS, ()),
}  # fmt: skip

K = TenantStatusKind
TENANT_EVENTS: dict[str, tuple[TenantStatusKind, str, float]] = {
    "ses-eventbridge-tenant-finding-open": (K.FINDING_OPEN, "", utc("2025-06-02T17:05:21Z")),
    "ses-eventbridge-tenant-finding-resolved": (
        K.FINDING_RESOLVED, "", utc("2025-06-04T09:12:00Z")),
    "ses-eventbridge-tenant-sending-disabled-aws": (
        K.SENDING_DISABLED, "AWS_MANAGED", utc("2025-06-02T17:05:40.118Z")),
    "ses-eventbridge-tenant-sending-disabled-customer": (
        K.SENDING_DISABLED, "CUSTOMER_MANAGED", utc("2025-06-02T17:06:02.504Z")),
    "ses-eventbridge-tenant-sending-enabled-reinstated": (
        K.SENDING_ENABLED, "CUSTOMER_MANAGED", utc("2025-06-03T08:00:15.002Z")),
}  # fmt: skip

BAD: dict[str, tuple[DecodeReason, str]] = {
    "bad-bounce-without-mail": (DecodeReason.MISSING_FIELD, "mail"),
    "bad-sns-message-not-json": (DecodeReason.BAD_ENVELOPE, "Message"),
    "bad-truncated": (DecodeReason.INVALID_JSON, "body"),
    "bad-unknown-shape": (DecodeReason.UNKNOWN_SHAPE, "body"),
}

# Samples that are a bare record (no SNS/EventBridge envelope of their own).
RAW = sorted(
    n
    for n in EVENTS
    if n.startswith(("ses-event-", "ses-notification-", "sms-event-", "pinpoint-"))
)


def test_repo_copy_matches_shared_samples() -> None:
    if not SHARED_SAMPLES.is_dir():
        pytest.skip("no ../shared/samples beside the repository")
    shared = {p.name: p.read_bytes() for p in SHARED_SAMPLES.iterdir() if p.is_file()}
    ours = {p.name: p.read_bytes() for p in SAMPLES.iterdir() if p.is_file()}
    assert ours == shared, "tests/data/samples is out of date: copy ../shared/samples again"


def test_every_sample_has_an_expectation() -> None:
    names = {p.stem for p in SAMPLES.glob("*.json")}
    assert names == set(EVENTS) | set(TENANT_EVENTS) | set(BAD)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_sample_decodes(name: str) -> None:
    channel, outcome, count, t, hints, domains = EVENTS[name]
    ev = one(decode_body((SAMPLES / f"{name}.json").read_bytes()))
    assert isinstance(ev, Event)
    assert (ev.channel, ev.outcome, ev.count) == (channel, outcome, count)
    assert ev.time == pytest.approx(t, abs=1e-6)
    assert ev.hints == hints
    assert ev.recipient_domains == domains
    assert len(ev.key) == 16


@pytest.mark.parametrize("name", sorted(TENANT_EVENTS))
def test_tenant_sample_decodes(name: str) -> None:
    kind, origin, t = TENANT_EVENTS[name]
    ev = one(decode_body((SAMPLES / f"{name}.json").read_text()))
    assert isinstance(ev, TenantStatusEvent)
    assert (ev.tenant, ev.kind, ev.origin) == ("acme", kind, origin)
    assert ev.time == pytest.approx(t, abs=1e-6)
    assert ev.detail


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_sample(name: str) -> None:
    assert decode_body((SAMPLES / f"{name}.json").read_bytes()) == DecodeError(*BAD[name])


def test_str_and_bytes_bodies_agree() -> None:
    for p in SAMPLES.glob("*.json"):
        assert decode_body(p.read_text()) == decode_body(p.read_bytes()), p.name


# --- identity: one source record, one key ----------------------------------------------------


def key_of(name: str) -> bytes:
    return one(decode_body((SAMPLES / f"{name}.json").read_bytes())).key  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(
            [
                "ses-event-bounce-permanent",
                "sns-envelope-ses-event-bounce",
                "ses-eventbridge-bounce",
                "ses-notification-bounce",
                "sns-envelope-ses-notification-bounce",
            ],
            id="bounce",
        ),
        pytest.param(
            [
                "ses-event-complaint-abuse",
                "ses-eventbridge-complaint",
                "ses-notification-complaint",
            ],
            id="complaint",
        ),
        pytest.param(["ses-event-delivery", "ses-notification-delivery"], id="delivery"),
        pytest.param(["sms-event-text-delivered", "sms-eventbridge-text-delivered"], id="sms"),
    ],
)
def test_same_record_same_key_through_every_feed(names: list[str]) -> None:
    assert len({key_of(n) for n in names}) == 1


def test_timestamp_spelling_does_not_change_the_key() -> None:
    rec = load("ses-notification-bounce")
    rec["bounce"]["timestamp"] = "2025-06-02T14:03:12.804+00:00"
    assert one(decode(rec)).key == key_of("ses-event-bounce-permanent")


def test_different_recipient_or_type_gives_a_different_key() -> None:
    bounce = load("ses-event-bounce-permanent")
    other = copy.deepcopy(bounce)
    other["bounce"]["bouncedRecipients"][0]["emailAddress"] = "someone.else@example.net"
    assert one(decode(other)).key != one(decode(bounce)).key
    # Delivery, Open and Click of one message (same messageId): three records.
    keys = {key_of("ses-event-delivery"), key_of("ses-event-open"), key_of("ses-event-click")}
    assert len(keys) == 3
    # TEXT_SUCCESSFUL then TEXT_DELIVERED of one SMS.
    assert key_of("sms-event-text-successful") != key_of("sms-event-text-delivered")


def test_sms_final_status_after_an_interim_one_is_not_a_duplicate() -> None:
    interim = load("sms-event-text-carrier-unreachable")
    interim["isFinal"] = False
    final = load("sms-event-text-carrier-unreachable")
    first, second = one(decode(interim)), one(decode(final))
    assert (first.outcome, second.outcome) == (OC.SMS_PENDING, OC.SMS_FAILED)
    assert first.key != second.key


def test_recipient_order_does_not_change_the_key() -> None:
    rec = load("ses-event-bounce-permanent")
    rcpts = [{"emailAddress": a} for a in ("a@x.example", "b@y.example", "c@x.example")]
    rec["bounce"]["bouncedRecipients"] = rcpts
    reordered = copy.deepcopy(rec)
    reordered["bounce"]["bouncedRecipients"] = rcpts[::-1]
    first, second = one(decode(rec)), one(decode(reordered))
    assert first.key == second.key
    assert first.count == 3
    assert first.recipient_domains == ("x.example", "y.example")


def test_pinpoint_sms_receipts_of_one_message_share_a_key() -> None:
    rec = load("pinpoint-sms-success")
    later = copy.deepcopy(rec)
    rec["attributes"]["record_status"] = "SUCCESSFUL"
    later["event_timestamp"] += 5000
    assert one(decode(rec)).key == one(decode(later)).key


# --- envelopes built around every raw sample -------------------------------------------------


@pytest.mark.parametrize("name", RAW)
def test_envelopes_decode_like_the_raw_record(name: str) -> None:
    raw = load(name)
    expected = decode(raw)
    assert isinstance(expected, list) and expected
    wrapped = [
        sns(raw),
        eventbridge(raw),
        sns(eventbridge(raw)),  # EventBridge → SNS → SQS
        eventbridge(sns(raw)),  # a relay putting an SNS body on a bus
    ]
    for body in wrapped:
        assert decode(body) == expected
    assert decode_body(json.dumps(sns(raw))) == expected  # str body, as SQS gives it


@pytest.mark.parametrize("name", sorted(BAD))
def test_envelope_returns_the_inner_error(name: str) -> None:
    text = (SAMPLES / f"{name}.json").read_text()
    expected = decode_body(text)
    assert isinstance(expected, DecodeError)
    if expected.reason is DecodeReason.MISSING_FIELD:
        inner = json.loads(text)
        assert decode(sns(inner)) == expected
        assert decode(eventbridge(inner)) == expected
    elif expected.reason is DecodeReason.INVALID_JSON:
        assert decode(sns(text)) == DecodeError(DecodeReason.BAD_ENVELOPE, "Message")
    elif expected.reason is DecodeReason.UNKNOWN_SHAPE:
        inner = json.loads(text)
        assert decode(sns(inner)) == expected
        assert decode(eventbridge(inner)) == expected


def test_eventbridge_resources_name_the_configuration_set() -> None:
    rec = load("ses-event-bounce-permanent")
    del rec["mail"]["tags"]["ses:configuration-set"]
    arn = "arn:aws:ses:us-east-1:111122223333:configuration-set/from-resources"
    ev = one(decode(eventbridge(rec, source="aws.ses", resources=[arn])))
    assert ev.hints.configuration_set == "from-resources"


# --- targeted classification ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounce_type", "subtype", "outcome"),
    [
        ("Permanent", "General", OC.BOUNCE_PERMANENT),
        ("Permanent", "NoEmail", OC.BOUNCE_PERMANENT),
        ("Permanent", "Suppressed", OC.BOUNCE_SUPPRESSED),
        ("Permanent", "OnAccountSuppressionList", OC.BOUNCE_SUPPRESSED),
        ("Transient", "MailboxFull", OC.BOUNCE_TRANSIENT),
        ("Transient", None, OC.BOUNCE_TRANSIENT),
        ("Undetermined", "Undetermined", OC.BOUNCE_UNDETERMINED),
        ("SomethingNew", None, OC.BOUNCE_UNDETERMINED),
    ],
)
def test_bounce_classification(bounce_type: str, subtype: str | None, outcome: Outcome) -> None:
    rec = load("ses-event-bounce-permanent")
    rec["bounce"]["bounceType"] = bounce_type
    rec["bounce"]["bounceSubType"] = subtype
    assert one(decode(rec)).outcome is outcome


def test_complaint_from_the_suppression_list_is_a_suppression() -> None:
    rec = load("ses-notification-complaint")
    rec["complaint"]["complaintSubType"] = "OnAccountSuppressionList"
    ev = one(decode(rec))
    assert ev.outcome is OC.BOUNCE_SUPPRESSED
    assert ev.recipient_domains == NET


def test_counts_follow_the_records_own_recipients() -> None:
    rec = load("ses-event-send")
    rec["mail"]["destination"] = ["a@x.example", "b@y.example", "c@z.example"]
    assert one(decode(rec)).count == 3
    delivery = load("ses-event-delivery")
    delivery["mail"]["destination"] = ["a@x.example", "jane.doe@example.net"]
    assert one(decode(delivery)).count == 1  # delivery.recipients


def test_hint_fallbacks() -> None:
    rec = load("ses-notification-bounce")  # no tags
    del rec["mail"]["sourceArn"]
    del rec["mail"]["commonHeaders"]
    hints = one(decode(rec)).hints
    assert hints.identity == "billing@acme.example.com"  # the sender, never a recipient
    assert hints.from_domain == "acme.example.com"
    assert hints.ses_tenant is hints.tenant_tag is hints.configuration_set is None


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({"isFinal": False, "eventType": "TEXT_CARRIER_UNREACHABLE"}, OC.SMS_PENDING),
        ({"isFinal": True, "eventType": "TEXT_SUCCESSFUL"}, OC.SMS_DELIVERED),
        ({"eventType": "TEXT_BLOCKED", "messageStatus": "OPTED_OUT"}, OC.SMS_SENDER_BLOCKED),
        (
            {
                "eventType": "TEXT_BLOCKED",
                "messageStatus": "BLOCKED",
                "messageStatusDescription": "The destination phone number has opted out",
            },
            OC.SMS_SENDER_BLOCKED,
        ),
        ({"eventType": "TEXT_CARRIER_BLOCKED", "messageStatus": "CARRIER_BLOCKED"}, OC.SMS_FAILED),
        ({"eventType": "TEXT_UNKNOWN", "messageStatus": "UNKNOWN"}, OC.SMS_FAILED),
        ({"eventType": "TEXT_QUEUED", "isFinal": None}, OC.SMS_PENDING),
        ({"eventType": "TEXT_DELIVERED", "isFinal": None}, OC.SMS_DELIVERED),
        ({"eventType": "TEXT_OPTED_OUT"}, OC.SMS_OPT_OUT),
    ],
)
def test_sms_classification(changes: dict[str, Any], outcome: Outcome) -> None:
    rec = load("sms-event-text-delivered")
    for k, v in changes.items():
        if v is None:
            del rec[k]
        else:
            rec[k] = v
    assert one(decode(rec)).outcome is outcome


@pytest.mark.parametrize(
    ("event_type", "status", "outcome"),
    [
        ("_SMS.FAILURE", "OPTED_OUT", OC.SMS_SENDER_BLOCKED),
        ("_SMS.FAILURE", "PROTECT_BLOCKED", OC.SMS_SENDER_BLOCKED),
        ("_SMS.FAILURE", "CARRIER_BLOCKED", OC.SMS_FAILED),
        ("_SMS.FAILURE", "TTL_EXPIRED", OC.SMS_FAILED),
        ("_SMS.BUFFERED", "PENDING", OC.SMS_PENDING),
        ("_SMS.SUCCESS", "SUCCESSFUL", OC.SMS_DELIVERED),
    ],
)
def test_pinpoint_sms_classification(event_type: str, status: str, outcome: Outcome) -> None:
    rec = load("pinpoint-sms-failure")
    rec["event_type"] = event_type
    rec["attributes"]["record_status"] = status
    assert one(decode(rec)).outcome is outcome


@pytest.mark.parametrize(
    ("event_type", "outcome"),
    [
        ("_email.rejected", OC.REJECT),
        ("_email.open", OC.OPEN),
        ("_email.click", OC.CLICK),
        ("_email.unsubscribe", OC.SUBSCRIPTION),
        ("_email.rendering_failure", OC.RENDERING_FAILURE),
    ],
)
def test_pinpoint_email_classification(event_type: str, outcome: Outcome) -> None:
    rec = load("pinpoint-email-send")
    rec["event_type"] = event_type
    ev = one(decode(rec))
    assert ev.outcome is outcome
    assert ev.recipient_domains == ()


def test_pinpoint_event_id_is_the_key_when_present() -> None:
    a, b = load("pinpoint-email-send"), load("pinpoint-email-send")
    a["event_id"] = b["event_id"] = "evt-1"
    b["event_timestamp"] += 1
    assert one(decode(a)).key == one(decode(b)).key


# --- no events, and errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"Type": "SubscriptionConfirmation", "TopicArn": "t", "Message": "x"}, id="sub"
        ),
        pytest.param(
            {"Type": "UnsubscribeConfirmation", "TopicArn": "t", "Message": "x"}, id="unsub"
        ),
        pytest.param(
            {"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"}, id="ses-topic"
        ),
        pytest.param({"eventType": "VOICE_COMPLETED", "messageId": "m"}, id="voice"),
        pytest.param({"eventType": "MEDIA_DELIVERED", "messageId": "m"}, id="mms"),
        pytest.param(
            {"event_type": "_session.start", "event_timestamp": 1, "application": {}}, id="app"
        ),
        pytest.param(
            {
                "detail-type": "Sending Status Disabled",
                "source": "aws.ses",
                "time": "2025-06-02T17:05:40Z",
                "resources": ["arn:aws:ses:us-east-1:111122223333:configuration-set/cs"],
                "detail": {"data": {"origin": "AWS_MANAGED", "record": {"status": "DISABLED"}}},
            },
            id="not-a-tenant",
        ),
    ],
)
def test_housekeeping_yields_no_events(body: dict[str, Any]) -> None:
    assert decode(body) == []


W, M = DecodeReason.WRONG_TYPE, DecodeReason.MISSING_FIELD


def _set(path: str, value: Any) -> Any:
    def change(rec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = rec
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value

    return change


@pytest.mark.parametrize(
    ("sample", "path", "value", "expected"),
    [
        ("ses-event-bounce-permanent", "mail", [], (W, "mail")),
        ("ses-event-bounce-permanent", "mail.messageId", KeyError, (M, "mail.messageId")),
        ("ses-event-bounce-permanent", "mail.messageId", 7, (W, "mail.messageId")),
        (
            "ses-event-bounce-permanent",
            "bounce.bouncedRecipients",
            "nobody@example.net",
            (W, "bounce.bouncedRecipients"),
        ),
        (
            "ses-event-bounce-permanent",
            "bounce.bouncedRecipients",
            [],
            (M, "bounce.bouncedRecipients"),
        ),
        (
            "ses-event-bounce-permanent",
            "bounce.bouncedRecipients.0.emailAddress",
            KeyError,
            (M, "bounce.bouncedRecipients.emailAddress"),
        ),
        ("ses-event-bounce-permanent", "bounce.bounceType", 5, (W, "bounce.bounceType")),
        ("ses-event-bounce-permanent", "bounce.timestamp", "yesterday", (W, "bounce.timestamp")),
        ("ses-event-bounce-permanent", "mail.tags", ["acme"], (W, "mail.tags")),
        ("ses-event-bounce-permanent", "mail.tags.tenant", [3], (W, "mail.tags")),
        ("ses-event-bounce-permanent", "eventType", "Teleported", (DecodeReason.UNKNOWN_SHAPE,
                                                                   "eventType")),
        ("ses-event-send", "mail.destination", "jane@example.net", (W, "mail.destination")),
        ("ses-event-send", "mail.timestamp", KeyError, (M, "mail.timestamp")),
        ("ses-event-complaint-abuse", "complaint", None, (M, "complaint")),
        ("ses-notification-delivery", "delivery.recipients", [1], (W, "delivery.recipients")),
        ("ses-notification-delivery", "notificationType", "Received",
         (DecodeReason.UNKNOWN_SHAPE, "notificationType")),
        ("sms-event-text-delivered", "eventTimestamp", "soon", (W, "eventTimestamp")),
        ("sms-event-text-delivered", "eventTimestamp", 1e300, (W, "eventTimestamp")),
        ("sms-event-text-delivered", "isFinal", "yes", (W, "isFinal")),
        ("sms-event-text-delivered", "messageId", KeyError, (M, "messageId")),
        ("sms-event-text-delivered", "context", ["tenant"], (W, "context")),
        ("pinpoint-sms-success", "attributes.message_id", KeyError, (M, "attributes.message_id")),
        ("pinpoint-email-send", "facets", {}, (M, "facets.email_channel")),
        ("pinpoint-email-send", "event_type", "_email.teleported",
         (DecodeReason.UNKNOWN_SHAPE, "event_type")),
        ("ses-eventbridge-tenant-sending-disabled-aws", "resources", "arn", (W, "resources")),
        (
            "ses-eventbridge-tenant-sending-disabled-aws",
            "detail.data.record.lastUpdatedTimestamp",
            [2025, 13, 1, 0, 0, 0, 0],
            (W, "detail.data.record.lastUpdatedTimestamp"),
        ),
    ],
)  # fmt: skip
def test_wrong_fields_name_the_field(
    sample: str, path: str, value: Any, expected: tuple[DecodeReason, str]
) -> None:
    rec = load(sample)
    _set(path, value)(rec)
    assert decode(rec) == DecodeError(*expected)


def test_body_checks() -> None:
    big = json.dumps({"pad": "x" * 300_000})
    assert decode_body(big.encode()) == DecodeError(DecodeReason.TOO_LARGE, "body")
    # 100k characters but 300k bytes in UTF-8: over the limit only when measured in bytes.
    wide = json.dumps({"pad": "€" * 100_000}, ensure_ascii=False)
    assert decode_body(wide) == DecodeError(DecodeReason.TOO_LARGE, "body")
    assert decode_body(b"\xff\xfe{}") == DecodeError(DecodeReason.INVALID_UTF8, "body")
    assert decode_body(b"[1, 2]") == DecodeError(DecodeReason.NOT_AN_OBJECT, "body")
    assert decode_body("") == DecodeError(DecodeReason.INVALID_JSON, "body")
    assert decode_body("[" * 100_000) == DecodeError(DecodeReason.INVALID_JSON, "body")
    assert decode_body(b"{}", max_bytes=1) == DecodeError(DecodeReason.TOO_LARGE, "body")


def test_bad_envelopes() -> None:
    not_a_string = sns("{}")
    not_a_string["Message"] = 5
    assert decode(not_a_string) == DecodeError(DecodeReason.BAD_ENVELOPE, "Message")
    assert decode(sns("[1, 2]")) == DecodeError(DecodeReason.BAD_ENVELOPE, "Message")
    assert decode(eventbridge("not an object")) == DecodeError(DecodeReason.BAD_ENVELOPE, "detail")
    nested: Any = load("ses-event-send")
    for _ in range(MAX_DEPTH + 1):
        nested = sns(nested)
    assert decode(nested) == DecodeError(DecodeReason.BAD_ENVELOPE, "nesting")
