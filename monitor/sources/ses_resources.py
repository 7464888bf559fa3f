"""Learn each SES tenant's configuration sets and identities from SES itself.

SES tags bounce and complaint records with `ses:tenant-name` but, as far as AWS documents,
not sends and deliveries: without this map a tenant's denominator would be lost. The map is
read at start and refreshed on a schedule (ListTenants + ListTenantResources).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor import logs
from monitor.aws import classify

log = logs.get("monitor.ses_resources")

REFRESH_S = 600.0


@dataclass(slots=True)
class TenantResources:
    configuration_sets: dict[str, str] = field(default_factory=dict)  # name → tenant
    identities: dict[str, str] = field(default_factory=dict)  # identity → tenant

    def configuration_sets_of(self, tenant: str) -> list[str]:
        return sorted(cs for cs, t in self.configuration_sets.items() if t == tenant)


def resource_name(arn: str, kind: str) -> str | None:
    """`arn:aws:ses:REGION:ACCOUNT:configuration-set/NAME` → NAME when of `kind`."""
    _, _, resource = arn.rpartition(":")
    prefix, _, name = resource.partition("/")
    return name if prefix == kind and name else None


async def fetch(client: Any) -> TenantResources:
    """Every tenant's configuration sets and identities, paging through both lists."""
    out = TenantResources()
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"PageSize": 100} | ({"NextToken": token} if token else {})
        page = await client.list_tenants(**kwargs)
        for info in page.get("Tenants") or []:
            await _tenant(client, info["TenantName"], out)
        token = page.get("NextToken")
        if not token:
            return out


async def _tenant(client: Any, tenant: str, out: TenantResources) -> None:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"TenantName": tenant, "PageSize": 100}
        if token:
            kwargs["NextToken"] = token
        page = await client.list_tenant_resources(**kwargs)
        for r in page.get("TenantResources") or []:
            arn = r.get("ResourceArn", "")
            if r.get("ResourceType") == "CONFIGURATION_SET":
                name = resource_name(arn, "configuration-set")
                if name:
                    out.configuration_sets[name] = tenant
            elif r.get("ResourceType") == "EMAIL_IDENTITY":
                name = resource_name(arn, "identity")
                if name:
                    out.identities[name.lower()] = tenant
        token = page.get("NextToken")
        if not token:
            return


async def refresh(client: Any) -> TenantResources | None:
    """`fetch`, logging and swallowing AWS errors: a failed refresh keeps the last map."""
    try:
        res = await fetch(client)
    except Exception as e:
        err = classify(e)
        log.warning("ses_resources_refresh_failed", error=err.code, detail=str(err)[:200])
        return None
    log.info(
        "ses_resources_learned",
        configuration_sets=len(res.configuration_sets),
        identities=len(res.identities),
    )
    return res
