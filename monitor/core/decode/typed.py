"""The fast path for most of the traffic: an SNS Notification carrying one SES event-publishing
record, decoded by msgspec straight into Structs.

Why msgspec: the typed decode of both layers builds small Structs whose fields are already
type-checked, where orjson builds a dict for every object and the decoder then reads and
checks each field in Python (dict.get + a type test per field). On the bench's bodies it
parses both layers in ~2.45 µs where orjson takes ~2.9 and msgspec untyped ~3.2, and the whole
decode takes ~5.5 µs where the general path takes ~6.9 (bench/core.py --stages).

The answer is always the general path's (envelope.decode_body_general, the reference in
tests/unit/test_decode_typed.py): `decode_sns` returns an Event only for a body the general
path decodes to exactly that one Event; otherwise the Message or None, and the general path
decides. Two rules make that hold:

- Nothing is skipped. Every Struct forbids unknown fields and types every field it declares
  (no `Any`), so msgspec reads and validates every byte of a body it accepts, as orjson would:
  same JSON grammar, UTF-8, escapes and surrogates. Skipping would not do: msgspec skips
  unknown fields without checking that numbers fit a double, that skipped bytes are UTF-8,
  or the nesting depth, all of which make orjson refuse the body. Integers are bounded for
  the same reason (orjson reads big ones as floats, and refuses one past a double's range).
  The one raw field, mail.tags, is decoded in full the first time its text is seen (_hints).
- Only the plain case: an SES event type whose fields are all present and well formed, read
  as the SES decoder reads them. Anything the general path would reject or read another way
  (an empty id or recipient list, a null where it tests for presence, another timestamp
  spelling, an eventType alias, a nested envelope) returns None.

When only the envelope is typed (an SNS Notification carrying another record: a legacy
notification, SMS, a Subscription...), its Message goes to the general path's SNS step, which
is what that path does after parsing the same envelope. A body that does not start as SNS
writes a Notification (raw records, EventBridge) is left alone after one `find`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

from monitor.core.decode._common import (
    MAX_INTERNED_HINTS,
    Invalid,
    iso_time_key,
    recipient_domains,
    recipients_part,
)
from monitor.core.decode.ses import DERIVED, derive
from monitor.core.events import Channel, Event, Outcome, TenantHints, key_digest

# msgspec reads an integer of any length where orjson refuses one past a double's range:
# bounded (to int64, what msgspec can bound), a bigger one fails here and goes the general way.
_Int = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]


class _Exact(Struct, forbid_unknown_fields=True, gc=False):
    """Base: an unknown field fails the decode (nothing skipped); not tracked by the GC (no
    cycles: plain data, dropped right after decoding)."""


class _MessageAttribute(_Exact):
    Type: str
    Value: str


class _Sns(_Exact):
    Type: Literal["Notification"]
    Message: str
    MessageId: str | None = None
    TopicArn: str | None = None
    Subject: str | None = None
    Timestamp: str | None = None
    SignatureVersion: str | None = None
    Signature: str | None = None
    SigningCertURL: str | None = None
    UnsubscribeURL: str | None = None
    MessageAttributes: dict[str, _MessageAttribute] | None = None


class _Header(_Exact):
    name: str
    value: str


class _CommonHeaders(_Exact):
    from_: list[str] | None = field(name="from", default=None)
    to: list[str] | None = None
    cc: list[str] | None = None
    bcc: list[str] | None = None
    replyTo: list[str] | None = None
    sender: list[str] | None = None
    returnPath: str | None = None
    messageId: str | None = None
    subject: str | None = None
    date: str | None = None


class _Mail(_Exact):
    messageId: str
    timestamp: str | None = None
    source: str | None = None
    sourceArn: str | None = None
    sendingAccountId: str | None = None
    destination: list[str] | None = None
    headersTruncated: bool | None = None
    headers: list[_Header] | None = None
    commonHeaders: _CommonHeaders | None = None
    # As its raw text: see _hints (absent: empty).
    tags: msgspec.Raw = field(default_factory=msgspec.Raw)


class _Recipient(_Exact):
    emailAddress: str
    action: str | None = None
    status: str | None = None
    diagnosticCode: str | None = None


class _Send(_Exact):
    timestamp: str | None = None


class _Delivery(_Exact):
    timestamp: str | None = None
    # The SES decoder tests for presence: UNSET (absent) is not None (null, refused here).
    recipients: list[str] | UnsetType = UNSET
    processingTimeMillis: _Int | None = None
    smtpResponse: str | None = None
    reportingMTA: str | None = None
    remoteMtaIp: str | None = None


class _Bounce(_Exact):
    timestamp: str | None = None
    bounceType: str | None = None
    bounceSubType: str | None = None
    bouncedRecipients: list[_Recipient] | None = None
    feedbackId: str | None = None
    reportingMTA: str | None = None
    remoteMtaIp: str | None = None


class _Complaint(_Exact):
    timestamp: str | None = None
    complaintSubType: str | None = None
    complainedRecipients: list[_Recipient] | None = None
    complaintFeedbackType: str | None = None
    feedbackId: str | None = None
    userAgent: str | None = None
    arrivalDate: str | None = None


class _DeliveryDelay(_Exact):
    timestamp: str | None = None
    delayedRecipients: list[_Recipient] | UnsetType = UNSET  # as Delivery's recipients
    delayType: str | None = None
    expirationTime: str | None = None
    reportingMTA: str | None = None


class _Reject(_Exact):
    timestamp: str | None = None
    reason: str | None = None


class _Failure(_Exact):
    timestamp: str | None = None
    templateName: str | None = None
    errorMessage: str | None = None


class _Engagement(_Exact):  # open and click
    timestamp: str | None = None
    ipAddress: str | None = None
    userAgent: str | None = None
    link: str | None = None
    linkTags: dict[str, list[str]] | None = None


class _Record(_Exact):
    """One event-publishing record; its detail under its own key (Subscription's is not
    declared: it goes the general way)."""

    eventType: str
    mail: _Mail
    send: _Send | None = None
    delivery: _Delivery | None = None
    bounce: _Bounce | None = None
    complaint: _Complaint | None = None
    deliveryDelay: _DeliveryDelay | None = None
    reject: _Reject | None = None
    failure: _Failure | None = None
    open: _Engagement | None = None
    click: _Engagement | None = None


_decode_sns = msgspec.json.Decoder(_Sns).decode
_decode_record = msgspec.json.Decoder(_Record).decode

# Record types whose detail is read for its timestamp only (as ses._decode reads them).
_OTHER = {
    "Send": ("send", Outcome.SEND),
    "Reject": ("reject", Outcome.REJECT),
    "Rendering Failure": ("failure", Outcome.RENDERING_FAILURE),
    "Open": ("open", Outcome.OPEN),
    "Click": ("click", Outcome.CLICK),
}
_SUPPRESSED_SUBTYPES = frozenset({"OnAccountSuppressionList", "Suppressed"})
_EMAIL = Channel.EMAIL
_DELIVERY, _DELIVERY_DELAY = Outcome.DELIVERY, Outcome.DELIVERY_DELAY
_COMPLAINT, _SUPPRESSED = Outcome.COMPLAINT, Outcome.BOUNCE_SUPPRESSED
_PERMANENT, _TRANSIENT = Outcome.BOUNCE_PERMANENT, Outcome.BOUNCE_TRANSIENT
_UNDETERMINED = Outcome.BOUNCE_UNDETERMINED


def decode_sns(body: bytes | str) -> Event | str | None:
    """An SNS Notification's one Event when it carries the plain case of an SES record; else
    its Message, when the envelope is one (the record then goes the general way); else None:
    not an SNS Notification as SNS writes it (the general path decides). Never raises."""
    # SNS writes `Type` first: a body without "Notification" near its start is something
    # else, or a relay's reordering of it. Either way the general path reads it, and is
    # spared a failed typed decode (msgspec's ValidationError costs ~0.5 µs).
    if (
        body.find(_NOTIFICATION_BYTES, 0, 64)
        if type(body) is bytes
        else body.find(_NOTIFICATION_STR, 0, 64)  # type: ignore[arg-type]
    ) < 0:
        return None
    try:
        message = _decode_sns(body).Message
    except (msgspec.DecodeError, ValueError):  # ValueError: not UTF-8 (a str's surrogates)
        return None
    event = decode_ses_record(message)
    return message if event is None else event


def decode_ses_record(text: bytes | str) -> Event | None:
    """A raw SES event-publishing record's one Event (a line of a Firehose archive), in the
    plain case as `decode_sns` reads a Message; else None, and the general path decides (it
    sends a raw record to the same SES decoder as an SNS Message). Never raises."""
    try:
        return _event(_decode_record(text))
    except (msgspec.DecodeError, ValueError, Invalid):  # Invalid: a timestamp's spelling
        return None


_NOTIFICATION_BYTES = b'"Notification"'
_NOTIFICATION_STR = '"Notification"'


def _event(rec: _Record) -> Event | None:
    """ses._decode on typed values, in its order; None wherever that raises, or reads a
    value otherwise than the plain way read here."""
    mail = rec.mail
    message_id = mail.messageId
    if not message_id:
        return None
    et = rec.eventType
    domains: tuple[str, ...] = ()
    recipients: list[str] | None
    if et == "Delivery":
        delivery = rec.delivery
        if delivery is None:
            recipients, own = mail.destination, None
        else:
            own = delivery.timestamp
            recipients = mail.destination if delivery.recipients is UNSET else delivery.recipients
        outcome = _DELIVERY
    elif et == "Bounce":
        bounce = rec.bounce
        if bounce is None or not bounce.bounceType or not bounce.bouncedRecipients:
            return None
        recipients = _addresses(bounce.bouncedRecipients)
        if recipients is None:
            return None
        domains = recipient_domains(recipients)
        if bounce.bounceType == "Permanent":
            outcome = _SUPPRESSED if bounce.bounceSubType in _SUPPRESSED_SUBTYPES else _PERMANENT
        elif bounce.bounceType == "Transient":
            outcome = _TRANSIENT
        else:
            outcome = _UNDETERMINED
        own = bounce.timestamp
    elif et == "Complaint":
        complaint = rec.complaint
        if complaint is None or not complaint.complainedRecipients:
            return None
        recipients = _addresses(complaint.complainedRecipients)
        if recipients is None:
            return None
        domains = recipient_domains(recipients)
        subtype = complaint.complaintSubType
        outcome = _SUPPRESSED if subtype == "OnAccountSuppressionList" else _COMPLAINT
        own = complaint.timestamp
    elif et == "DeliveryDelay":
        delay = rec.deliveryDelay
        if delay is None:
            recipients, own = mail.destination, None
        else:
            own = delay.timestamp
            if delay.delayedRecipients is UNSET:
                recipients = mail.destination
            else:
                recipients = _addresses(delay.delayedRecipients)
        outcome = _DELIVERY_DELAY
    else:
        other = _OTHER.get(et)
        if other is None:  # Subscription, an alias (RenderingFailure), not SES's
            return None
        name, outcome = other
        detail: _Send | _Reject | _Failure | _Engagement | None = getattr(rec, name)
        recipients, own = mail.destination, None if detail is None else detail.timestamp
    if not recipients:  # None (absent, or an empty address), or []
        return None

    # The path only names the field in an error, and an error goes the general way.
    t, millis = iso_time_key(mail.timestamp if own is None else own, "timestamp")
    hints = _hints(mail)
    if hints is None:
        return None
    rcpts = recipients[0] if len(recipients) == 1 else recipients_part(recipients)
    digest = key_digest(f"ses\x1f{message_id}\x1f{et}\x1f{rcpts}\x1f{millis}\x1f")
    return tuple.__new__(Event, (digest, t, _EMAIL, outcome, len(recipients), hints, domains))


def _addresses(items: list[_Recipient]) -> list[str] | None:
    out = [r.emailAddress for r in items]
    return out if all(out) else None  # an empty address is MISSING to the general path


def _hints(mail: _Mail) -> TenantHints | None:
    """ses._tenant_hints on typed values, or None where that raises (mail.tags not an object
    of string lists: the general path judges those)."""
    # Why raw tags: a sender's tags are the same text message after message, and building
    # the dict and its lists costs more than hashing the text. The text only counts as valid
    # once it has been decoded in full (below); the same bytes are then valid again.
    headers = mail.commonHeaders
    header_from = headers.from_[0] if headers is not None and headers.from_ else None
    key = (bytes(mail.tags), mail.source, mail.sourceArn, header_from)
    hit = _HINTS.get(key)
    if hit is not None:
        return hit
    try:
        tags = _decode_tags(key[0]) if key[0] else None
    except (msgspec.DecodeError, ValueError):
        return None
    if tags:
        v = tags.get("ses:tenant-name")
        ses_tenant = (v[0] or None) if v else None  # ses._first of a list of str
        v = tags.get("tenant")
        tenant_tag = (v[0] or None) if v else None
        v = tags.get("ses:configuration-set")
        configuration_set = (v[0] or None) if v else None
        v = tags.get("ses:from-domain")
        from_domain = (v[0] or None) if v else None
    else:
        ses_tenant = tenant_tag = configuration_set = from_domain = None
    raw = (
        ses_tenant,
        tenant_tag,
        configuration_set,
        from_domain,
        mail.source,
        mail.sourceArn,
        None if from_domain else header_from,
    )
    derived = DERIVED.get(raw)
    if derived is None:
        if len(DERIVED) >= MAX_INTERNED_HINTS:
            DERIVED.clear()
        derived = DERIVED[raw] = derive(*raw)
    if len(_HINTS) >= MAX_INTERNED_HINTS:
        _HINTS.clear()
    _HINTS[key] = derived
    return derived


_HINTS: dict[tuple[bytes, str | None, str | None, str | None], TenantHints] = {}
_decode_tags = msgspec.json.Decoder(dict[str, list[str]] | None).decode
