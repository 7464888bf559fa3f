"""`ses_tenant`: pause or resume an SES tenant through its reputation entity."""

from __future__ import annotations

from typing import Any

from monitor.actions.base import ActionFailed, ActionRequest
from monitor.aws import classify
from monitor.core.state import Kind
from monitor.ratelimit import TokenBucket

CALLS_PER_S = 5.0
BURST = 5


class SesTenantAction:
    """UpdateReputationEntityCustomerManagedStatus on the tenant's ARN: DISABLED on pause,
    ENABLED on resume. The ARN comes from GetTenant, cached: it never changes for a name."""

    name = "ses_tenant"

    def __init__(self, client: Any, *, bucket: TokenBucket | None = None) -> None:
        self.client = client
        # SES's management APIs have low per-account rate limits; stay under them so a burst
        # of crossings is worked off without throttling errors.
        self.bucket = bucket or TokenBucket(CALLS_PER_S, BURST)
        self._arns: dict[str, str] = {}

    async def arn(self, tenant: str) -> str:
        arn = self._arns.get(tenant)
        if arn is None:
            try:
                await self.bucket.acquire()
                resp = await self.client.get_tenant(TenantName=tenant)
            except Exception as e:
                err = classify(e)
                if err.code == "NotFoundException":
                    raise ActionFailed(
                        f"SES has no tenant named {tenant!r}", transient=False
                    ) from e
                raise err from e
            arn = self._arns[tenant] = resp["Tenant"]["TenantArn"]
        return arn

    async def current(self, arn: str) -> str | None:
        """The customer-managed status SES holds for the tenant's reputation entity."""
        try:
            await self.bucket.acquire()
            resp = await self.client.get_reputation_entity(
                ReputationEntityType="RESOURCE", ReputationEntityReference=arn
            )
        except Exception as e:
            raise classify(e) from e
        status = resp.get("ReputationEntity", {}).get("CustomerManagedStatus", {}).get("Status")
        return str(status) if status else None

    async def __call__(self, req: ActionRequest) -> str:
        if req.kind not in (Kind.PAUSE, Kind.RESUME):
            return "nothing to do"
        arn = await self.arn(req.tenant)
        status = "DISABLED" if req.kind is Kind.PAUSE else "ENABLED"
        if req.rerun and await self.current(arn) == status:
            return f"already {status} {arn}"  # applied before a restart: one call per decision
        try:
            await self.bucket.acquire()
            await self.client.update_reputation_entity_customer_managed_status(
                ReputationEntityType="RESOURCE",
                ReputationEntityReference=arn,
                SendingStatus=status,
            )
        except Exception as e:
            raise classify(e) from e
        return f"{status} {arn}"
