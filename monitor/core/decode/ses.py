"""SES email events → Event.

Three feeds carry the same records:
- event publishing through a configuration set (`eventType`): SNS, Firehose, or the `detail` of
  an EventBridge `aws.ses` email event ("Email Bounced", "Email Sent", ...), whose `resources`
  may name the configuration set;
- legacy identity feedback notifications (`notificationType`: Bounce, Complaint, Delivery;
  usually no `tags`). `AmazonSnsSubscriptionSucceeded` is SES confirming the topic: no event.

| record type | outcome | count (recipients) | time |
| --- | --- | --- | --- |
| Send | send | mail.destination | mail.timestamp |
| Delivery | delivery | delivery.recipients | delivery.timestamp |
| Bounce, Permanent | bounce_permanent | bounce.bouncedRecipients | bounce.timestamp |
| Bounce, Permanent/Suppressed or OnAccountSuppressionList | bounce_suppressed | 〃 | 〃 |
| Bounce, Transient | bounce_transient | 〃 | 〃 |
| Bounce, Undetermined (or a type SES adds later) | bounce_undetermined | 〃 | 〃 |
| Complaint | complaint | complaint.complainedRecipients | complaint.timestamp |
| Complaint, subtype OnAccountSuppressionList | bounce_suppressed | 〃 | 〃 |
| Reject | reject | mail.destination | mail.timestamp |
| DeliveryDelay | delivery_delay | deliveryDelay.delayedRecipients | deliveryDelay.timestamp |
| Rendering Failure | rendering_failure | mail.destination | mail.timestamp |
| Open / Click / Subscription | open / click / subscription | mail.destination | own timestamp |

A complaint with subtype OnAccountSuppressionList was never sent (SES found the address on the
account suppression list) and SES leaves it out of its own complaint metrics, so it is counted
as a suppression, not as a recipient's complaint. A record without its own timestamp falls back
to mail.timestamp.

Key: ("ses", mail.messageId, record type, the record's recipients sorted, event time in ms).
The record type is SES's own name, which is the same in every feed, so one bounce arriving
raw, through SNS, through EventBridge, or as a legacy notification beside an event-publishing
record (two feeds of the same bounce in practice) has one key and counts once.

Tenant hints: `ses:tenant-name`, `tenant`, `ses:configuration-set` and `ses:from-domain` tags
(first value); else the configuration-set ARN of an EventBridge event's resources; identity
from mail.sourceArn (`...:identity/NAME`), else the bare mail.source (a sender, never a
recipient); from-domain else the domain of the From header, else of mail.source.
"""

from __future__ import annotations

from monitor.core.decode import DecodeError, DecodeReason, DecodeResult
from monitor.core.decode._common import (
    BACKSTOP,
    MAX_INTERNED_HINTS,
    WRONG,
    Invalid,
    JsonObject,
    address_list,
    bare_address,
    domain_of,
    hints,
    iso_time_key,
    obj,
    opt_obj,
    opt_string,
    recipient_domains,
    recipients_part,
    str_list,
    string,
)
from monitor.core.events import Channel, Event, Outcome, TenantHints, key_digest

# record type → the object holding its details
_DETAIL_KEY = {
    "Send": "send",
    "Delivery": "delivery",
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Reject": "reject",
    "DeliveryDelay": "deliveryDelay",
    "Rendering Failure": "failure",
    "Open": "open",
    "Click": "click",
    "Subscription": "subscription",
}
_TIME_PATH = {et: key + ".timestamp" for et, key in _DETAIL_KEY.items()}
# Event types whose records decode_event reads as they are (no alias, none of them TEXT_*).
SES_EVENT_TYPES = frozenset(_DETAIL_KEY)
_ALIASES = {"RenderingFailure": "Rendering Failure"}  # the SESv2 enum's spelling
_OTHER_OUTCOME = {
    "Send": Outcome.SEND,
    "Delivery": Outcome.DELIVERY,
    "Reject": Outcome.REJECT,
    "DeliveryDelay": Outcome.DELIVERY_DELAY,
    "Rendering Failure": Outcome.RENDERING_FAILURE,
    "Open": Outcome.OPEN,
    "Click": Outcome.CLICK,
    "Subscription": Outcome.SUBSCRIPTION,
}
_SUPPRESSED_SUBTYPES = frozenset({"OnAccountSuppressionList", "Suppressed"})
_NOTIFICATION_TYPES = frozenset({"Bounce", "Complaint", "Delivery"})
_NOTIFICATION_IGNORED = frozenset({"AmazonSnsSubscriptionSucceeded"})
_BACKSTOP_ERROR = DecodeError(WRONG, "ses")
EMAIL = Channel.EMAIL


def decode_event(rec: JsonObject, resources: object = None) -> DecodeResult:
    """An event-publishing record; `resources` is the EventBridge envelope's, if any."""
    try:
        et = rec.get("eventType")
        if not isinstance(et, str):
            raise Invalid(WRONG, "eventType")
        et = _ALIASES.get(et, et)
        if et not in _DETAIL_KEY:
            raise Invalid(DecodeReason.UNKNOWN_SHAPE, "eventType")
        return [_decode(rec, et, resources)]
    except Invalid as e:
        return e.error
    except BACKSTOP:
        return _BACKSTOP_ERROR


def decode_known_event(rec: JsonObject, et: str) -> DecodeResult:
    """decode_event for a record whose `eventType` the caller has read and found in
    SES_EVENT_TYPES, outside any EventBridge envelope (the envelope's fast path)."""
    try:
        return [_decode(rec, et, None)]
    except Invalid as e:
        return e.error
    except BACKSTOP:
        return _BACKSTOP_ERROR


def decode_notification(rec: JsonObject) -> DecodeResult:
    """A legacy identity feedback notification."""
    try:
        nt = rec.get("notificationType")
        if not isinstance(nt, str):
            raise Invalid(WRONG, "notificationType")
        if nt in _NOTIFICATION_IGNORED:
            return []
        if nt not in _NOTIFICATION_TYPES:
            raise Invalid(DecodeReason.UNKNOWN_SHAPE, "notificationType")
        return [_decode(rec, nt, None)]
    except Invalid as e:
        return e.error
    except BACKSTOP:
        return _BACKSTOP_ERROR


def _decode(rec: JsonObject, et: str, resources: object) -> Event:
    # The common shapes are read inline (`type(v) is ...`, as orjson builds them); anything
    # else goes through the general getter, which returns the same value or raises the same
    # error as before, in the same order. This is the hot path: ~1 µs saved per record.
    mail = rec.get("mail")
    if type(mail) is not dict:
        mail = obj(rec, "mail", "mail")
    message_id = mail.get("messageId")
    if type(message_id) is not str or not message_id:
        message_id = string(mail, "messageId", "mail.messageId")
    domains: tuple[str, ...] = ()
    if et == "Bounce":
        detail = obj(rec, "bounce", "bounce")
        recipients = address_list(detail, "bouncedRecipients", "bounce.bouncedRecipients")
        outcome = _bounce_outcome(detail)
        domains = recipient_domains(recipients)
    elif et == "Complaint":
        detail = obj(rec, "complaint", "complaint")
        recipients = address_list(detail, "complainedRecipients", "complaint.complainedRecipients")
        subtype = opt_string(detail, "complaintSubType", "complaint.complaintSubType")
        outcome = (
            Outcome.BOUNCE_SUPPRESSED
            if subtype == "OnAccountSuppressionList"
            else Outcome.COMPLAINT
        )
        domains = recipient_domains(recipients)
    else:
        name = _DETAIL_KEY[et]
        found = rec.get(name)
        detail = found if type(found) is dict else (opt_obj(rec, name, name) or {})
        outcome = _OTHER_OUTCOME[et]
        if et == "Delivery" and "recipients" in detail:
            recipients = _strings(detail, "recipients", "delivery.recipients")
        elif et == "DeliveryDelay" and "delayedRecipients" in detail:
            recipients = address_list(
                detail, "delayedRecipients", "deliveryDelay.delayedRecipients"
            )
        else:
            recipients = _strings(mail, "destination", "mail.destination")

    own = detail.get("timestamp")
    if own is not None:
        t, millis = iso_time_key(own, _TIME_PATH[et])
    else:
        t, millis = iso_time_key(mail.get("timestamp"), "mail.timestamp")

    # event_key("ses", message_id, et, recipients, millis), joined in one go
    rcpts = recipients_part(recipients)
    digest = key_digest(f"ses\x1f{message_id}\x1f{et}\x1f{rcpts}\x1f{millis}\x1f")
    hints = _tenant_hints(mail, resources)
    # Event(...) without the NamedTuple's Python-level __new__: the same tuple, half the cost.
    return tuple.__new__(Event, (digest, t, EMAIL, outcome, len(recipients), hints, domains))


def _strings(parent: JsonObject, key: str, path: str) -> list[str]:
    """str_list, with the one-recipient list read inline."""
    v = parent.get(key)
    if type(v) is list and len(v) == 1 and type(v[0]) is str:
        return v
    return str_list(parent, key, path)


def _bounce_outcome(bounce: JsonObject) -> Outcome:
    bounce_type = string(bounce, "bounceType", "bounce.bounceType")
    if bounce_type == "Permanent":
        subtype = opt_string(bounce, "bounceSubType", "bounce.bounceSubType")
        if subtype in _SUPPRESSED_SUBTYPES:
            return Outcome.BOUNCE_SUPPRESSED  # SES never tried: not the recipient's verdict
        return Outcome.BOUNCE_PERMANENT
    if bounce_type == "Transient":
        return Outcome.BOUNCE_TRANSIENT
    return Outcome.BOUNCE_UNDETERMINED


def _tenant_hints(mail: JsonObject, resources: object) -> TenantHints:
    tags = mail.get("tags")
    if tags:
        if not isinstance(tags, dict):
            raise Invalid(WRONG, "mail.tags")
        get = tags.get
        ses_tenant = _first(get("ses:tenant-name"))
        tenant_tag = _first(get("tenant"))
        configuration_set = _first(get("ses:configuration-set"))
        from_domain = _first(get("ses:from-domain"))
    elif tags is None or isinstance(tags, dict):  # absent, or {}
        ses_tenant = tenant_tag = configuration_set = from_domain = None
    else:
        raise Invalid(WRONG, "mail.tags")
    if configuration_set is None and resources:
        configuration_set = _configuration_set_from(resources)

    source = mail.get("source")
    if type(source) is not str:
        source = opt_string(mail, "source", "mail.source")
    source_arn = mail.get("sourceArn")
    if type(source_arn) is not str:
        source_arn = opt_string(mail, "sourceArn", "mail.sourceArn")
    header_from = None if from_domain else _header_from(mail)

    # Why a cache: a stream has few senders, and deriving the identity and from-domain from
    # the same strings again costs more than looking them up (bounded like `hints`).
    raw = (ses_tenant, tenant_tag, configuration_set, from_domain, source, source_arn, header_from)
    derived = DERIVED.get(raw)
    if derived is None:
        if len(DERIVED) >= MAX_INTERNED_HINTS:
            DERIVED.clear()
        derived = DERIVED[raw] = derive(*raw)
    return derived


# Shared with the typed fast path (decode.typed), which looks up the same raw values.
DERIVED: dict[tuple[str | None, ...], TenantHints] = {}


def derive(
    ses_tenant: str | None,
    tenant_tag: str | None,
    configuration_set: str | None,
    from_domain: str | None,
    source: str | None,
    source_arn: str | None,
    header_from: str | None,
) -> TenantHints:
    """Identity from mail.sourceArn, else the bare mail.source; from-domain from the tag, else
    the From header, else mail.source ("" reads as absent throughout)."""
    source = source or None
    identity = None
    if source_arn:
        _, sep, name = source_arn.rpartition(":identity/")
        identity = name if sep and name else None
    if identity is None and source:
        identity = bare_address(source) or None

    if from_domain:
        from_domain = from_domain.lower()
    else:
        from_domain = (domain_of(bare_address(header_from)) if header_from else None) or (
            domain_of(bare_address(source)) if source else None
        )
    return hints(
        ses_tenant=ses_tenant,
        tenant_tag=tenant_tag,
        configuration_set=configuration_set,
        identity=identity,
        from_domain=from_domain,
    )


def _first(v: object) -> str | None:
    """The first value of a tag; SES sends lists, a bare string is accepted too."""
    if isinstance(v, list):
        if not v:
            return None
        v = v[0]
    if v is None or isinstance(v, str):
        return v or None
    raise Invalid(WRONG, "mail.tags")


def _configuration_set_from(resources: object) -> str | None:
    # The envelope is AWS's, not the record's: a resource of an unexpected type is skipped.
    if isinstance(resources, list):
        for arn in resources:
            if isinstance(arn, str):
                _, sep, name = arn.partition(":configuration-set/")
                if sep and name:
                    return name
    return None


def _header_from(mail: JsonObject) -> str | None:
    # commonHeaders is optional (only with headers enabled) and only a fallback: lenient.
    headers = mail.get("commonHeaders")
    if isinstance(headers, dict):
        from_ = headers.get("from")
        if isinstance(from_, list) and from_ and isinstance(from_[0], str):
            return from_[0]
    return None
