"""Which tenant an event belongs to, in the contract's order of precedence."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.core.events import TenantHints
from monitor.core.rules import Rules

UNASSIGNED = "unassigned"
MAX_TENANT_LEN = 128  # a tag value longer than this is not a tenant name we can export
MAX_CACHED = 4096


def _valid(name: str | None) -> bool:
    return bool(name) and len(name) <= MAX_TENANT_LEN  # type: ignore[arg-type]


class TenantResolver:
    """Maps an event's hints to a tenant name.

    Order: SES tenant name; `tenant` tag; configuration set or identity (rules, then what SES
    told us through ListTenantResources); from-domain; Pinpoint application; SMS configuration
    set; the SMS context key; else `unassigned`. The maps are fixed once built (the engine
    builds a new resolver when it learns from SES), which is what makes `resolve` cacheable.
    """

    def __init__(
        self,
        rules: Rules,
        *,
        learned_configuration_sets: Mapping[str, str] | None = None,
        learned_identities: Mapping[str, str] | None = None,
    ) -> None:
        self.context_key = rules.sms_context_tenant_key
        self.configuration_sets: dict[str, str] = dict(learned_configuration_sets or {})
        self.identities: dict[str, str] = {
            k.lower(): v for k, v in (learned_identities or {}).items()
        }
        self.from_domains: dict[str, str] = {}
        self.pinpoint_apps: dict[str, str] = {}
        self.sms_configuration_sets: dict[str, str] = {}
        # Rules win over what SES reports: they are the operator's explicit word.
        for t in rules.tenants:
            self.configuration_sets.update(dict.fromkeys(t.configuration_sets, t.name))
            self.identities.update(dict.fromkeys((i.lower() for i in t.identities), t.name))
            self.from_domains.update(dict.fromkeys((d.lower() for d in t.from_domains), t.name))
            self.pinpoint_apps.update(dict.fromkeys(t.pinpoint_apps, t.name))
            self.sms_configuration_sets.update(dict.fromkeys(t.sms_configuration_sets, t.name))
        # Why a cache: decoders share one TenantHints per distinct value (decode._common.hints),
        # so a stream repeats the same few objects; keyed by identity, a hit costs one dict
        # lookup instead of the precedence walk and its hashing of every field. The entry holds
        # the object itself, so an id is never reused while cached. Bounded, cleared when full.
        self._cache: dict[int, tuple[TenantHints, str]] = {}

    def resolve(self, h: TenantHints) -> str:
        hit = self._cache.get(id(h))
        if hit is not None and hit[0] is h:
            return hit[1]
        tenant = self._resolve(h)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[id(h)] = (h, tenant)
        return tenant

    def _resolve(self, h: TenantHints) -> str:
        if _valid(h.ses_tenant):
            return h.ses_tenant  # type: ignore[return-value]
        if _valid(h.tenant_tag):
            return h.tenant_tag  # type: ignore[return-value]
        tenant = (
            (h.configuration_set and self.configuration_sets.get(h.configuration_set))
            or (h.identity and self.identities.get(h.identity.lower()))
            or (h.from_domain and self.from_domains.get(h.from_domain.lower()))
            or (h.pinpoint_app and self.pinpoint_apps.get(h.pinpoint_app))
            or (
                h.sms_configuration_set and self.sms_configuration_sets.get(h.sms_configuration_set)
            )
        )
        if tenant:
            return tenant
        for key, value in h.sms_context:
            if key == self.context_key and _valid(value):
                return value
        return UNASSIGNED
