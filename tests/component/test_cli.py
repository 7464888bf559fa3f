"""The command line as a user runs it: a subprocess, its exit code and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import __version__

REPO = Path(__file__).resolve().parents[2]


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REPMON_")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        env=base | (env or {}),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"reputation-monitor {__version__}"


def test_rules_check_accepts_the_shipped_rules() -> None:
    r = cli("rules", "check", "rules")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 policies (monitor, standard, strict)" in r.stdout


def test_rules_check_reports_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "presets.yaml").write_text((REPO / "rules" / "presets.yaml").read_text())
    (tmp_path / "tenants.yaml").write_text(
        "tenants:\n  acme:\n    policy: strcit\n  bigco: {policy: standard, colour: red}\n"
    )
    r = cli("rules", "check", str(tmp_path))
    assert r.returncode == 1
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith(
        f"{tmp_path}/tenants.yaml:3: tenants.acme.policy: unknown policy 'strcit'"
    )
    assert lines[1].startswith(f"{tmp_path}/tenants.yaml:4: unknown key 'colour' in tenants.bigco")


def test_run_refuses_broken_rules_with_the_same_lines(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("policies:\n  p: {email: {bounce: {warn: 0.2, pause: 0.1}}}\n")
    r = cli(
        "run", env={"REPMON_RULES_DIR": str(tmp_path), "REPMON_QUEUE_URLS": "http://127.0.0.1:1/q"}
    )
    assert r.returncode == 1
    assert f"{tmp_path}/x.yaml:2: policies.p.email.bounce: warn 0.2 is above pause 0.1" in r.stderr


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"REPMON_HTTP_PORT": "nine"}, [], "invalid setting REPMON_HTTP_PORT: "),
        ({"REPMON_POLLERS": "0"}, [], "invalid setting REPMON_POLLERS: "),
        (
            {"REPMON_STATE_URL": "postgres://x"},
            [],
            "invalid setting REPMON_STATE_URL: must be sqlite:///PATH",
        ),
        (
            {"REPMON_QUEUE_URLS": "my-queue"},
            [],
            "invalid setting REPMON_QUEUE_URLS: 'my-queue' is not an SQS",
        ),
        ({}, ["--log-level", "loud"], "invalid setting REPMON_LOG_LEVEL: "),
        ({}, [], "invalid setting REPMON_QUEUE_URLS: required for run"),
    ],
)
def test_bad_setting_exits_2_naming_it(env: dict[str, str], args: list[str], message: str) -> None:
    r = cli("run", *args, env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_unknown_command_is_a_usage_error() -> None:
    assert cli("frobnicate").returncode == 2


def test_replay_of_the_sample_set_runs_and_acts_on_nothing() -> None:
    r = cli("replay", "--json", "tests/data/samples")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert {x["type"] for x in lines} <= {"decision", "tenant"}
    assert any(x["type"] == "tenant" and x["tenant"] == "acme" for x in lines)
    assert all(
        a["result"] == "not_run" for x in lines if x["type"] == "decision" for a in x["actions"]
    )
