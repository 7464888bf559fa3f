"""`ses_configuration_set`: pause or resume a tenant's SES configuration sets.

For providers that isolate clients by configuration set rather than (or as well as) SES
tenants: PutConfigurationSetSendingOptions with SendingEnabled false on pause, true on resume,
for every set of the tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.actions.base import ActionFailed, ActionRequest
from monitor.aws import classify
from monitor.core.rules import Rules
from monitor.core.state import Kind
from monitor.ratelimit import TokenBucket

# SES allows about one PutConfigurationSetSendingOptions a second per account; pausing a
# tenant with many sets must not throttle itself (or the resume that follows).
CALLS_PER_S = 1.0


def rules_configuration_sets(rules: Rules) -> Callable[[str], list[str]]:
    """The configuration sets mapped to a tenant in rules (glob entries carry none)."""

    def sets(tenant: str) -> list[str]:
        rule = rules.tenant_rule(tenant)
        return list(rule.configuration_sets) if rule is not None else []

    return sets


class SesConfigurationSetAction:
    name = "ses_configuration_set"

    def __init__(
        self,
        client: Any,
        configuration_sets: Callable[[str], list[str]],
        *,
        bucket: TokenBucket | None = None,
    ) -> None:
        self.client = client
        self.configuration_sets = configuration_sets
        self.bucket = bucket or TokenBucket(CALLS_PER_S, 1)

    async def _sending_enabled(self, name: str) -> bool | None:
        resp = await self.client.get_configuration_set(ConfigurationSetName=name)
        value = resp.get("SendingOptions", {}).get("SendingEnabled")
        return bool(value) if value is not None else None

    async def __call__(self, req: ActionRequest) -> str:
        if req.kind not in (Kind.PAUSE, Kind.RESUME):
            return "nothing to do"
        names = sorted(set(self.configuration_sets(req.tenant)))
        if not names:
            raise ActionFailed(
                f"no configuration sets known for tenant {req.tenant!r}", transient=False
            )
        enabled = req.kind is Kind.RESUME
        done: list[str] = []
        failed: list[str] = []
        for name in names:
            try:
                if req.rerun:
                    await self.bucket.acquire()
                    if await self._sending_enabled(name) is enabled:
                        done.append(name)  # applied before a restart: one call per decision
                        continue
                await self.bucket.acquire()
                await self.client.put_configuration_set_sending_options(
                    ConfigurationSetName=name, SendingEnabled=enabled
                )
            except Exception as e:
                err = classify(e)
                if err.transient:
                    # Retried whole by the actuator: the sets already done are idempotent.
                    raise err from e
                # A deleted or foreign set must not keep the tenant's other sets sending.
                failed.append(f"{name}: {err}")
                continue
            done.append(name)
        verb = "enabled" if enabled else "disabled"
        if failed:
            raise ActionFailed(
                f"sending {verb} for {', '.join(done) or 'no set'}; failed {'; '.join(failed)}",
                transient=False,
            )
        return f"sending {verb} for configuration sets {', '.join(done)}"
