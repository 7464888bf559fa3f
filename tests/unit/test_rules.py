"""Rules parsing and validation: the shipped presets, every error as FILE:LINE, loading a dir."""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.rules import Policy, Rate, RuleIssue, Rules, RulesError, Threshold
from monitor.core.rulesparse import parse_duration, parse_rules
from monitor.rulesfile import embedded_presets_text, load_rules_dir

REPO = Path(__file__).resolve().parents[2]
PRESETS = (REPO / "rules" / "presets.yaml").read_text(encoding="utf-8")
P = "rules/presets.yaml"
# Where the presets define `strict`, so the expectations follow edits to the file.
STRICT_LINE = PRESETS.splitlines().index("  strict:") + 1
F = "rules/t.yaml"


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _parse(text: str, *more: tuple[str, str]) -> Rules:
    return parse_rules([(P, PRESETS), (F, _yaml(text)), *more])


def _errors(text: str, *more: tuple[str, str]) -> list[str]:
    with pytest.raises(RulesError) as info:
        _parse(text, *more)
    assert str(info.value) == "\n".join(str(i) for i in info.value.issues)
    return [str(i) for i in info.value.issues]


# -- the shipped presets -----------------------------------------------------------------------


def _thresholds(
    bounce: tuple[float, float],
    complaint: tuple[float, float],
    failure: tuple[float, float],
    opt_out: tuple[float, float],
) -> dict[Rate, Threshold]:
    return {
        Rate.EMAIL_BOUNCE: Threshold(*bounce),
        Rate.EMAIL_COMPLAINT: Threshold(*complaint),
        Rate.SMS_FAILURE: Threshold(*failure),
        Rate.SMS_OPT_OUT: Threshold(*opt_out),
    }


STANDARD = _thresholds((0.025, 0.05), (0.0005, 0.001), (0.10, 0.20), (0.01, 0.02))
STRICT = _thresholds((0.0125, 0.025), (0.00025, 0.0005), (0.05, 0.10), (0.005, 0.01))


def test_presets_have_exactly_the_contract_numbers() -> None:
    rules = parse_rules([(P, PRESETS)])
    assert rules.default_policy == "standard"
    assert rules.sms_context_tenant_key == "tenant"
    assert rules.tenants == ()
    assert list(rules.policies) == ["standard", "strict", "monitor"]
    day = 24 * 3600.0
    assert rules.policies["standard"] == Policy(
        name="standard",
        window_s=day,
        min_volume=500,
        thresholds=STANDARD,
        resume_below=0.8,
        auto_resume_s=None,
        actions=("ses_tenant",),
    )
    assert rules.policies["strict"] == Policy(
        name="strict",
        window_s=day,
        min_volume=200,
        thresholds=STRICT,
        resume_below=0.8,
        auto_resume_s=None,
        actions=("ses_tenant",),
    )
    assert rules.policies["monitor"] == Policy(
        name="monitor",
        window_s=day,
        min_volume=500,
        thresholds=STANDARD,
        resume_below=0.8,
        auto_resume_s=None,
        actions=(),
    )
    assert not rules.policies["monitor"].can_pause
    # strict pauses at half the standard levels and warns at half of its own pause levels
    for rate, t in STRICT.items():
        assert t.pause == pytest.approx(STANDARD[rate].pause / 2)
        assert t.warn == pytest.approx(t.pause / 2)


def test_presets_origins_point_at_the_policy_lines() -> None:
    rules = parse_rules([(P, PRESETS)])
    lines = PRESETS.splitlines()
    for name in ("standard", "strict", "monitor"):
        file, line = rules.origins[f"policy:{name}"].rsplit(":", 1)
        assert file == P
        assert lines[int(line) - 1].strip() == f"{name}:"


def test_embedded_presets_is_the_shipped_file() -> None:
    assert embedded_presets_text() == PRESETS


def test_example_tenants_file_is_valid() -> None:
    example = (REPO / "rules" / "example-tenants.yaml.example").read_text(encoding="utf-8")
    rules = parse_rules([(P, PRESETS), ("rules/tenants.yaml", example)])
    bigco = rules.tenant_rule("bigco")
    assert bigco is not None
    assert bigco.configuration_sets == ("bigco-marketing", "bigco-tx")
    assert bigco.pinpoint_apps == ("4c1d2f0a9b8e4f6d8a7b6c5d4e3f2a1b",)
    assert rules.policy_for("trial-42").name == "strict"
    # `<<: *relaxed` merged, with the explicit `actions: []` winning
    dry, relaxed = rules.policies["relaxed-dry"], rules.policies["relaxed"]
    assert dry.actions == () and relaxed.actions == ("ses_tenant", "eventbridge", "webhook")
    assert dry.window_s == relaxed.window_s == 6 * 3600.0
    assert dry.auto_resume_s == 6 * 3600.0


# -- valid input -------------------------------------------------------------------------------


def test_a_full_policy_and_tenant() -> None:
    rules = _parse(
        """
        policies:
          custom:
            window: 90m
            min_volume: 0
            email:
              bounce: {warn: 0, pause: 1}
            resume_below: 1
            auto_resume: 2d
            actions: [webhook, eventbridge]
        tenants:
          bigco:
            policy: custom
            configuration_sets: [bigco-tx, 2024]
            identities: [bigco.example, Billing@bigco.example, bigco.example]
            from_domains: [bigco.example]
            pinpoint_apps: [4c1d2f0a9b8e4f6d8a7b6c5d4e3f2a1b]
            sms_configuration_sets: [bigco-sms]
        """
    )
    assert rules.policies["custom"] == Policy(
        name="custom",
        window_s=5400.0,
        min_volume=0,
        thresholds={Rate.EMAIL_BOUNCE: Threshold(0.0, 1.0)},
        resume_below=1.0,
        auto_resume_s=2 * 86400.0,
        actions=("webhook", "eventbridge"),
    )
    rule = rules.tenant_rule("bigco")
    assert rule is not None
    assert rule.policy == "custom"
    assert rule.configuration_sets == ("bigco-tx", "2024")  # the text typed, not the int
    assert rule.identities == ("bigco.example", "Billing@bigco.example")  # repeat dropped
    assert rules.origins["tenant:bigco"] == f"{F}:11"
    assert rules.origins["policy:custom"] == f"{F}:2"


def test_omitted_keys_take_the_policy_defaults() -> None:
    rules = _parse("policies:\n  bare: {}\n")
    assert rules.policies["bare"] == Policy(name="bare")
    assert rules.policies["bare"].thresholds == {}  # no rate evaluated


def test_yaml_12_exponent_floats_are_numbers() -> None:
    rules = _parse("policies:\n  p: {email: {complaint: {warn: 5e-4, pause: 1E-3}}}\n")
    assert rules.policies["p"].thresholds[Rate.EMAIL_COMPLAINT] == Threshold(0.0005, 0.001)


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "tenants:\n"])
def test_empty_files_and_sections_are_fine(text: str) -> None:
    assert _parse(text).tenants == ()


def test_default_policy_is_standard_unless_set() -> None:
    assert parse_rules([("a.yaml", "policies: {standard: {}, other: {}}\n")]).default_policy == (
        "standard"
    )
    rules = parse_rules([("a.yaml", "default_policy: other\npolicies: {other: {}}\n")])
    assert rules.default_policy == "other"
    # the same value in two files is not a conflict
    assert _parse("default_policy: standard\n").default_policy == "standard"


def test_sms_context_tenant_key() -> None:
    assert parse_rules([(P, PRESETS)]).sms_context_tenant_key == "tenant"
    assert parse_rules([("a.yaml", "policies: {standard: {}}\n")]).sms_context_tenant_key == (
        "tenant"
    )
    rules = parse_rules([("a.yaml", "policies: {standard: {}}\nsms_context_tenant_key: org\n")])
    assert rules.sms_context_tenant_key == "org"


def test_policy_for_exact_then_globs_in_order_then_default() -> None:
    rules = _parse(
        """
        tenants:
          "trial-big-*": {policy: monitor}
          "trial-*": {policy: strict}
          trial-big-special: {policy: standard}
          plain: {}
          "?x": {policy: strict}
        """
    )
    assert rules.policy_for("trial-big-1").name == "monitor"  # first glob that matches
    assert rules.policy_for("trial-1").name == "strict"
    assert rules.policy_for("trial-big-special").name == "standard"  # exact beats globs
    assert rules.policy_for("plain").name == "standard"  # entry without policy: default
    assert rules.policy_for("ax").name == "strict"
    assert rules.policy_for("nobody").name == "standard"
    other_default = parse_rules(
        [("a.yaml", "default_policy: quiet\npolicies: {quiet: {actions: []}}\n")]
    )
    assert other_default.policy_for("nobody").name == "quiet"
    assert rules.tenant_rule("nobody") is None


def test_globs_across_files_keep_file_order() -> None:
    rules = _parse(
        'tenants:\n  "t-*": {policy: strict}\n',
        ("rules/u.yaml", 'tenants:\n  "t-a*": {policy: monitor}\n'),
    )
    assert rules.policy_for("t-abc").name == "strict"


# -- every error, as FILE:LINE: reason ---------------------------------------------------------

ALLOWED_POLICY = "window, min_volume, email, sms, resume_below, auto_resume, actions"
ALLOWED_TENANT = (
    "policy, configuration_sets, identities, from_domains, pinpoint_apps, sms_configuration_sets"
)
ALLOWED_ACTIONS = "ses_tenant, ses_configuration_set, eventbridge, webhook"
FRACTION = "(a fraction: 0.05 means 5 %)"
DURATION = "(a number and one unit s, m, h or d, e.g. 90m or 24h)"

ERROR_CASES: list[tuple[str, str, list[str]]] = [
    (
        "unknown top-level key",
        """
        tenants: {}
        polices: {}
        """,
        [
            f"{F}:2: unknown key 'polices' at the top level (did you mean 'policies'?); "
            "allowed: default_policy, policies, sms_context_tenant_key, tenants"
        ],
    ),
    (
        "unknown policy key",
        """
        policies:
          p:
            window: 1h
            pause_at: 0.1
        """,
        [f"{F}:4: unknown key 'pause_at' in policies.p; allowed: {ALLOWED_POLICY}"],
    ),
    (
        "unknown rate",
        """
        policies:
          p:
            email:
              bounce: {warn: 0.1, pause: 0.2}
              spam: {warn: 0.1, pause: 0.2}
        """,
        [f"{F}:5: unknown key 'spam' in policies.p.email; allowed: bounce, complaint"],
    ),
    (
        "unknown threshold level",
        """
        policies:
          p:
            sms:
              failure:
                warn: 0.1
                pause: 0.2
                critical: 0.3
        """,
        [f"{F}:7: unknown key 'critical' in policies.p.sms.failure; allowed: warn, pause"],
    ),
    (
        "unknown tenant key",
        """
        tenants:
          acme:
            polcy: strict
        """,
        [
            f"{F}:3: unknown key 'polcy' in tenants.acme (did you mean 'policy'?); "
            f"allowed: {ALLOWED_TENANT}"
        ],
    ),
    (
        "threshold above 1",
        """
        policies:
          p:
            email:
              bounce:
                warn: 0.025
                pause: 5
        """,
        [
            f"{F}:6: policies.p.email.bounce.pause must be from 0 to 1 {FRACTION}, got 5; "
            "for 5 % write 0.05"
        ],
    ),
    (
        "threshold below 0",
        "policies:\n  p: {sms: {opt_out: {warn: -0.1, pause: 0.2}}}\n",
        [f"{F}:2: policies.p.sms.opt_out.warn must be from 0 to 1 {FRACTION}, got -0.1"],
    ),
    (
        "threshold as a percent string",
        "policies:\n  p: {email: {bounce: {warn: 2.5%, pause: 0.05}}}\n",
        [
            f"{F}:2: policies.p.email.bounce.warn must be a number from 0 to 1 {FRACTION}, "
            "got '2.5%'; for 2.5% write 0.025"
        ],
    ),
    (
        "threshold quoted",
        'policies:\n  p: {email: {bounce: {warn: "0.1", pause: 0.2}}}\n',
        [f"{F}:2: policies.p.email.bounce.warn must be a number from 0 to 1 {FRACTION}, got '0.1'"],
    ),
    (
        "threshold is a boolean",
        "policies:\n  p: {email: {bounce: {warn: 0.1, pause: true}}}\n",
        [
            f"{F}:2: policies.p.email.bounce.pause must be a number from 0 to 1 {FRACTION}, "
            "got true (a boolean)"
        ],
    ),
    (
        "threshold not finite",
        "policies:\n  p: {email: {bounce: {warn: .nan, pause: 0.2}}}\n",
        [f"{F}:2: policies.p.email.bounce.warn must be from 0 to 1 {FRACTION}, got .nan"],
    ),
    (
        "warn above pause",
        """
        policies:
          p:
            email:
              complaint:
                pause: 0.001
                warn: 0.002
        """,
        [
            f"{F}:6: policies.p.email.complaint: warn 0.002 is above pause 0.001; "
            "warn must be at most pause"
        ],
    ),
    (
        "threshold missing pause",
        """
        policies:
          p:
            sms:
              failure: {warn: 0.1}
        """,
        [f"{F}:4: policies.p.sms.failure needs both warn and pause; missing pause"],
    ),
    (
        "threshold missing both",
        """
        policies:
          p:
            sms:
              opt_out: {}
        """,
        [f"{F}:4: policies.p.sms.opt_out needs both warn and pause; missing warn and pause"],
    ),
    (
        "threshold not a mapping",
        "policies:\n  p:\n    email:\n      bounce: 0.05\n",
        [
            f"{F}:4: policies.p.email.bounce must be {{warn: N, pause: N}} with N from 0 to 1 "
            f"{FRACTION}, got 0.05"
        ],
    ),
    (
        "channel not a mapping",
        "policies:\n  p:\n    sms: [failure]\n",
        [
            f"{F}:3: policies.p.sms must be a mapping of failure and/or opt_out to "
            "{warn: N, pause: N}, got a list"
        ],
    ),
    (
        "min_volume is a boolean",
        "policies:\n  p:\n    min_volume: true\n",
        [f"{F}:3: policies.p.min_volume must be a whole number ≥ 0, got true (a boolean)"],
    ),
    (
        "min_volume negative",
        "policies:\n  p:\n    min_volume: -1\n",
        [f"{F}:3: policies.p.min_volume must be a whole number ≥ 0, got -1"],
    ),
    (
        "min_volume float",
        "policies:\n  p:\n    min_volume: 500.5\n",
        [f"{F}:3: policies.p.min_volume must be a whole number ≥ 0, got 500.5"],
    ),
    (
        "resume_below zero",
        "policies:\n  p:\n    resume_below: 0\n",
        [f"{F}:3: policies.p.resume_below must be above 0 and at most 1 {FRACTION}, got 0"],
    ),
    (
        "resume_below above 1",
        "policies:\n  p:\n    resume_below: 1.5\n",
        [
            f"{F}:3: policies.p.resume_below must be above 0 and at most 1 {FRACTION}, got 1.5; "
            "for 1.5 % write 0.015"
        ],
    ),
    (
        "window without unit",
        "policies:\n  p:\n    window: 3600\n",
        [f"{F}:3: policies.p.window must be a duration {DURATION}, got 3600"],
    ),
    (
        "window with two units",
        "policies:\n  p:\n    window: 1h30m\n",
        [f"{F}:3: policies.p.window: not a duration {DURATION}, got '1h30m'"],
    ),
    (
        "window with unknown unit",
        "policies:\n  p:\n    window: 2w\n",
        [f"{F}:3: policies.p.window: not a duration {DURATION}, got '2w'"],
    ),
    (
        "window zero",
        "policies:\n  p:\n    window: 0h\n",
        [f"{F}:3: policies.p.window: duration must be longer than 0, got '0h'"],
    ),
    (
        "auto_resume true",
        "policies:\n  p:\n    auto_resume: true\n",
        [
            f"{F}:3: policies.p.auto_resume must be false (stay paused until an admin resumes) "
            f"or a duration {DURATION}, got true (a boolean)"
        ],
    ),
    (
        "auto_resume bad duration",
        "policies:\n  p:\n    auto_resume: soon\n",
        [f"{F}:3: policies.p.auto_resume: not a duration {DURATION}, got 'soon'"],
    ),
    (
        "unknown action",
        """
        policies:
          p:
            actions:
              - ses_tenant
              - ses_tennant
        """,
        [
            f"{F}:5: unknown action 'ses_tennant' in policies.p.actions (did you mean "
            f"'ses_tenant'?); allowed: {ALLOWED_ACTIONS}"
        ],
    ),
    (
        "duplicate action",
        "policies:\n  p:\n    actions: [webhook, webhook]\n",
        [f"{F}:3: action 'webhook' is listed twice in policies.p.actions"],
    ),
    (
        "actions not a list",
        "policies:\n  p:\n    actions: ses_tenant\n",
        [
            f"{F}:3: policies.p.actions must be a list of actions from {ALLOWED_ACTIONS} "
            "(e.g. [ses_tenant]; [] never pauses), got 'ses_tenant'"
        ],
    ),
    (
        "actions empty value",
        "policies:\n  p:\n    actions:\n",
        [
            f"{F}:3: policies.p.actions must be a list of actions from {ALLOWED_ACTIONS} "
            "(e.g. [ses_tenant]; [] never pauses), got nothing (null)"
        ],
    ),
    (
        "empty policy name",
        'policies:\n  "": {}\n',
        [f"{F}:2: empty policy name under policies"],
    ),
    (
        "null policy name",
        "policies:\n  ~: {}\n",
        [f"{F}:2: empty policy name under policies"],
    ),
    (
        "policy not a mapping",
        "policies:\n  p: strict\n",
        [
            f"{F}:2: policies.p must be a mapping of policy settings ({ALLOWED_POLICY}), "
            "got 'strict'"
        ],
    ),
    (
        "policies not a mapping",
        "policies:\n  - p\n",
        [f"{F}:2: policies must be a mapping of policy name to its settings, got a list"],
    ),
    (
        "policy defined twice in one file",
        """
        policies:
          p: {}
          q: {}
          p: {}
        """,
        [f"{F}:4: policy 'p' already defined at {F}:2"],
    ),
    (
        "shipped policy redefined",
        "policies:\n  strict: {}\n",
        [f"{F}:2: policy 'strict' already defined at {P}:{STRICT_LINE}"],
    ),
    (
        "duplicate key in a policy",
        """
        policies:
          p:
            window: 1h
            min_volume: 10
            window: 2h
        """,
        [
            f"{F}:5: duplicate key 'window' in policies.p (first at line 3); "
            "YAML would silently keep only the last one"
        ],
    ),
    (
        "duplicate top-level key",
        "tenants: {}\ntenants: {}\n",
        [
            f"{F}:2: duplicate key 'tenants' at the top level (first at line 1); "
            "YAML would silently keep only the last one"
        ],
    ),
    (
        "duplicate key in a threshold",
        "policies:\n  p: {email: {bounce: {warn: 0.1, pause: 0.2, warn: 0.3}}}\n",
        [
            f"{F}:2: duplicate key 'warn' in policies.p.email.bounce (first at line 2); "
            "YAML would silently keep only the last one"
        ],
    ),
    (
        "default_policy naming no policy",
        "default_policy: standrd\n",
        [
            f"{F}:1: default_policy: unknown policy 'standrd' (did you mean 'standard'?); "
            "defined policies: monitor, standard, strict"
        ],
    ),
    (
        "tenant with unknown policy",
        """
        tenants:
          acme:
            policy: strcit
        """,
        [
            f"{F}:3: tenants.acme.policy: unknown policy 'strcit' (did you mean 'strict'?); "
            "defined policies: monitor, standard, strict"
        ],
    ),
    (
        "tenant policy empty",
        "tenants:\n  acme: {policy: }\n",
        [f"{F}:2: tenants.acme.policy must be a non-empty name, got nothing (null)"],
    ),
    (
        "tenant not a mapping",
        "tenants:\n  acme: strict\n",
        [
            f"{F}:2: tenants.acme must be a mapping with some of the keys {ALLOWED_TENANT} "
            "(e.g. {policy: strict}, or {} for the default policy), got 'strict'"
        ],
    ),
    (
        "tenant with no value",
        "tenants:\n  acme:\n",
        [
            f"{F}:2: tenants.acme must be a mapping with some of the keys {ALLOWED_TENANT} "
            "(e.g. {policy: strict}, or {} for the default policy), got nothing (null)"
        ],
    ),
    (
        "tenants not a mapping",
        "tenants: [acme]\n",
        [f"{F}:1: tenants must be a mapping of tenant name (or glob) to its settings, got a list"],
    ),
    (
        "empty tenant name",
        'tenants:\n  "": {}\n',
        [f"{F}:2: empty tenant name under tenants"],
    ),
    (
        "tenant defined twice",
        "tenants:\n  acme: {}\n  acme: {policy: strict}\n",
        [f"{F}:3: tenant 'acme' already defined at {F}:2"],
    ),
    (
        "mapping list not a list",
        "tenants:\n  acme:\n    configuration_sets: acme-tx\n",
        [
            f"{F}:3: tenants.acme.configuration_sets must be a list of configuration set names, "
            "e.g. [a, b], got 'acme-tx'"
        ],
    ),
    (
        "mapping list with an empty string",
        'tenants:\n  acme:\n    from_domains: [acme.example, ""]\n',
        [f"{F}:3: tenants.acme.from_domains entry must be a non-empty name, got ''"],
    ),
    (
        "mapping list with a null",
        "tenants:\n  acme:\n    pinpoint_apps:\n      - abc\n      -\n",
        [f"{F}:5: tenants.acme.pinpoint_apps entry must be a non-empty name, got nothing (null)"],
    ),
    (
        "mapping list with a nested list",
        "tenants:\n  acme:\n    sms_configuration_sets: [[a]]\n",
        [f"{F}:3: tenants.acme.sms_configuration_sets entry must be a non-empty name, got a list"],
    ),
    (
        "mapping list entry with spaces",
        'tenants:\n  acme:\n    identities: [" acme.example"]\n',
        [f"{F}:3: tenants.acme.identities entry: ' acme.example' has leading or trailing spaces"],
    ),
    (
        "glob tenant with a mapping",
        """
        tenants:
          "trial-*":
            policy: strict
            identities: [trial.example]
        """,
        [
            f"{F}:4: tenants.trial-*: the pattern 'trial-*' cannot carry identities; a mapping "
            "must name one tenant, so list it under that tenant"
        ],
    ),
    (
        "configuration set mapped to two tenants",
        """
        tenants:
          a:
            configuration_sets: [shared, a-only]
          b:
            configuration_sets:
              - b-only
              - shared
        """,
        [
            f"{F}:7: configuration set 'shared' is mapped to tenant 'b' here and to tenant 'a' "
            f"at {F}:3; map it to one tenant only"
        ],
    ),
    (
        "identity mapped to two tenants, differing in case",
        "tenants:\n  a: {identities: [Mail.Example]}\n  b: {identities: [mail.example]}\n",
        [
            f"{F}:3: identity 'mail.example' is mapped to tenant 'b' here and to tenant 'a' "
            f"at {F}:2; map it to one tenant only"
        ],
    ),
    (
        "top level is a list",
        "- policies\n- tenants\n",
        [
            f"{F}:1: the top level must be a mapping with some of the keys default_policy, "
            "policies, sms_context_tenant_key, tenants; got a list"
        ],
    ),
    (
        "top level is a scalar",
        "# header\nhello\n",
        [
            f"{F}:2: the top level must be a mapping with some of the keys default_policy, "
            "policies, sms_context_tenant_key, tenants; got 'hello'"
        ],
    ),
    (
        "YAML syntax error",
        """
        tenants:
          acme: {policy: strict
          bigco: {}
        """,
        [
            f"{F}:3: invalid YAML: expected ',' or '}}', but got ':' "
            "(while parsing a flow mapping at line 2)"
        ],
    ),
    (
        "YAML tab indentation",
        "tenants:\n\tacme: {}\n",
        [f"{F}:2: invalid YAML: found character '\\t' that cannot start any token"],
    ),
    (
        "two YAML documents",
        "tenants: {}\n---\ntenants: {}\n",
        [f"{F}:2: invalid YAML: a second document starts here; a rules file holds one"],
    ),
    (
        "control character",
        "tenants:\n  acme: {}\n  bad\x07: {}\n",
        [f"{F}:3: invalid YAML: character 0x0007 is not allowed in YAML"],
    ),
    (
        "unsupported tag",
        "tenants:\n  acme: {policy: !!python/name:os.system strict}\n",
        [
            f"{F}:2: tenants.acme.policy must be a non-empty name, got 'strict' with the "
            "unsupported YAML tag !!python/name:os.system"
        ],
    ),
    (
        "merge of a scalar",
        "policies:\n  p:\n    <<: 5\n",
        [f"{F}:3: '<<' in policies.p must refer to a mapping or a list of mappings"],
    ),
    (
        "complex key",
        "policies:\n  p:\n    ? [window]\n    : 1h\n",
        [f"{F}:3: keys in policies.p must be plain names, not a list"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_error_is_reported_at_file_and_line(text: str, expected: list[str]) -> None:
    assert _errors(text) == expected


def test_error_lines_point_at_the_offending_text() -> None:
    """Guard against off-by-one: the reported line holds the key or value complained about."""
    text = _yaml(
        """
        # leading comment

        policies:
          p:
            window: 1h
            actions:
              - nope
        tenants:
          x: {policy: missing}
        """
    )
    with pytest.raises(RulesError) as info:
        parse_rules([(P, PRESETS), (F, text)])
    lines = text.splitlines()
    assert [(i.file, lines[i.line - 1].strip()) for i in info.value.issues] == [
        (F, "- nope"),
        (F, "x: {policy: missing}"),
    ]


def test_every_problem_is_reported_in_one_run() -> None:
    errors = _errors(
        """
        policies:
          p:
            window: forever
            min_volume: many
            email:
              bounce: {warn: 0.2, pause: 0.1}
            actions: [pause_it]
        tenants:
          a: {policy: p, configuration_sets: [cs]}
          b: {policy: nope, configuration_sets: [cs]}
          "c-*": {identities: [c.example]}
        tenant: {}
        """,
        ("rules/u.yaml", "policies:\n  p: {}\n"),
    )
    assert [e.split(": ", 1)[0] for e in errors] == [
        f"{F}:3",
        f"{F}:4",
        f"{F}:6",
        f"{F}:7",
        f"{F}:10",
        f"{F}:10",
        f"{F}:11",
        f"{F}:12",
        "rules/u.yaml:2",
    ]
    assert "configuration set 'cs' is mapped to tenant 'b'" in errors[4]
    assert errors[5].endswith(
        "unknown policy 'nope'; defined policies: monitor, p, standard, strict"
    )
    assert errors[8] == f"rules/u.yaml:2: policy 'p' already defined at {F}:2"


def test_duplicates_across_two_files_name_both_places() -> None:
    a = "policies:\n  shared: {}\ntenants:\n  acme: {configuration_sets: [cs]}\n"
    b = "# b\ntenants:\n  acme: {}\n  other: {configuration_sets: [cs]}\npolicies:\n  shared: {}\n"
    with pytest.raises(RulesError) as info:
        parse_rules([(P, PRESETS), ("rules/a.yaml", a), ("rules/b.yaml", b)])
    assert info.value.issues == [
        RuleIssue("rules/b.yaml", 3, "tenant 'acme' already defined at rules/a.yaml:4"),
        RuleIssue(
            "rules/b.yaml",
            4,
            "configuration set 'cs' is mapped to tenant 'other' here and to tenant 'acme' at "
            "rules/a.yaml:4; map it to one tenant only",
        ),
        RuleIssue("rules/b.yaml", 6, "policy 'shared' already defined at rules/a.yaml:2"),
    ]


def test_default_policy_conflict_across_files() -> None:
    rules = parse_rules(
        [
            (P, PRESETS),
            ("rules/a.yaml", "default_policy: strict\n"),
            ("rules/b.yaml", "default_policy: strict\n"),  # same as a: fine
        ]
    )
    assert rules.default_policy == "strict"
    assert parse_rules([(P, PRESETS)]).default_policy == "standard"
    with pytest.raises(RulesError) as info:
        parse_rules(
            [
                (P, PRESETS),
                ("rules/a.yaml", "default_policy: strict\nsms_context_tenant_key: org\n"),
                ("rules/b.yaml", "default_policy: monitor\nsms_context_tenant_key: client\n"),
            ]
        )
    assert [str(i) for i in info.value.issues] == [
        "rules/b.yaml:1: default_policy 'monitor' conflicts with 'strict' set at rules/a.yaml:1; "
        "set default_policy in one file only",
        "rules/b.yaml:2: sms_context_tenant_key 'client' conflicts with 'org' set at "
        "rules/a.yaml:2; set it in one file only",
    ]


def test_default_policy_naming_an_unknown_policy() -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(
            [("rules/a.yaml", "policies: {p: {}}\n"), ("rules/b.yaml", "default_policy: q\n")]
        )
    assert [str(i) for i in info.value.issues] == [
        "rules/b.yaml:1: default_policy: unknown policy 'q'; defined policies: p"
    ]


def test_no_default_policy_and_no_standard() -> None:
    with pytest.raises(RulesError) as info:
        parse_rules([("rules/a.yaml", "policies: {p: {}}\n")])
    assert [str(i) for i in info.value.issues] == [
        "rules/a.yaml:0: no default_policy is set and no policy named 'standard' is defined "
        "(is presets.yaml missing?); add `default_policy: NAME` naming one of: p"
    ]


def test_reference_checks_are_skipped_when_a_file_is_not_yaml() -> None:
    # The broken file may define the policy; "unknown policy" would be noise until it parses.
    errors = _errors("tenants:\n  a: {policy: mine}\n", ("rules/u.yaml", "policies: [\n"))
    assert len(errors) == 1 and errors[0].startswith("rules/u.yaml:2: invalid YAML:")


def test_an_invalid_policy_still_counts_as_defined() -> None:
    errors = _errors("policies:\n  mine: {window: x}\ntenants:\n  a: {policy: mine}\n")
    assert errors == [f"{F}:2: policies.mine.window: not a duration {DURATION}, got 'x'"]


def test_merge_keys_explicit_keys_win_and_merged_errors_point_at_the_anchor() -> None:
    rules = _parse(
        """
        policies:
          base: &base
            window: 1h
            actions: [webhook]
          child:
            <<: *base
            actions: []
        """
    )
    assert rules.policies["child"].window_s == 3600.0
    assert rules.policies["child"].actions == ()
    errors = _errors(
        """
        policies:
          base: &base
            window: 1x
          child:
            <<: [*base]
        """
    )
    assert errors == [
        f"{F}:3: policies.base.window: not a duration {DURATION}, got '1x'",
        f"{F}:3: policies.child.window: not a duration {DURATION}, got '1x'",
    ]


def test_a_self_merging_anchor_terminates() -> None:
    rules = _parse("policies:\n  p: &a\n    window: 1h\n    <<: *a\n")
    assert rules.policies["p"].window_s == 3600.0


def test_rules_error_str_is_one_line_per_issue() -> None:
    error = RulesError([RuleIssue("a.yaml", 1, "x"), RuleIssue("b.yaml", 2, "y")])
    assert str(error) == "a.yaml:1: x\nb.yaml:2: y"


# -- properties --------------------------------------------------------------------------------

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@given(n=st.integers(min_value=1, max_value=10**9), unit=st.sampled_from(sorted(UNITS)))
def test_any_positive_duration_parses_to_its_seconds(n: int, unit: str) -> None:
    assert parse_duration(f"{n}{unit}") == n * UNITS[unit]
    rules = parse_rules([("a.yaml", f"policies:\n  standard:\n    window: {n}{unit}\n")])
    assert rules.policies["standard"].window_s == n * UNITS[unit]


@given(unit=st.sampled_from(sorted(UNITS)), zeros=st.integers(min_value=1, max_value=5))
def test_zero_durations_are_rejected(unit: str, zeros: int) -> None:
    with pytest.raises(ValueError, match="longer than 0"):
        parse_duration("0" * zeros + unit)


fractions = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(a=fractions, b=fractions)
def test_threshold_pairs_in_order_are_accepted_and_reversed_are_rejected(
    a: float, b: float
) -> None:
    warn, pause = min(a, b), max(a, b)
    text = (
        "policies:\n  standard:\n    email:\n      bounce:\n"
        f"        warn: {warn!r}\n        pause: {pause!r}\n"
    )
    rules = parse_rules([("a.yaml", text)])
    assert rules.policies["standard"].thresholds[Rate.EMAIL_BOUNCE] == Threshold(warn, pause)
    if warn < pause:
        swapped = text.replace(f"warn: {warn!r}", "W").replace(f"pause: {pause!r}", "P")
        swapped = swapped.replace("W", f"warn: {pause!r}").replace("P", f"pause: {warn!r}")
        with pytest.raises(RulesError) as info:
            parse_rules([("a.yaml", swapped)])
        [issue] = info.value.issues
        assert (issue.file, issue.line) == ("a.yaml", 5)
        assert "is above pause" in issue.reason


@given(value=st.floats(allow_nan=False).filter(lambda x: not 0 <= x <= 1))
def test_thresholds_outside_0_1_are_rejected(value: float) -> None:
    literal = {math.inf: ".inf", -math.inf: "-.inf"}.get(value, repr(value))
    text = f"policies:\n  standard: {{sms: {{failure: {{warn: 0, pause: {literal}}}}}}}\n"
    with pytest.raises(RulesError) as info:
        parse_rules([("a.yaml", text)])
    [issue] = info.value.issues
    assert issue.line == 2
    assert issue.reason.startswith("policies.standard.sms.failure.pause must be from 0 to 1")


# -- loading a directory -----------------------------------------------------------------------


def test_load_rules_dir_reads_yaml_files_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "presets.yaml").write_text(PRESETS, encoding="utf-8")
    (tmp_path / "b-tenants.yaml").write_text("tenants:\n  acme: {policy: mine}\n", "utf-8")
    (tmp_path / "a-policies.yaml").write_text("policies:\n  mine: {min_volume: 1}\n", "utf-8")
    # not rules: other extensions, dot files, subdirectories
    (tmp_path / "notes.txt").write_text("policies: [broken", encoding="utf-8")
    (tmp_path / "old.yml").write_text("policies: [broken", encoding="utf-8")
    (tmp_path / "example.yaml.example").write_text("policies: [broken", encoding="utf-8")
    (tmp_path / ".#presets.yaml").write_text("policies: [broken", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.yaml").write_text("policies: [broken", encoding="utf-8")
    (tmp_path / "dir.yaml").mkdir()
    rules = load_rules_dir(tmp_path)
    assert list(rules.policies) == ["mine", "standard", "strict", "monitor"]
    assert rules.policy_for("acme").min_volume == 1
    assert rules.origins["policy:mine"] == f"{tmp_path}/a-policies.yaml:2"
    assert rules.origins["tenant:acme"] == f"{tmp_path}/b-tenants.yaml:2"


def test_load_rules_dir_names_files_as_the_path_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "presets.yaml").write_text(PRESETS, encoding="utf-8")
    (tmp_path / "rules" / "z.yaml").write_text("policies:\n  strict: {}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RulesError) as info:
        load_rules_dir("rules")
    assert [str(i) for i in info.value.issues] == [
        f"rules/z.yaml:2: policy 'strict' already defined at rules/presets.yaml:{STRICT_LINE}"
    ]


def test_load_rules_dir_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as info:
        load_rules_dir(tmp_path / "nope")
    assert info.value.issues == [
        RuleIssue(str(tmp_path / "nope"), 0, "rules directory does not exist")
    ]
    (tmp_path / "README.md").write_text("hi", encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules_dir(tmp_path)
    assert info.value.issues == [
        RuleIssue(str(tmp_path), 0, "no *.yaml rules files in directory (expected presets.yaml)")
    ]
    with pytest.raises(RulesError) as info:
        load_rules_dir(tmp_path / "README.md")
    assert info.value.issues == [
        RuleIssue(str(tmp_path / "README.md"), 0, "rules path is not a directory")
    ]


def test_load_rules_dir_reports_bad_bytes_with_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(PRESETS, encoding="utf-8")
    (tmp_path / "b.yaml").write_bytes(b"# ok\ntenants:\n  caf\xe9: {}\n")
    (tmp_path / "c.yaml").write_text("tenants:\n  x: {policy: nope}\n", encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules_dir(tmp_path)
    assert [str(i) for i in info.value.issues] == [
        f"{tmp_path}/b.yaml:3: not valid UTF-8 (byte 0xe9); save as UTF-8",
        f"{tmp_path}/c.yaml:2: tenants.x.policy: unknown policy 'nope'; "
        "defined policies: monitor, standard, strict",
    ]


def test_load_rules_dir_skips_broken_symlinks(tmp_path: Path) -> None:
    (tmp_path / "presets.yaml").write_text(PRESETS, encoding="utf-8")
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "gone")
    assert list(load_rules_dir(tmp_path).policies) == ["standard", "strict", "monitor"]


def test_load_rules_dir_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "presets.yaml").write_text(PRESETS, encoding="utf-8")
    secret = tmp_path / "secret.yaml"
    secret.write_text("tenants: {}\n", encoding="utf-8")
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "secret.yaml":  # chmod 0 does not stop root, so simulate it
            raise PermissionError(13, os.strerror(13), str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(RulesError) as info:
        load_rules_dir(tmp_path)
    assert [str(i) for i in info.value.issues] == [
        f"{secret}:1: cannot read file: Permission denied"
    ]


def test_embedded_presets_prefers_the_packaged_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "_rules").mkdir()
    (tmp_path / "_rules" / "presets.yaml").write_text("# packaged\n", encoding="utf-8")
    monkeypatch.setattr("importlib.resources.files", lambda _package: tmp_path)
    assert embedded_presets_text() == "# packaged\n"
