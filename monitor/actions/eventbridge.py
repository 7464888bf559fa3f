"""`eventbridge`: tell other systems about warnings, pauses and resumes through PutEvents.

Events have source `reputation-monitor`, a detail-type from `DETAIL_TYPES`, and as detail the
audit entry of the decision (`notification`), which `webhook` sends as well.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from monitor.actions.base import ActionRequest
from monitor.aws import TRANSIENT_CODES, AwsError, classify
from monitor.core.state import Kind

SOURCE = "reputation-monitor"
DETAIL_TYPES = {
    Kind.WARN: "Tenant Warning",
    Kind.WOULD_PAUSE: "Tenant Warning",
    Kind.PAUSE: "Tenant Paused",
    Kind.RESUME: "Tenant Resumed",
}
# The audit entry's fields a notification carries: chosen one by one so that nothing added to
# the entry later (least of all a recipient address) leaks out unreviewed.
FIELDS = ("id", "time", "tenant", "channel", "decision", "actor", "reason", "evidence")


def notification(req: ActionRequest) -> dict[str, Any]:
    """The decision as notifications carry it; `id` (the audit id) lets receivers dedupe."""
    entry = req.entry | {"id": req.audit_id}
    return {k: entry.get(k) for k in FIELDS}


class EventBridgeAction:
    name = "eventbridge"

    def __init__(self, client: Any, bus: str) -> None:
        self.client = client
        self.bus = bus

    async def __call__(self, req: ActionRequest) -> str:
        detail_type = DETAIL_TYPES.get(req.kind)
        if detail_type is None:
            return "nothing to do"
        detail = notification(req)
        entry: dict[str, Any] = {
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, separators=(",", ":"), default=str),
            "EventBusName": self.bus,
        }
        if isinstance(detail["time"], int | float):
            entry["Time"] = datetime.fromtimestamp(detail["time"], UTC)
        try:
            resp = await self.client.put_events(Entries=[entry])
        except Exception as e:
            raise classify(e) from e
        # PutEvents answers 200 even when the entry failed; the failure is in the entry.
        result = (resp.get("Entries") or [{}])[0]
        if resp.get("FailedEntryCount", 0) or "ErrorCode" in result:
            code = str(result.get("ErrorCode") or "FailedEntry")
            raise AwsError(
                code[:64], str(result.get("ErrorMessage") or ""), transient=code in TRANSIENT_CODES
            )
        return f"{detail_type} {result.get('EventId', '?')} on bus {self.bus}"
