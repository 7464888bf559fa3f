"""The rules model: policies, thresholds and tenant assignments (parsed by core.rulesparse)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from monitor.core.events import Channel

ACTIONS = ("ses_tenant", "ses_configuration_set", "eventbridge", "webhook")


class Rate(StrEnum):
    """A rate a policy can act on, as `channel.name` (the API's key)."""

    EMAIL_BOUNCE = "email.bounce"
    EMAIL_COMPLAINT = "email.complaint"
    SMS_FAILURE = "sms.failure"
    SMS_OPT_OUT = "sms.opt_out"

    @property
    def channel(self) -> Channel:
        return _CHANNEL[self]

    @property
    def short(self) -> str:
        """The `rate` metric label: bounce, complaint, failure, opt_out."""
        return _SHORT[self]


# Looked up on every evaluation: computed once, not split per call.
_CHANNEL = {r: Channel(r.value.split(".", 1)[0]) for r in Rate}
_SHORT = {r: r.value.split(".", 1)[1] for r in Rate}


RATES_BY_CHANNEL: Mapping[Channel, tuple[Rate, ...]] = {
    Channel.EMAIL: (Rate.EMAIL_BOUNCE, Rate.EMAIL_COMPLAINT),
    Channel.SMS: (Rate.SMS_FAILURE, Rate.SMS_OPT_OUT),
}


@dataclass(frozen=True, slots=True)
class Threshold:
    warn: float
    pause: float


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    window_s: float = 24 * 3600.0
    min_volume: int = 500
    thresholds: Mapping[Rate, Threshold] = field(default_factory=dict)
    resume_below: float = 0.8
    auto_resume_s: float | None = None  # None: paused until an admin resumes
    actions: tuple[str, ...] = ("ses_tenant",)
    # channel_thresholds' answers, made once: it is asked on every evaluation.
    _by_channel: Mapping[Channel, Mapping[Rate, Threshold]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_channel = {
            c: {r: t for r, t in self.thresholds.items() if _CHANNEL[r] is c} for c in Channel
        }
        object.__setattr__(self, "_by_channel", by_channel)

    @property
    def can_pause(self) -> bool:
        return bool(self.actions)

    def channel_thresholds(self, channel: Channel) -> Mapping[Rate, Threshold]:
        """The channel's rates and their thresholds, in the policy's order (shared: read
        only)."""
        return self._by_channel[channel]


@dataclass(frozen=True, slots=True)
class TenantRule:
    """One entry of `tenants:`; `name` may be a glob (then it carries no mappings)."""

    name: str
    policy: str | None = None
    configuration_sets: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()
    from_domains: tuple[str, ...] = ()
    pinpoint_apps: tuple[str, ...] = ()
    sms_configuration_sets: tuple[str, ...] = ()

    @property
    def is_glob(self) -> bool:
        return any(c in self.name for c in "*?[")


@dataclass(frozen=True)
class Rules:
    default_policy: str
    policies: Mapping[str, Policy]
    tenants: tuple[TenantRule, ...] = ()
    sms_context_tenant_key: str = "tenant"
    # Where each policy and tenant was defined ("FILE:LINE"), for messages and the API.
    origins: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        exact = {t.name: t for t in self.tenants if not t.is_glob}
        globs = tuple(t for t in self.tenants if t.is_glob)
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_globs", globs)
        object.__setattr__(self, "_policy_cache", {})

    def tenant_rule(self, tenant: str) -> TenantRule | None:
        """The exact entry for `tenant`, else the first glob (in file order) that matches."""
        rule: TenantRule | None = self._exact.get(tenant)  # type: ignore[attr-defined]
        if rule is not None:
            return rule
        globs: tuple[TenantRule, ...] = self._globs  # type: ignore[attr-defined]
        for g in globs:
            if fnmatch.fnmatchcase(tenant, g.name):
                return g
        return None

    def policy_for(self, tenant: str) -> Policy:
        cache: dict[str, Policy] = self._policy_cache  # type: ignore[attr-defined]
        policy = cache.get(tenant)
        if policy is None:
            rule = self.tenant_rule(tenant)
            name = rule.policy if rule is not None and rule.policy else self.default_policy
            policy = self.policies[name]
            if len(cache) < 100_000:  # bounded: a flood of tenant names must not grow it forever
                cache[tenant] = policy
        return policy

    @property
    def max_window_s(self) -> float:
        return max((p.window_s for p in self.policies.values()), default=24 * 3600.0)


@dataclass(frozen=True, slots=True)
class RuleIssue:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class RulesError(Exception):
    """One or more problems in a rules directory; str() is one `FILE:LINE: reason` per line."""

    def __init__(self, issues: list[RuleIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))
