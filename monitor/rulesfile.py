"""Read a rules directory from disk and hand it to the pure parser (`core.rulesparse`)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from monitor.core.rules import RuleIssue, Rules, RulesError
from monitor.core.rulesparse import parse_rules

PRESETS_NAME = "presets.yaml"


def load_rules_dir(path: Path | str) -> Rules:
    """Parse every `*.yaml` directly in `path`, in name order; RulesError lists every problem.

    Files are named in messages as `path` joined with the file name, as the operator wrote it.
    """
    directory = Path(path)
    shown = str(path)
    if not directory.exists():
        raise RulesError([RuleIssue(shown, 0, "rules directory does not exist")])
    if not directory.is_dir():
        raise RulesError([RuleIssue(shown, 0, "rules path is not a directory")])
    try:
        # Dot files are skipped: editor lock files (`.#x.yaml`) and Kubernetes ConfigMap
        # internals (`..data/`) are not rules.
        names = sorted(
            p.name for p in directory.glob("*.yaml") if p.is_file() and not p.name.startswith(".")
        )
    except OSError as e:
        raise RulesError(
            [RuleIssue(shown, 0, f"cannot list rules directory: {_os_reason(e)}")]
        ) from None
    if not names:
        raise RulesError(
            [RuleIssue(shown, 0, f"no *.yaml rules files in directory (expected {PRESETS_NAME})")]
        )
    texts: list[tuple[str, str]] = []
    issues: list[RuleIssue] = []
    for name in names:
        display = str(Path(shown) / name)
        try:
            data = (directory / name).read_bytes()
        except OSError as e:
            issues.append(RuleIssue(display, 1, f"cannot read file: {_os_reason(e)}"))
            continue
        try:
            texts.append((display, data.decode("utf-8")))
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            issues.append(
                RuleIssue(
                    display, line, f"not valid UTF-8 (byte {data[e.start]:#04x}); save as UTF-8"
                )
            )
    try:
        rules = parse_rules(texts)
    except RulesError as e:
        issues.extend(e.issues)
    if issues:
        order = {str(Path(shown) / n): i for i, n in enumerate(names)}
        issues.sort(key=lambda issue: (order.get(issue.file, -1), issue.line))
        raise RulesError(issues)
    return rules


def embedded_presets_text() -> str:
    """The shipped `presets.yaml`: package data in a wheel, else the source tree's copy."""
    # hatch force-include puts rules/presets.yaml at monitor/_rules/presets.yaml in a wheel.
    try:
        packaged = resources.files("monitor").joinpath("_rules").joinpath(PRESETS_NAME)
        if packaged.is_file():
            return packaged.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        pass
    source = Path(__file__).resolve().parent.parent / "rules" / PRESETS_NAME
    try:
        return source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{PRESETS_NAME} is neither packaged as monitor/_rules/{PRESETS_NAME} nor in the "
            f"source tree at {source}; reinstall reputation-monitor"
        ) from None


def write_rules_dir(path: Path, files: Mapping[str, str]) -> Path:
    """Make `path` a rules directory: the shipped presets beside `files` (name → YAML text).
    For the demo, tests and benchmarks, which bring their own policies."""
    path.mkdir(parents=True, exist_ok=True)
    (path / PRESETS_NAME).write_text(embedded_presets_text(), encoding="utf-8")
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    return path


def _os_reason(e: OSError) -> str:
    return e.strerror or str(e)
