"""Parse and validate rules files into `Rules`, reporting every problem as `FILE:LINE: reason`.

Pure: it takes (name, text) pairs and does no I/O (`monitor.rulesfile` reads the directory).
It walks the YAML node tree instead of loaded Python objects, so every key and value keeps its
line, and duplicate keys (which `yaml.safe_load` silently collapses to the last) can be reported.
All problems are collected and raised together: fixing a rules file one error per run is misery.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitor.core.rules import (
    ACTIONS,
    Policy,
    Rate,
    RuleIssue,
    Rules,
    RulesError,
    TenantRule,
    Threshold,
)

DEFAULT_POLICY = "standard"
DEFAULT_SMS_CONTEXT_TENANT_KEY = "tenant"

TOP_KEYS = ("default_policy", "policies", "sms_context_tenant_key", "tenants")
POLICY_KEYS = ("window", "min_volume", "email", "sms", "resume_below", "auto_resume", "actions")
CHANNEL_RATES: dict[str, dict[str, Rate]] = {
    "email": {"bounce": Rate.EMAIL_BOUNCE, "complaint": Rate.EMAIL_COMPLAINT},
    "sms": {"failure": Rate.SMS_FAILURE, "opt_out": Rate.SMS_OPT_OUT},
}
THRESHOLD_KEYS = ("warn", "pause")
# Mapping list key → what one entry is called in messages.
MAPPING_KINDS: dict[str, str] = {
    "configuration_sets": "configuration set",
    "identities": "identity",
    "from_domains": "from-domain",
    "pinpoint_apps": "Pinpoint application",
    "sms_configuration_sets": "SMS configuration set",
}
TENANT_KEYS = ("policy", *MAPPING_KINDS)
# Domains and addresses are case-insensitive in DNS and SES: `Bigco.example` and `bigco.example`
# mapped to two tenants is the same conflict.
_CASELESS_KINDS = frozenset({"identities", "from_domains"})
_GLOB_CHARS = "*?["

_T = "tag:yaml.org,2002:"
_NULL, _BOOL, _INT, _FLOAT, _STR, _MERGE = (
    _T + "null",
    _T + "bool",
    _T + "int",
    _T + "float",
    _T + "str",
    _T + "merge",
)
# Plain scalars that may stand for a name: `2024` or `yes` is what the user typed, so we take
# the text; explicit or exotic tags (`!foo`, `!!binary`) are refused.
_NAME_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _T + "timestamp"})

_YAML12_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_HELP = "a number and one unit s, m, h or d, e.g. 90m or 24h"
_FRACTION_HELP = "a fraction: 0.05 means 5 %"


def parse_duration(text: str) -> float:
    """`90m` → 5400.0 seconds. Raises ValueError if malformed, zero or absurdly large."""
    m = _DURATION.fullmatch(text)
    if m is None:
        raise ValueError(f"not a duration ({_DURATION_HELP})")
    seconds = float(m[1]) * _UNIT_SECONDS[m[2]]
    if not math.isfinite(seconds):
        raise ValueError("duration is too large")
    if seconds <= 0:
        raise ValueError("duration must be longer than 0")
    return seconds


def parse_rules(files: Sequence[tuple[str, str]]) -> Rules:
    """Merge and validate rules files given as (display name, YAML text), in the order given.

    Raises RulesError carrying every problem found, each with the 1-based line of the
    offending key or value.
    """
    parser = _Parser()
    for index, (name, text) in enumerate(files):
        parser.parse_file(index, name, text)
    return parser.finish(first_file=files[0][0] if files else "<rules>")


@dataclass(frozen=True, slots=True)
class _Ref:
    """A policy name used somewhere, checked once every file has defined its policies."""

    policy: str
    index: int
    file: str
    line: int
    path: str


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _pairs_of(node: MappingNode) -> list[tuple[Node, Node]]:
    return list(node.value)


def _describe(node: Node) -> str:
    """How a value reads in a message: the text the user wrote, or what kind of thing it is."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    text = str(node.value)
    if len(text) > 60:
        text = text[:57] + "..."
    if node.tag == _NULL:
        return "nothing (null)"
    if node.tag == _BOOL:
        return f"{text} (a boolean)"
    if node.tag in (_INT, _FLOAT):
        return text
    if node.tag not in _NAME_TAGS:  # `!foo x` or `!!python/...`: safe loading refuses those
        tag = node.tag.replace(_T, "!!")
        return f"'{text}' with the unsupported YAML tag {tag}"
    return f"'{text}'"


def _suggest(word: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Parser:
    def __init__(self) -> None:
        self._issues: list[tuple[int, RuleIssue]] = []
        self._index = 0
        self._file = ""
        self._scalars = SafeConstructor()
        self._policies: dict[str, Policy | None] = {}  # None: defined but invalid
        self._origins: dict[str, str] = {}
        self._tenants: list[TenantRule] = []
        self._refs: list[_Ref] = []
        # (mapping list key, normalised value) → (tenant, "FILE:LINE")
        self._owners: dict[tuple[str, str], tuple[str, str]] = {}
        self._default: tuple[str, _Ref] | None = None
        self._sms_key: tuple[str, str] | None = None  # (value, "FILE:LINE")
        # A file that is not even YAML may define the policies others refer to: checking
        # references would only add noise that disappears once the syntax is fixed.
        self._broken = False

    # -- reporting -----------------------------------------------------------------------------

    def _issue(self, where: Node | int, reason: str) -> None:
        line = where if isinstance(where, int) else _line(where)
        self._issues.append((self._index, RuleIssue(self._file, line, reason)))

    def _unknown_key(self, key_node: Node, key: str, where: str, allowed: Sequence[str]) -> None:
        self._issue(
            key_node,
            f"unknown key '{key}' {where}{_suggest(key, allowed)}; allowed: {', '.join(allowed)}",
        )

    def _here(self, node: Node) -> str:
        return f"{self._file}:{_line(node)}"

    # -- files ---------------------------------------------------------------------------------

    def parse_file(self, index: int, name: str, text: str) -> None:
        self._index, self._file = index, name
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            self._broken = True
            mark = e.problem_mark or e.context_mark
            reason = f"invalid YAML: {e.problem or e.context}"
            if e.context == "expected a single document in the stream":
                reason = "invalid YAML: a second document starts here; a rules file holds one"
            elif e.problem and e.context and e.context_mark is not None:
                reason += f" ({e.context} at line {e.context_mark.line + 1})"
            self._issue(mark.line + 1 if mark is not None else 1, reason)
            return
        except yaml.reader.ReaderError as e:
            self._broken = True
            line = text.count("\n", 0, int(e.position)) + 1
            char = e.character if isinstance(e.character, str) else chr(int(e.character))
            self._issue(line, f"invalid YAML: character {ord(char):#06x} is not allowed in YAML")
            return
        except RecursionError:
            self._broken = True
            self._issue(1, "invalid YAML: nested too deeply")
            return
        if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL):
            return  # empty, only comments, or a bare `---`: contributes nothing
        if not isinstance(root, MappingNode):
            self._issue(
                root,
                f"the top level must be a mapping with some of the keys {', '.join(TOP_KEYS)}; "
                f"got {_describe(root)}",
            )
            return
        for key, key_node, value in self._pairs(root, "at the top level"):
            if key == "default_policy":
                self._default_policy(value)
            elif key == "sms_context_tenant_key":
                self._sms_context_tenant_key(value)
            elif key == "policies":
                self._policies_section(value)
            elif key == "tenants":
                self._tenants_section(value)
            else:
                self._unknown_key(key_node, key, "at the top level", TOP_KEYS)

    def finish(self, first_file: str) -> Rules:
        default = DEFAULT_POLICY
        if self._default is not None:
            default = self._default[0]
        if not self._broken:
            known = sorted(self._policies)
            refs = list(self._refs)
            if self._default is not None:
                refs.append(self._default[1])
            for ref in refs:
                if ref.policy not in self._policies:
                    self._issues.append(
                        (
                            ref.index,
                            RuleIssue(
                                ref.file,
                                ref.line,
                                f"{ref.path}: unknown policy '{ref.policy}'"
                                f"{_suggest(ref.policy, known)}; defined policies: "
                                f"{', '.join(known) or '(none)'}",
                            ),
                        )
                    )
            if self._default is None and DEFAULT_POLICY not in self._policies:
                self._index, self._file = 0, first_file
                self._issue(
                    0,
                    f"no default_policy is set and no policy named '{DEFAULT_POLICY}' is "
                    f"defined (is presets.yaml missing?); add `default_policy: NAME` naming "
                    f"one of: {', '.join(known) or '(none defined)'}",
                )
        if self._issues:
            unique = dict.fromkeys(self._issues)  # an aliased node may report the same problem
            ordered = sorted(unique, key=lambda pair: (pair[0], pair[1].line))
            raise RulesError([issue for _, issue in ordered])
        policies = {name: p for name, p in self._policies.items() if p is not None}
        return Rules(
            default_policy=default,
            policies=policies,
            tenants=tuple(self._tenants),
            sms_context_tenant_key=(
                self._sms_key[0] if self._sms_key is not None else DEFAULT_SMS_CONTEXT_TENANT_KEY
            ),
            origins=dict(self._origins),
        )

    # -- YAML structure --------------------------------------------------------------------------

    def _pairs(
        self,
        node: MappingNode,
        where: str,
        *,
        duplicates_are_errors: bool = True,
        _visiting: frozenset[int] = frozenset(),
    ) -> list[tuple[str, Node, Node]]:
        """The (key, key node, value node) pairs of a mapping, with `<<` merge keys expanded.

        Explicit keys win over merged ones, as in YAML; merged keys keep the line where they are
        written (the anchor), which is where the user has to fix them.
        """
        visiting = _visiting | {id(node)}
        explicit: set[str] = set()
        raw = _pairs_of(node)
        for k, _ in raw:
            if isinstance(k, ScalarNode) and k.tag != _MERGE:
                explicit.add(str(k.value))
        out: list[tuple[str, Node, Node]] = []
        first_line: dict[str, int] = {}
        for k, v in raw:
            if k.tag == _MERGE:
                for key, kn, vn in self._merge_sources(v, where, visiting):
                    if key not in explicit and key not in first_line:
                        first_line[key] = _line(kn)
                        out.append((key, kn, vn))
                continue
            if not isinstance(k, ScalarNode):
                self._issue(k, f"keys {where} must be plain names, not {_describe(k)}")
                continue
            key = str(k.value)
            if key in first_line and duplicates_are_errors:
                self._issue(
                    k,
                    f"duplicate key '{key}' {where} (first at line {first_line[key]}); "
                    f"YAML would silently keep only the last one",
                )
                continue
            first_line.setdefault(key, _line(k))
            out.append((key, k, v))
        return out

    def _merge_sources(
        self, node: Node, where: str, visiting: frozenset[int]
    ) -> list[tuple[str, Node, Node]]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        out: list[tuple[str, Node, Node]] = []
        for source in sources:
            if not isinstance(source, MappingNode):
                self._issue(source, f"'<<' {where} must refer to a mapping or a list of mappings")
            elif id(source) not in visiting:  # an anchor that merges itself: nothing new
                out.extend(
                    self._pairs(source, where, duplicates_are_errors=False, _visiting=visiting)
                )
        return out

    # -- scalars -------------------------------------------------------------------------------

    def _name(self, node: Node, path: str) -> str | None:
        """A non-empty name (policy, tenant key, configuration set, ...), as the user typed it."""
        if not isinstance(node, ScalarNode) or node.tag not in _NAME_TAGS:
            self._issue(node, f"{path} must be a non-empty name, got {_describe(node)}")
            return None
        text = str(node.value)
        if not text:
            self._issue(node, f"{path} must be a non-empty name, got ''")
            return None
        if text != text.strip():
            self._issue(node, f"{path}: '{text}' has leading or trailing spaces")
            return None
        return text

    def _number(self, node: Node) -> float | None:
        # bool is not a number here, even though Python says True == 1.
        if isinstance(node, ScalarNode) and node.tag == _INT:
            return float(self._scalars.construct_yaml_int(node))
        if isinstance(node, ScalarNode) and node.tag == _FLOAT:
            return float(self._scalars.construct_yaml_float(node))
        # PyYAML follows YAML 1.1, where `5e-4` (no dot) is a string; YAML 1.2 and every
        # reader of these files take it as a number, so a plain (unquoted) one counts.
        if (
            isinstance(node, ScalarNode)
            and node.tag == _STR
            and node.style is None
            and _YAML12_FLOAT.fullmatch(str(node.value))
        ):
            return float(str(node.value))
        return None

    def _fraction(self, node: Node, path: str, *, zero_ok: bool = True) -> float | None:
        value = self._number(node)
        if value is None:
            hint = ""
            text = str(node.value) if isinstance(node, ScalarNode) else ""
            if text.endswith("%"):
                with contextlib.suppress(ValueError):
                    hint = f"; for {text} write {float(text[:-1].strip()) / 100:g}"
            self._issue(
                node,
                f"{path} must be a number from 0 to 1 ({_FRACTION_HELP}), "
                f"got {_describe(node)}{hint}",
            )
            return None
        low_ok = value >= 0 if zero_ok else value > 0
        if not (math.isfinite(value) and low_ok and value <= 1):
            hint = f"; for {value:g} % write {value / 100:g}" if 1 < value <= 100 else ""
            bounds = "from 0 to 1" if zero_ok else "above 0 and at most 1"
            self._issue(
                node,
                f"{path} must be {bounds} ({_FRACTION_HELP}), got {_describe(node)}{hint}",
            )
            return None
        return value

    def _duration(self, node: Node, path: str) -> float | None:
        if not (isinstance(node, ScalarNode) and node.tag == _STR):
            self._issue(
                node, f"{path} must be a duration ({_DURATION_HELP}), got {_describe(node)}"
            )
            return None
        try:
            return parse_duration(str(node.value))
        except ValueError as e:
            self._issue(node, f"{path}: {e}, got {_describe(node)}")
            return None

    # -- top-level keys ------------------------------------------------------------------------

    def _default_policy(self, node: Node) -> None:
        name = self._name(node, "default_policy")
        if name is None:
            return
        ref = _Ref(name, self._index, self._file, _line(node), "default_policy")
        if self._default is None:
            self._default = (name, ref)
        elif self._default[0] != name:
            prev = self._default[1]
            self._issue(
                node,
                f"default_policy '{name}' conflicts with '{prev.policy}' set at "
                f"{prev.file}:{prev.line}; set default_policy in one file only",
            )

    def _sms_context_tenant_key(self, node: Node) -> None:
        key = self._name(node, "sms_context_tenant_key")
        if key is None:
            return
        if self._sms_key is None:
            self._sms_key = (key, self._here(node))
        elif self._sms_key[0] != key:
            self._issue(
                node,
                f"sms_context_tenant_key '{key}' conflicts with '{self._sms_key[0]}' set at "
                f"{self._sms_key[1]}; set it in one file only",
            )

    def _section(self, node: Node, section: str, what: str) -> MappingNode | None:
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return None  # `tenants:` with every entry commented out is an empty section
        if not isinstance(node, MappingNode):
            self._issue(node, f"{section} must be a mapping of {what}, got {_describe(node)}")
            return None
        return node

    @staticmethod
    def _entry_name(key_node: Node, key: str) -> str:
        # `~:` or a bare `:` is YAML null, not a name anyone meant.
        return "" if key_node.tag == _NULL else key

    # -- policies ------------------------------------------------------------------------------

    def _policies_section(self, node: Node) -> None:
        section = self._section(node, "policies", "policy name to its settings")
        if section is None:
            return
        for key, key_node, value in self._pairs(
            section, "under policies", duplicates_are_errors=False
        ):
            name = self._entry_name(key_node, key)
            if not name:
                self._issue(key_node, "empty policy name under policies")
                continue
            prev = self._origins.get(f"policy:{name}")
            if prev is not None:
                self._issue(key_node, f"policy '{name}' already defined at {prev}")
                continue
            self._origins[f"policy:{name}"] = self._here(key_node)
            self._policies[name] = self._policy(name, value)

    def _policy(self, name: str, node: Node) -> Policy | None:
        path = f"policies.{name}"
        if not isinstance(node, MappingNode):
            self._issue(
                node,
                f"{path} must be a mapping of policy settings ({', '.join(POLICY_KEYS)}), "
                f"got {_describe(node)}",
            )
            return None
        issues_before = len(self._issues)
        base = Policy(name=name)
        window_s, min_volume = base.window_s, base.min_volume
        resume_below, auto_resume_s, actions = base.resume_below, base.auto_resume_s, base.actions
        thresholds: dict[Rate, Threshold] = {}
        for key, key_node, value in self._pairs(node, f"in {path}"):
            sub = f"{path}.{key}"
            if key == "window":
                window_s = self._duration(value, sub) or window_s
            elif key == "min_volume":
                volume = self._min_volume(value, sub)
                min_volume = min_volume if volume is None else volume
            elif key in CHANNEL_RATES:
                self._channel(key, key_node, value, sub, thresholds)
            elif key == "resume_below":
                resume_below = self._fraction(value, sub, zero_ok=False) or resume_below
            elif key == "auto_resume":
                auto_resume_s = self._auto_resume(value, sub)
            elif key == "actions":
                actions = self._actions(value, sub) or ()
            else:
                self._unknown_key(key_node, key, f"in {path}", POLICY_KEYS)
        if len(self._issues) > issues_before:
            return None
        return Policy(
            name=name,
            window_s=window_s,
            min_volume=min_volume,
            thresholds=thresholds,
            resume_below=resume_below,
            auto_resume_s=auto_resume_s,
            actions=actions,
        )

    def _min_volume(self, node: Node, path: str) -> int | None:
        if isinstance(node, ScalarNode) and node.tag == _INT:
            value = int(self._scalars.construct_yaml_int(node))
            if value >= 0:
                return value
        self._issue(node, f"{path} must be a whole number ≥ 0, got {_describe(node)}")
        return None

    def _auto_resume(self, node: Node, path: str) -> float | None:
        if isinstance(node, ScalarNode) and node.tag == _BOOL:
            if self._scalars.construct_yaml_bool(node) is False:
                return None
            self._issue(
                node,
                f"{path} must be false (stay paused until an admin resumes) or a duration "
                f"({_DURATION_HELP}), got {_describe(node)}",
            )
            return None
        return self._duration(node, path)

    def _actions(self, node: Node, path: str) -> tuple[str, ...] | None:
        if not isinstance(node, SequenceNode):
            self._issue(
                node,
                f"{path} must be a list of actions from {', '.join(ACTIONS)} "
                f"(e.g. [ses_tenant]; [] never pauses), got {_describe(node)}",
            )
            return None
        out: list[str] = []
        for item in node.value:
            action = self._name(item, f"{path} entry")
            if action is None:
                continue
            if action not in ACTIONS:
                self._issue(
                    item,
                    f"unknown action '{action}' in {path}{_suggest(action, ACTIONS)}; "
                    f"allowed: {', '.join(ACTIONS)}",
                )
            elif action in out:
                self._issue(item, f"action '{action}' is listed twice in {path}")
            else:
                out.append(action)
        return tuple(out)

    def _channel(
        self,
        channel: str,
        key_node: Node,
        node: Node,
        path: str,
        thresholds: dict[Rate, Threshold],
    ) -> None:
        rates = CHANNEL_RATES[channel]
        if not isinstance(node, MappingNode):
            self._issue(
                node,
                f"{path} must be a mapping of {' and/or '.join(rates)} to {{warn: N, pause: N}}, "
                f"got {_describe(node)}",
            )
            return
        for key, rate_key_node, value in self._pairs(node, f"in {path}"):
            rate = rates.get(key)
            if rate is None:
                self._unknown_key(rate_key_node, key, f"in {path}", tuple(rates))
                continue
            threshold = self._threshold(rate_key_node, value, f"{path}.{key}")
            if threshold is not None:
                thresholds[rate] = threshold

    def _threshold(self, key_node: Node, node: Node, path: str) -> Threshold | None:
        if not isinstance(node, MappingNode):
            self._issue(
                node,
                f"{path} must be {{warn: N, pause: N}} with N from 0 to 1 ({_FRACTION_HELP}), "
                f"got {_describe(node)}",
            )
            return None
        values: dict[str, tuple[float | None, Node]] = {}
        for key, level_key_node, value in self._pairs(node, f"in {path}"):
            if key in THRESHOLD_KEYS:
                values[key] = (self._fraction(value, f"{path}.{key}"), value)
            else:
                self._unknown_key(level_key_node, key, f"in {path}", THRESHOLD_KEYS)
        missing = [k for k in THRESHOLD_KEYS if k not in values]
        if missing:
            self._issue(
                key_node, f"{path} needs both warn and pause; missing {' and '.join(missing)}"
            )
            return None
        (warn, warn_node), (pause, _) = values["warn"], values["pause"]
        if warn is None or pause is None:
            return None
        if warn > pause:
            self._issue(
                warn_node,
                f"{path}: warn {warn:g} is above pause {pause:g}; warn must be at most pause",
            )
            return None
        return Threshold(warn=warn, pause=pause)

    # -- tenants -------------------------------------------------------------------------------

    def _tenants_section(self, node: Node) -> None:
        section = self._section(node, "tenants", "tenant name (or glob) to its settings")
        if section is None:
            return
        for key, key_node, value in self._pairs(
            section, "under tenants", duplicates_are_errors=False
        ):
            name = self._entry_name(key_node, key)
            if not name:
                self._issue(key_node, "empty tenant name under tenants")
                continue
            prev = self._origins.get(f"tenant:{name}")
            if prev is not None:
                self._issue(key_node, f"tenant '{name}' already defined at {prev}")
                continue
            self._origins[f"tenant:{name}"] = self._here(key_node)
            rule = self._tenant(name, value)
            if rule is not None:
                self._tenants.append(rule)

    def _tenant(self, name: str, node: Node) -> TenantRule | None:
        path = f"tenants.{name}"
        if not isinstance(node, MappingNode):
            self._issue(
                node,
                f"{path} must be a mapping with some of the keys {', '.join(TENANT_KEYS)} "
                f"(e.g. {{policy: strict}}, or {{}} for the default policy), "
                f"got {_describe(node)}",
            )
            return None
        issues_before = len(self._issues)
        is_glob = any(c in name for c in _GLOB_CHARS)
        policy: str | None = None
        lists: dict[str, tuple[str, ...]] = {}
        for key, key_node, value in self._pairs(node, f"in {path}"):
            sub = f"{path}.{key}"
            if key == "policy":
                policy = self._name(value, sub)
                if policy is not None:
                    self._refs.append(_Ref(policy, self._index, self._file, _line(value), sub))
            elif key in MAPPING_KINDS:
                if is_glob:
                    self._issue(
                        key_node,
                        f"{path}: the pattern '{name}' cannot carry {key}; a mapping must "
                        f"name one tenant, so list it under that tenant",
                    )
                    continue
                lists[key] = self._mapping_list(name, key, value, sub)
            else:
                self._unknown_key(key_node, key, f"in {path}", TENANT_KEYS)
        if len(self._issues) > issues_before:
            return None
        return TenantRule(
            name=name,
            policy=policy,
            configuration_sets=lists.get("configuration_sets", ()),
            identities=lists.get("identities", ()),
            from_domains=lists.get("from_domains", ()),
            pinpoint_apps=lists.get("pinpoint_apps", ()),
            sms_configuration_sets=lists.get("sms_configuration_sets", ()),
        )

    def _mapping_list(self, tenant: str, key: str, node: Node, path: str) -> tuple[str, ...]:
        kind = MAPPING_KINDS[key]
        if not isinstance(node, SequenceNode):
            self._issue(
                node, f"{path} must be a list of {kind} names, e.g. [a, b], got {_describe(node)}"
            )
            return ()
        out: list[str] = []
        for item in node.value:
            value = self._name(item, f"{path} entry")
            if value is None:
                continue
            norm = value.lower() if key in _CASELESS_KINDS else value
            owner = self._owners.get((key, norm))
            if owner is None:
                self._owners[(key, norm)] = (tenant, self._here(item))
                out.append(value)
            elif owner[0] != tenant:
                self._issue(
                    item,
                    f"{kind} '{value}' is mapped to tenant '{tenant}' here and to tenant "
                    f"'{owner[0]}' at {owner[1]}; map it to one tenant only",
                )
            # else: listed twice for the same tenant, harmless
        return tuple(out)
