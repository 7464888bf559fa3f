"""The single entry point: an SQS body in any envelope → events, or a DecodeError.

Order: size, UTF-8, JSON, object; then envelopes, then the record's format by shape.

Envelopes (nested at most MAX_DEPTH deep, e.g. EventBridge → SNS → SQS):
- SNS (`Type`): Notification → its `Message`, a JSON string (unreadable: BAD_ENVELOPE);
  SubscriptionConfirmation / UnsubscribeConfirmation → no events.
- EventBridge (`detail-type`, `source`, `detail`): `aws.ses` tenant and reputation detail-types
  → ses_tenant; any other → its `detail` as a record (SES email events also lend their
  `resources` for the configuration set).
- anything else is a raw record.

Records by shape: `eventType` TEXT_* → sms; MEDIA_*/VOICE_*/RCS_* (MMS, voice, RCS: outside
the contract) → no events; other `eventType` → SES event publishing; `notificationType` → SES
legacy notification; `event_type` with Pinpoint's envelope fields → pinpoint; else
UNKNOWN_SHAPE. An envelope whose record is undecodable returns the record's error.

`decode_body` tries the typed path (decode.typed) first, after the size check: it answers
only where its answer is the one the rest of this module gives (`decode_body_general`).
"""

from __future__ import annotations

from typing import Any

import orjson

from monitor.core.decode import DecodeError, DecodeReason, DecodeResult
from monitor.core.decode._json import is_utf8_error, loads, parse
from monitor.core.decode.pinpoint import decode_pinpoint, is_pinpoint
from monitor.core.decode.ses import (
    SES_EVENT_TYPES,
    decode_event,
    decode_known_event,
    decode_notification,
)
from monitor.core.decode.ses_tenant import DETAIL_TYPES, decode_tenant_event
from monitor.core.decode.sms import decode_sms
from monitor.core.decode.typed import decode_sns

MAX_BYTES = 262_144  # the SQS message size limit
MAX_DEPTH = 3
_IGNORED_EVENT_PREFIXES = ("MEDIA_", "VOICE_", "RCS_")
_SNS_CONFIRMATIONS = frozenset({"SubscriptionConfirmation", "UnsubscribeConfirmation"})

_TOO_LARGE = DecodeError(DecodeReason.TOO_LARGE, "body")
_INVALID_UTF8 = DecodeError(DecodeReason.INVALID_UTF8, "body")
_INVALID_JSON = DecodeError(DecodeReason.INVALID_JSON, "body")
_NOT_AN_OBJECT = DecodeError(DecodeReason.NOT_AN_OBJECT, "body")
_UNKNOWN = DecodeError(DecodeReason.UNKNOWN_SHAPE, "body")
_BAD_SNS_MESSAGE = DecodeError(DecodeReason.BAD_ENVELOPE, "Message")
_BAD_DETAIL = DecodeError(DecodeReason.BAD_ENVELOPE, "detail")
_TOO_DEEP = DecodeError(DecodeReason.BAD_ENVELOPE, "nesting")


def decode_body(body: bytes | str, *, max_bytes: int = MAX_BYTES) -> DecodeResult:
    """Decode one SQS message body. Never raises."""
    n = len(body)
    if n > max_bytes or (
        # a str is measured in UTF-8 only when its length leaves the answer open
        isinstance(body, str) and n * 4 > max_bytes and _utf8_len(body) > max_bytes
    ):
        return _TOO_LARGE
    # Most bodies are SNS-wrapped SES records: decode.typed reads them, or at least their
    # envelope (then the record goes the general way); anything else is left to _parsed.
    typed = decode_sns(body)
    if isinstance(typed, str):
        return _sns_message(typed)
    if typed is not None:
        return [typed]
    return _parsed(body)


def decode_body_general(body: bytes | str, *, max_bytes: int = MAX_BYTES) -> DecodeResult:
    """decode_body without the typed fast path: the reference it is tested against."""
    n = len(body)
    if n > max_bytes or (
        isinstance(body, str) and n * 4 > max_bytes and _utf8_len(body) > max_bytes
    ):
        return _TOO_LARGE
    return _parsed(body)


def _parsed(body: bytes | str) -> DecodeResult:
    try:
        value = parse(body)
    except orjson.JSONDecodeError as e:  # what `loads` turns into InvalidUTF8 or ValueError
        return _INVALID_UTF8 if is_utf8_error(e) else _INVALID_JSON
    if not isinstance(value, dict):
        return _NOT_AN_OBJECT
    if value.get("Type") == "Notification":
        return _sns_notification(value)
    return decode_object(value)


def _sns_notification(value: dict[str, Any]) -> DecodeResult:
    """decode_object for an SNS Notification at the top level, with a fast path.

    Why: SNS-wrapped SES event publishing is most of the traffic, and the general route to its
    decoder takes four calls (decode_object, _sns, decode_object, _record) that each re-check
    what this one checks once. Any other shape is left to that general route.
    """
    message = value.get("Message")
    if type(message) is not str:
        return decode_object(value)
    return _sns_message(message)


def _sns_message(message: str) -> DecodeResult:
    """The record in a top-level SNS Notification's Message."""
    try:
        inner = parse(message)
    except orjson.JSONDecodeError:
        return _BAD_SNS_MESSAGE
    if (
        type(inner) is dict
        and inner.get("Type") is None  # not SNS again
        and not ("detail-type" in inner and "detail" in inner)  # not EventBridge
        and type(event_type := inner.get("eventType")) is str
        and event_type in SES_EVENT_TYPES
    ):
        return decode_known_event(inner, event_type)
    if not isinstance(inner, dict):
        return _BAD_SNS_MESSAGE
    return decode_object(inner, _depth=1)


def decode_object(value: dict[str, Any], *, _depth: int = 0) -> DecodeResult:
    """Decode an already-parsed JSON object (for archives read line by line). Never raises."""
    sns_type = value.get("Type")
    if sns_type is not None and ("TopicArn" in value or "Message" in value):
        return _sns(value, sns_type, _depth)
    if "detail-type" in value and "detail" in value:
        return _eventbridge(value, _depth)
    return _record(value, None)


def _sns(value: dict[str, Any], sns_type: object, depth: int) -> DecodeResult:
    if sns_type == "Notification":
        if depth >= MAX_DEPTH:
            return _TOO_DEEP
        message = value.get("Message")
        if not isinstance(message, str):
            return _BAD_SNS_MESSAGE
        try:
            inner = loads(message)
        except ValueError:
            return _BAD_SNS_MESSAGE
        if not isinstance(inner, dict):
            return _BAD_SNS_MESSAGE
        return decode_object(inner, _depth=depth + 1)
    if isinstance(sns_type, str) and sns_type in _SNS_CONFIRMATIONS:
        return []  # subscribing the queue to a topic: housekeeping, not an error
    return DecodeError(DecodeReason.UNKNOWN_SHAPE, "Type")


def _eventbridge(value: dict[str, Any], depth: int) -> DecodeResult:
    if depth >= MAX_DEPTH:
        return _TOO_DEEP
    detail_type = value.get("detail-type")
    if value.get("source") == "aws.ses" and isinstance(detail_type, str):
        kind = DETAIL_TYPES.get(detail_type)
        if kind is not None:
            return decode_tenant_event(value, kind)
    detail = value.get("detail")
    if not isinstance(detail, dict):
        return _BAD_DETAIL
    # A relay may put a wrapped body on a bus: the detail can itself be an envelope.
    if "Type" in detail or "detail-type" in detail:
        return decode_object(detail, _depth=depth + 1)
    return _record(detail, value.get("resources"))


def _record(rec: dict[str, Any], resources: object) -> DecodeResult:
    event_type = rec.get("eventType")
    if event_type is not None:
        if isinstance(event_type, str):
            if event_type.startswith("TEXT_"):
                return decode_sms(rec)
            if event_type.startswith(_IGNORED_EVENT_PREFIXES):
                return []
        return decode_event(rec, resources)
    if "notificationType" in rec:
        return decode_notification(rec)
    if is_pinpoint(rec):
        return decode_pinpoint(rec)
    return _UNKNOWN


def _utf8_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogatepass"))
