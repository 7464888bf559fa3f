"""AWS End User Messaging SMS (pinpoint-sms-voice-v2) event records → Event.

Raw from an event destination (SNS, Firehose) or as the `detail` of an EventBridge event with
source `aws.sms-voice`. The TEXT_* event types (the event-destination API's list; TEXT_SENT is
listed there but not offered to destinations) and what each means per the AWS docs:

| eventType | AWS meaning | final? | outcome when final |
| --- | --- | --- | --- |
| TEXT_QUEUED | queued, not yet delivered | no | sms_failed (1) |
| TEXT_PENDING | being delivered | no | sms_failed (1) |
| TEXT_SENT | handed off | no | sms_failed (1) |
| TEXT_SUCCESSFUL | accepted by the recipient's carrier (2) | either | sms_delivered |
| TEXT_DELIVERED | delivered to the handset | yes | sms_delivered |
| TEXT_INVALID | invalid destination number | yes | sms_failed |
| TEXT_INVALID_MESSAGE | message body invalid | yes | sms_failed |
| TEXT_UNREACHABLE | handset off or off the network | yes | sms_failed |
| TEXT_CARRIER_UNREACHABLE | transient carrier error | either | sms_failed |
| TEXT_BLOCKED | handset or carrier blocks the number | yes | sms_failed (3) |
| TEXT_CARRIER_BLOCKED | carrier blocked it as malicious/abusive | yes | sms_failed |
| TEXT_SPAM | carrier flagged it as spam | yes | sms_failed |
| TEXT_UNKNOWN | other failure; also no final receipt in 72 h | yes | sms_failed |
| TEXT_TTL_EXPIRED | not delivered within the TTL | yes | sms_failed |
| TEXT_PROTECT_BLOCKED | stopped by the sender's protect configuration | yes | sms_sender_blocked |

(1) never seen final; if marked so, it did not deliver. (2) the last word in countries without
handset receipts: AWS's own example record is final. (3) sms_sender_blocked when messageStatus
or its description says the number is opted out (the sender's own opt-out list).

Rules, in order: an opt-out record → sms_opt_out; `isFinal` false → sms_pending (a non-final
failure such as a carrier hiccup may still deliver); final and delivered → sms_delivered; final
and stopped on the sender's side (protect configuration, or the sender's own opt-out list:
messageStatus OPTED_OUT, or a TEXT_BLOCKED whose description says opted out) → sms_sender_blocked;
any other final → sms_failed. A TEXT_* type not in this table is judged by its
messageStatus. A record without `isFinal` is taken as final unless its type is
queued/pending/sent/successful (successful may still be followed by a delivered receipt, so
guessing "final" could count one message twice).

End User Messaging has no recipient opt-out event type (a STOP reply arrives as an inbound
two-way message); TEXT_OPTED_OUT / TEXT_OPT_OUT are accepted as opt-outs in case a relay or a
future version sends one, so it is never mistaken for a failure. MEDIA_*, VOICE_* and RCS_*
records are outside the contract and yield no event (see envelope).

Key: ("sms", messageId, eventType), plus "interim" for a non-final record: a carrier retry
can report one type twice, first non-final then final, and the final one must not be dropped
as a duplicate. Tenant hints: configurationSetName; the `context` object's
string entries.
"""

from __future__ import annotations

from monitor.core.decode import DecodeError, DecodeResult
from monitor.core.decode._common import (
    BACKSTOP,
    WRONG,
    Invalid,
    JsonObject,
    context_pairs,
    hints,
    ms_time,
    opt_string,
    string,
)
from monitor.core.events import Channel, Event, Outcome, event_key

_KNOWN_TYPES = frozenset(
    {
        "TEXT_QUEUED",
        "TEXT_PENDING",
        "TEXT_SENT",
        "TEXT_SUCCESSFUL",
        "TEXT_DELIVERED",
        "TEXT_INVALID",
        "TEXT_INVALID_MESSAGE",
        "TEXT_UNREACHABLE",
        "TEXT_CARRIER_UNREACHABLE",
        "TEXT_BLOCKED",
        "TEXT_CARRIER_BLOCKED",
        "TEXT_SPAM",
        "TEXT_UNKNOWN",
        "TEXT_TTL_EXPIRED",
        "TEXT_PROTECT_BLOCKED",
    }
)
_DELIVERED_TYPES = frozenset({"TEXT_DELIVERED", "TEXT_SUCCESSFUL"})
_DELIVERED_STATUSES = frozenset({"DELIVERED", "SUCCESSFUL"})
_NOT_FINAL_BY_DEFAULT = frozenset({"TEXT_QUEUED", "TEXT_PENDING", "TEXT_SENT", "TEXT_SUCCESSFUL"})
_OPT_OUT_TYPES = frozenset({"TEXT_OPTED_OUT", "TEXT_OPT_OUT"})
_SENDER_BLOCKED_TYPES = frozenset({"TEXT_PROTECT_BLOCKED"})
# messageStatus values meaning the sender's own configuration stopped the message.
SENDER_BLOCKED_STATUSES = frozenset({"PROTECT_BLOCKED", "OPTED_OUT", "OPT_OUT"})
_BACKSTOP_ERROR = DecodeError(WRONG, "sms")


def decode_sms(rec: JsonObject) -> DecodeResult:
    try:
        return [_decode(rec)]
    except Invalid as e:
        return e.error
    except BACKSTOP:
        return _BACKSTOP_ERROR


def _decode(rec: JsonObject) -> Event:
    event_type = string(rec, "eventType", "eventType")
    message_id = string(rec, "messageId", "messageId")
    t = ms_time(rec.get("eventTimestamp"), "eventTimestamp")
    is_final = rec.get("isFinal")
    if is_final is None:
        is_final = event_type not in _NOT_FINAL_BY_DEFAULT
    elif not isinstance(is_final, bool):
        raise Invalid(WRONG, "isFinal")
    status = opt_string(rec, "messageStatus", "messageStatus")

    if event_type in _OPT_OUT_TYPES:
        outcome = Outcome.SMS_OPT_OUT
    elif not is_final:
        outcome = Outcome.SMS_PENDING
    elif event_type in _DELIVERED_TYPES or (
        # a type AWS adds later: trust its status
        event_type not in _KNOWN_TYPES and status in _DELIVERED_STATUSES
    ):
        outcome = Outcome.SMS_DELIVERED
    elif (
        event_type in _SENDER_BLOCKED_TYPES
        or status in SENDER_BLOCKED_STATUSES
        or (event_type == "TEXT_BLOCKED" and _says_opted_out(rec))
    ):
        outcome = Outcome.SMS_SENDER_BLOCKED
    else:
        outcome = Outcome.SMS_FAILED

    configuration_set = opt_string(rec, "configurationSetName", "configurationSetName")
    context = context_pairs(rec.get("context"), "context")
    return Event(
        # A non-final status can repeat as the final one (a carrier retry): mark it apart so the
        # final record is not taken for its duplicate.
        key=(
            event_key("sms", message_id, event_type)
            if is_final
            else event_key("sms", message_id, event_type, "interim")
        ),
        time=t,
        channel=Channel.SMS,
        outcome=outcome,
        count=1,
        hints=hints(sms_configuration_set=configuration_set, sms_context=context),
    )


def _says_opted_out(rec: JsonObject) -> bool:
    description = rec.get("messageStatusDescription")
    if not isinstance(description, str):
        return False
    d = description.lower()
    return "opted out" in d or "opt-out" in d or "opted-out" in d
