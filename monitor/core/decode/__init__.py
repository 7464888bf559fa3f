"""Decoders: an SQS body in any envelope → normalised events, or a typed DecodeError.

A decoder never raises: anything it cannot read becomes a DecodeError whose `reason` is one
of a small fixed set (it is a metric label) and whose `detail` never quotes the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from monitor.core.events import Event, TenantStatusEvent


class DecodeReason(StrEnum):
    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_SHAPE = "unknown_shape"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_ENVELOPE = "bad_envelope"  # SNS/EventBridge envelope whose payload is unreadable


@dataclass(frozen=True, slots=True)
class DecodeError:
    reason: DecodeReason
    detail: str  # e.g. "mail.messageId"; never content from the body


AnyEvent = Event | TenantStatusEvent
DecodeResult = list[AnyEvent] | DecodeError
