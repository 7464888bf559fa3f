"""Packaging files that must agree with each other (no tools needed; the full checks are
scripts/image-test.sh, scripts/chart-test.sh and scripts/alerts-test.sh)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "reputation-monitor"


@pytest.mark.parametrize(
    ("source", "copy"),
    [
        ("dashboards/alerts.yaml", "helm/reputation-monitor/files/alerts.yaml"),
        ("rules/presets.yaml", "helm/reputation-monitor/files/presets.yaml"),
    ],
)
def test_the_chart_ships_the_same_file(source: str, copy: str) -> None:
    # One source of truth: the chart can only read files inside its own directory.
    assert (ROOT / copy).read_bytes() == (ROOT / source).read_bytes(), f"cp {source} {copy}"


def test_every_alert_has_severity_annotations_and_its_runbook_section() -> None:
    rules = [
        r
        for g in yaml.safe_load((ROOT / "dashboards/alerts.yaml").read_text())["groups"]
        for r in g["rules"]
    ]
    runbook = (ROOT / "docs/runbook.md").read_text()
    sections = set(re.findall(r"^## (\S+)$", runbook, flags=re.M))
    names = [r["alert"] for r in rules]
    assert {
        "TenantPaused",
        "TenantWarningForLong",
        "ReputationMonitorDown",
        "ReputationMonitorNotReady",
        "QueueLagHigh",
        "ActionsFailing",
        "PollErrors",
    } <= set(names)
    for r in rules:
        assert r["labels"]["severity"] in {"critical", "warning", "info"}, r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        assert r["annotations"]["runbook_url"] == f"docs/runbook.md#{r['alert'].lower()}"
        assert r["alert"] in sections, f"docs/runbook.md has no '## {r['alert']}'"


def test_image_and_chart_agree() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', project, flags=re.M)
    assert version and chart["appVersion"] == version.group(1)
    assert "USER 10001:10001" in dockerfile
    assert values["podSecurityContext"]["runAsUser"] == 10001
    assert f"REPMON_STATE_URL={values['config']['stateUrl']}" in dockerfile
    assert f"REPMON_RULES_DIR={values['config']['rulesDir']}" in dockerfile
    assert f"EXPOSE {values['config']['httpPort']}" in dockerfile
    assert 'ENTRYPOINT ["reputation-monitor"]' in dockerfile and 'CMD ["run"]' in dockerfile
