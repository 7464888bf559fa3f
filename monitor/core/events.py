"""The one normalised event type every decoder produces."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Outcome(StrEnum):
    """What happened to a message; the `outcome` label of `repmon_events_total`."""

    # email
    SEND = "send"
    DELIVERY = "delivery"
    BOUNCE_PERMANENT = "bounce_permanent"
    BOUNCE_TRANSIENT = "bounce_transient"
    BOUNCE_UNDETERMINED = "bounce_undetermined"
    # SES did not even try: the address is on the account or global suppression list.
    BOUNCE_SUPPRESSED = "bounce_suppressed"
    COMPLAINT = "complaint"
    REJECT = "reject"
    DELIVERY_DELAY = "delivery_delay"
    RENDERING_FAILURE = "rendering_failure"
    OPEN = "open"
    CLICK = "click"
    SUBSCRIPTION = "subscription"
    # sms
    SMS_PENDING = "sms_pending"  # a non-final status (queued, sent to carrier, ...)
    SMS_DELIVERED = "sms_delivered"
    SMS_FAILED = "sms_failed"  # final and not delivered: blocked, invalid, unreachable, spam, ...
    # Stopped by the sender's own protect configuration or opt-out list: final, but not the
    # recipients' or carriers' verdict on the tenant, so excluded from `failure_rate`.
    SMS_SENDER_BLOCKED = "sms_sender_blocked"
    SMS_OPT_OUT = "sms_opt_out"


EMAIL_OUTCOMES = frozenset(o for o in Outcome if not o.value.startswith("sms_"))


@dataclass(frozen=True, slots=True)
class TenantHints:
    """Everything in a record that can say which tenant it belongs to (see core.tenants)."""

    ses_tenant: str | None = None  # mail.tags["ses:tenant-name"]
    tenant_tag: str | None = None  # mail.tags["tenant"] / Pinpoint attributes.tenant
    configuration_set: str | None = None  # SES configuration set
    identity: str | None = None  # SES sending identity (from sourceArn) or source address
    from_domain: str | None = None
    pinpoint_app: str | None = None
    sms_configuration_set: str | None = None
    sms_context: tuple[tuple[str, str], ...] = ()  # SMS `context` key/value pairs


NO_HINTS = TenantHints()


class Event(NamedTuple):
    """One source record, normalised.

    `key` is the record's own identity (a digest, so no recipient address is kept): the same
    record arriving twice, or through SNS and EventBridge both, has the same key.
    `count` is the number of recipients the record speaks for.

    A NamedTuple, not a frozen dataclass: just as immutable, but one is made per record and a
    frozen dataclass's `__init__` (an `object.__setattr__` per field) cost ~1.1 µs of the
    hot path's budget where a tuple costs ~0.15 µs (bench/README.md).
    """

    key: bytes
    time: float  # event time, seconds since the epoch
    channel: Channel
    outcome: Outcome
    # Shadows tuple.count on purpose: the field's name is the contract's word for it.
    count: int = 1  # type: ignore[assignment]
    hints: TenantHints = NO_HINTS
    # Recipient domains (never addresses), for the on-call "where do the bounces go" view.
    recipient_domains: tuple[str, ...] = ()


class TenantStatusKind(StrEnum):
    """SES's own word on a tenant (EventBridge `aws.ses` tenant events)."""

    SENDING_DISABLED = "sending_disabled"
    SENDING_ENABLED = "sending_enabled"
    FINDING_OPEN = "finding_open"
    FINDING_RESOLVED = "finding_resolved"


@dataclass(frozen=True, slots=True)
class TenantStatusEvent:
    """SES paused, reinstated, or raised a finding on a tenant."""

    key: bytes
    time: float
    tenant: str
    kind: TenantStatusKind
    origin: str = ""  # AWS_MANAGED / CUSTOMER_MANAGED for status changes
    detail: str = ""  # cause or finding text, for the audit log


KEY_SEPARATOR = "\x1f"
_KEY_DIGEST = hashlib.blake2b(digest_size=16)  # copied per key: cheaper than a new hasher


def event_key(*parts: str) -> bytes:
    """A 16-byte digest of a record's identity parts: BLAKE2b over each part in UTF-8
    followed by 0x1F. The same parts give the same key in every process and version."""
    return key_digest(KEY_SEPARATOR.join(parts) + KEY_SEPARATOR if parts else "")


def key_digest(joined: str) -> bytes:
    """`event_key` of parts already joined, each followed by KEY_SEPARATOR (for hot paths
    that build the string in one f-string)."""
    h = _KEY_DIGEST.copy()
    h.update(joined.encode("utf-8", "surrogatepass"))
    return h.digest()
