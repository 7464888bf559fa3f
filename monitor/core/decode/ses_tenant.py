"""SES tenant status and reputation-finding events (EventBridge `aws.ses`) → TenantStatusEvent.

| detail-type | kind | time |
| --- | --- | --- |
| Sending Status Disabled | sending_disabled | lastUpdatedTimestamp (1), else `time` |
| Sending Status Enabled | sending_enabled (ENABLED or REINSTATED) | 〃 |
| Advisor Recommendation Status Open | finding_open | `time` |
| Advisor Recommendation Status Resolved | finding_resolved | `time` |

(1) detail.data.record.lastUpdatedTimestamp.

The tenant is named only by its ARN in `resources` (`arn:aws:ses:R:A:tenant/NAME/ID`). Status
events can also concern other reputation entities (configuration sets, IP pools): those carry
no tenant ARN and yield no event. `lastUpdatedTimestamp` is `[Y, M, D, h, m, s, nanos]` in the
AWS example; an ISO string or epoch milliseconds are accepted too.

Key: ("ses-tenant", tenant ARN, kind, origin or finding type/impact, time in ms); the
EventBridge `id` is not used, as for every other record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.core.decode import DecodeError, DecodeResult
from monitor.core.decode._common import (
    BACKSTOP,
    MISSING,
    WRONG,
    Invalid,
    JsonObject,
    iso_time,
    ms_time,
    obj,
    opt_obj,
    opt_string,
    time_part,
)
from monitor.core.events import TenantStatusEvent, TenantStatusKind, event_key

DETAIL_TYPES = {
    "Sending Status Disabled": TenantStatusKind.SENDING_DISABLED,
    "Sending Status Enabled": TenantStatusKind.SENDING_ENABLED,
    "Advisor Recommendation Status Open": TenantStatusKind.FINDING_OPEN,
    "Advisor Recommendation Status Resolved": TenantStatusKind.FINDING_RESOLVED,
}
_STATUS_KINDS = frozenset({TenantStatusKind.SENDING_DISABLED, TenantStatusKind.SENDING_ENABLED})
MAX_DETAIL = 512  # SES's own limit on a status cause
_BACKSTOP_ERROR = DecodeError(WRONG, "ses_tenant")


def decode_tenant_event(ev: JsonObject, kind: TenantStatusKind) -> DecodeResult:
    """An EventBridge event whose detail-type is one of DETAIL_TYPES."""
    try:
        return _decode(ev, kind)
    except Invalid as e:
        return e.error
    except BACKSTOP:
        return _BACKSTOP_ERROR


def _decode(ev: JsonObject, kind: TenantStatusKind) -> DecodeResult:
    arn = _tenant_arn(ev.get("resources"))
    if arn is None:
        return []
    tenant = arn.partition(":tenant/")[2].partition("/")[0]
    detail = obj(ev, "detail", "detail")

    if kind in _STATUS_KINDS:
        data = obj(detail, "data", "detail.data")
        origin = opt_string(data, "origin", "detail.data.origin") or ""
        record = opt_obj(data, "record", "detail.data.record") or {}
        text = opt_string(record, "cause", "detail.data.record.cause") or ""
        updated = record.get("lastUpdatedTimestamp")
        if updated is not None:
            t = _updated_time(updated, "detail.data.record.lastUpdatedTimestamp")
        else:
            t = iso_time(ev.get("time"), "time")
        qualifier = origin
    else:
        data_text = detail.get("data")
        text = data_text if isinstance(data_text, str) else ""
        metadata = opt_obj(detail, "metadata", "detail.metadata") or {}
        finding_type = opt_string(metadata, "type", "detail.metadata.type") or ""
        impact = opt_string(metadata, "impact", "detail.metadata.impact") or ""
        origin = ""
        t = iso_time(ev.get("time"), "time")
        qualifier = f"{finding_type}/{impact}"
        if finding_type:
            text = f"{finding_type} ({impact or 'unknown'} impact): {text}"

    return [
        TenantStatusEvent(
            key=event_key("ses-tenant", arn, kind.value, qualifier, time_part(t)),
            time=t,
            tenant=tenant,
            kind=kind,
            origin=origin,
            detail=text[:MAX_DETAIL],
        )
    ]


def _tenant_arn(resources: object) -> str | None:
    if not isinstance(resources, list):
        raise Invalid(MISSING if resources is None else WRONG, "resources")
    for arn in resources:
        if isinstance(arn, str):
            _, sep, rest = arn.partition(":tenant/")
            if sep and rest.partition("/")[0]:
                return arn
    return None


def _updated_time(value: object, path: str) -> float:
    if isinstance(value, list):
        if not 6 <= len(value) <= 7 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise Invalid(WRONG, path)
        nanos = value[6] if len(value) == 7 else 0
        try:
            y, mo, d, h, mi, s = value[:6]
            return datetime(y, mo, d, h, mi, s, nanos // 1000, tzinfo=UTC).timestamp()
        except (ValueError, OverflowError):
            raise Invalid(WRONG, path) from None
    if isinstance(value, str):
        return iso_time(value, path)
    return ms_time(value, path)
