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
    WRONG,
    Invalid,
    JsonObject,
    address_list,
    bare_address,
    domain_of,
    hints,
    iso_time,
    obj,
    opt_obj,
    opt_string,
    recipient_domains,
    recipients_part,
    str_list,
    string,
    time_part,
)
from monitor.core.events import Channel, Event, Outcome, TenantHints, event_key

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
    mail = obj(rec, "mail", "mail")
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
        key = _DETAIL_KEY[et]
        detail = opt_obj(rec, key, key) or {}
        outcome = _OTHER_OUTCOME[et]
        if et == "Delivery" and "recipients" in detail:
            recipients = str_list(detail, "recipients", "delivery.recipients")
        elif et == "DeliveryDelay" and "delayedRecipients" in detail:
            recipients = address_list(
                detail, "delayedRecipients", "deliveryDelay.delayedRecipients"
            )
        else:
            recipients = str_list(mail, "destination", "mail.destination")

    own = detail.get("timestamp")
    if own is not None:
        t = iso_time(own, _TIME_PATH[et])
    else:
        t = iso_time(mail.get("timestamp"), "mail.timestamp")

    return Event(
        key=event_key("ses", message_id, et, recipients_part(recipients), time_part(t)),
        time=t,
        channel=Channel.EMAIL,
        outcome=outcome,
        count=len(recipients),
        hints=_tenant_hints(mail, resources),
        recipient_domains=domains,
    )


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

    source = opt_string(mail, "source", "mail.source")
    source_arn = opt_string(mail, "sourceArn", "mail.sourceArn")
    identity = None
    if source_arn:
        _, sep, name = source_arn.rpartition(":identity/")
        identity = name if sep and name else None
    if identity is None and source:
        identity = bare_address(source) or None

    if from_domain:
        from_domain = from_domain.lower()
    else:
        from_domain = _header_from_domain(mail) or (
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


def _header_from_domain(mail: JsonObject) -> str | None:
    # commonHeaders is optional (only with headers enabled) and only a fallback: lenient.
    headers = mail.get("commonHeaders")
    if isinstance(headers, dict):
        from_ = headers.get("from")
        if isinstance(from_, list) and from_ and isinstance(from_[0], str):
            return domain_of(bare_address(from_[0]))
    return None
