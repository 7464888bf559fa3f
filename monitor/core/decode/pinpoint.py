"""Amazon Pinpoint event stream records (`event_type` `_email.*`, `_SMS.*`) → Event.

| event_type | outcome |
| --- | --- |
| _email.send | send |
| _email.delivered | delivery |
| _email.hard_bounce | bounce_permanent |
| _email.soft_bounce | bounce_transient |
| _email.complaint | complaint |
| _email.rejected | reject |
| _email.rendering_failure | rendering_failure |
| _email.open / _email.click | open / click |
| _email.unsubscribe | subscription |
| _SMS.BUFFERED, _SMS.SEND | sms_pending |
| _SMS.SUCCESS (record_status DELIVERED or SUCCESSFUL) | sms_delivered |
| _SMS.FAILURE, record_status PROTECT_BLOCKED or OPTED_OUT (1) | sms_sender_blocked |
| _SMS.FAILURE, any other record_status (2) | sms_failed |
| _SMS.OPTOUT (the recipient replied STOP) | sms_opt_out |

(1) stopped by the sender's protect configuration or own opt-out list. (2) UNREACHABLE,
BLOCKED, CARRIER_UNREACHABLE, CARRIER_BLOCKED, INVALID, INVALID_MESSAGE, SPAM, TTL_EXPIRED,
UNKNOWN, MAX_PRICE_EXCEEDED, ...

Other Pinpoint records on the same stream (`_session.*`, `_campaign.*`, `_journey.*`, custom
app events) carry no deliverability signal and yield no event; an unknown `_email.*` or
`_SMS.*` type is UNKNOWN_SHAPE so that a new AWS type is noticed.

Time: event_timestamp (ms). Count: len(mail.destination) for email (at least 1), 1 for SMS.
Key: ("pinpoint", event_id) when the record has one; else email ("pinpoint", message_id,
event_type, event_timestamp) (an open or click can repeat) and SMS ("pinpoint", message_id,
event_type), like End User Messaging, so a SUCCESSFUL then DELIVERED receipt of one message
counts once.
Tenant hints: application.app_id; attributes.tenant; SMS attributes.customer_context (a JSON
string: its string entries); email from_address (identity and from-domain).
"""

from __future__ import annotations

from monitor.core.decode import DecodeError, DecodeReason, DecodeResult
from monitor.core.decode._common import (
    BACKSTOP,
    WRONG,
    Invalid,
    JsonObject,
    bare_address,
    context_pairs,
    domain_of,
    hints,
    ms_time,
    obj,
    opt_obj,
    opt_string,
    recipient_domains,
    str_list,
    string,
    time_part,
)
from monitor.core.decode._json import loads
from monitor.core.decode.sms import SENDER_BLOCKED_STATUSES
from monitor.core.events import Channel, Event, Outcome, event_key

_EMAIL = {
    "_email.send": Outcome.SEND,
    "_email.delivered": Outcome.DELIVERY,
    "_email.hard_bounce": Outcome.BOUNCE_PERMANENT,
    "_email.soft_bounce": Outcome.BOUNCE_TRANSIENT,
    "_email.complaint": Outcome.COMPLAINT,
    "_email.rejected": Outcome.REJECT,
    "_email.rendering_failure": Outcome.RENDERING_FAILURE,
    "_email.open": Outcome.OPEN,
    "_email.click": Outcome.CLICK,
    "_email.unsubscribe": Outcome.SUBSCRIPTION,
}
_WITH_RECIPIENT_DOMAINS = frozenset(
    {Outcome.BOUNCE_PERMANENT, Outcome.BOUNCE_TRANSIENT, Outcome.COMPLAINT}
)
_SMS = {
    "_SMS.BUFFERED": Outcome.SMS_PENDING,
    "_SMS.SEND": Outcome.SMS_PENDING,
    "_SMS.SUCCESS": Outcome.SMS_DELIVERED,
    "_SMS.FAILURE": Outcome.SMS_FAILED,
    "_SMS.OPTOUT": Outcome.SMS_OPT_OUT,
}
_MAIL_PATH = "facets.email_channel.mail_event.mail"


def is_pinpoint(rec: JsonObject) -> bool:
    """Shape test: `event_type` alone is too common a key to claim a record."""
    return "event_type" in rec and (
        "application" in rec or "event_timestamp" in rec or "arrival_timestamp" in rec
    )


_BACKSTOP_ERROR = DecodeError(WRONG, "pinpoint")


def decode_pinpoint(rec: JsonObject) -> DecodeResult:
    try:
        return _decode(rec)
    except Invalid as e:
        return e.error
    except BACKSTOP:
        return _BACKSTOP_ERROR


def _decode(rec: JsonObject) -> DecodeResult:
    event_type = string(rec, "event_type", "event_type")
    if event_type.startswith("_email."):
        email = True
        outcome = _EMAIL.get(event_type)
    elif event_type.startswith("_SMS."):
        email = False
        outcome = _SMS.get(event_type)
    else:
        return []
    if outcome is None:
        raise Invalid(DecodeReason.UNKNOWN_SHAPE, "event_type")

    t = ms_time(rec.get("event_timestamp"), "event_timestamp")
    application = opt_obj(rec, "application", "application") or {}
    app_id = opt_string(application, "app_id", "application.app_id")
    attributes = opt_obj(rec, "attributes", "attributes") or {}
    tenant_tag = opt_string(attributes, "tenant", "attributes.tenant")
    event_id = opt_string(rec, "event_id", "event_id")

    if email:
        facets = obj(rec, "facets", "facets")
        channel = obj(facets, "email_channel", "facets.email_channel")
        mail_event = obj(channel, "mail_event", "facets.email_channel.mail_event")
        mail = obj(mail_event, "mail", _MAIL_PATH)
        message_id = string(mail, "message_id", _MAIL_PATH + ".message_id")
        destination = (
            str_list(mail, "destination", _MAIL_PATH + ".destination")
            if mail.get("destination") is not None
            else []
        )
        sender = opt_string(mail, "from_address", _MAIL_PATH + ".from_address")
        sender = bare_address(sender) if sender else None
        key = (
            event_key("pinpoint", event_id)
            if event_id
            else event_key("pinpoint", message_id, event_type, time_part(t))
        )
        return [
            Event(
                key=key,
                time=t,
                channel=Channel.EMAIL,
                outcome=outcome,
                count=max(1, len(destination)),
                hints=hints(
                    tenant_tag=tenant_tag,
                    identity=sender or None,
                    from_domain=domain_of(sender) if sender else None,
                    pinpoint_app=app_id,
                ),
                recipient_domains=(
                    recipient_domains(destination) if outcome in _WITH_RECIPIENT_DOMAINS else ()
                ),
            )
        ]

    message_id = string(attributes, "message_id", "attributes.message_id")
    status = opt_string(attributes, "record_status", "attributes.record_status")
    if outcome is Outcome.SMS_FAILED and status in SENDER_BLOCKED_STATUSES:
        outcome = Outcome.SMS_SENDER_BLOCKED
    key = (
        event_key("pinpoint", event_id)
        if event_id
        else event_key("pinpoint", message_id, event_type)
    )
    return [
        Event(
            key=key,
            time=t,
            channel=Channel.SMS,
            outcome=outcome,
            count=1,
            hints=hints(
                tenant_tag=tenant_tag,
                pinpoint_app=app_id,
                sms_context=_customer_context(attributes.get("customer_context")),
            ),
        )
    ]


def _customer_context(value: object) -> tuple[tuple[str, str], ...]:
    # Free-form text the sender attached: unreadable context is no hint, not a bad record.
    if isinstance(value, str):
        try:
            value = loads(value)
        except ValueError:
            return ()
    if isinstance(value, dict):
        return context_pairs(value, "attributes.customer_context")
    return ()
