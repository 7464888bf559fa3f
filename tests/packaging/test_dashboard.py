"""The Grafana dashboard and the alert rules query only metrics a running daemon exports.

The real daemon runs in-process against moto's SQS and the SES stand-in (as in
tests/integration/test_daemon.py), with traffic that makes every metric family carry samples: a
tenant crossing its bounce threshold (so a pause action runs), an undecodable body, and a queue
that does not exist (poll errors). Its /metrics is then checked against every `repmon_` name,
and every label name, that dashboards/reputation-monitor.json and dashboards/alerts.yaml use.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiobotocore.session import get_session
from prometheus_client.parser import text_string_to_metric_families

from conftest import eventually
from monitor.app import Daemon
from monitor.rulesfile import load_rules_dir, write_rules_dir
from monitor.sandbox import Sandbox
from monitor.sandbox.traffic import TenantProfile, Traffic, sns
from monitor.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboards" / "reputation-monitor.json"
ALERTS = ROOT / "dashboards" / "alerts.yaml"
README = ROOT / "README.md"

RULES = """\
policies:
  dash:                       # the standard thresholds at a volume a test reaches in a second
    window: 24h
    min_volume: 20
    email:
      bounce:    {warn: 0.025, pause: 0.05}
      complaint: {warn: 0.0005, pause: 0.001}
default_policy: dash
"""

DECLARED_ONLY = {"repmon_tenant_pause_eta_seconds": {"tenant", "rate"}}
NAME = re.compile(r"\brepmon_[a-z_]+")
SUFFIX = re.compile(r"_(bucket|count|sum|total)$")
SELECTOR = re.compile(r"\b(repmon_[a-z_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
# Added by Prometheus at scrape time (job, instance; namespace/pod by Kubernetes discovery), or
# part of the histogram format.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "le"}


def family(name: str) -> str:
    """`repmon_x_total` / `_bucket` / `_count` / `_sum` → the metric family `repmon_x`."""
    return SUFFIX.sub("", name)


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(var["definition"])
    return exprs


def alert_exprs() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def readme_metrics() -> set[str]:
    """Names in the README's metrics table (`| \\`repmon_x\\` | type | labels |`)."""
    return set(re.findall(r"^\| `(repmon_[a-z_]+)` \|", README.read_text(), flags=re.M))


def test_dashboard_is_importable() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert "id" not in board or board["id"] is None  # Grafana assigns it on import
    assert not board.get("__inputs")  # no import-time prompt: the datasource is a variable
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["tenant"]["definition"] == "label_values(repmon_tenant_status, tenant)"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in board["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]


def test_dashboard_and_alerts_use_only_the_readme_metrics() -> None:
    documented = readme_metrics()
    assert "repmon_events_total" in documented and "repmon_ready" in documented
    used = {n for e in dashboard_exprs() + alert_exprs() for n in NAME.findall(e)}
    by_family = {family(n) for n in documented}
    unknown = sorted(n for n in used if n not in documented and family(n) not in by_family)
    assert not unknown, f"not in the README's metrics table: {unknown}"


@pytest.fixture
async def sqs(aws_env: dict[str, str]) -> AsyncIterator[Any]:
    async with get_session().create_client("sqs") as client:
        yield client


def bodies_for(tenant: str) -> list[str]:
    """About 45 recipients of a tenant bouncing at 30 %: a pause crossing at min_volume 20."""
    traffic = Traffic([TenantProfile(tenant, bounce=0.3, complaint=0.02, transient=0.05)], seed=3)
    now = time.time()
    out: list[str] = []
    for _ in range(30):
        mail = traffic.mail(now)
        out.extend(sns(r) for r in traffic.records(mail, now))
    return out


async def test_every_metric_the_dashboard_and_alerts_query_is_exported(
    sandbox: Sandbox, sqs: Any, tmp_path: Path
) -> None:
    tenant = f"dash-{uuid.uuid4().hex[:6]}"
    sandbox.ses.add_tenant(tenant)
    rules_dir = write_rules_dir(tmp_path / "rules", {"dash.yaml": RULES})
    queue = (await sqs.create_queue(QueueName=f"dash-{uuid.uuid4().hex[:8]}"))["QueueUrl"]
    missing = queue.rsplit("/", 1)[0] + f"/no-such-queue-{uuid.uuid4().hex[:8]}"

    settings = load_settings(
        queue_urls=f"{queue},{missing}",
        rules_dir=str(rules_dir),
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        http_port=0,
        pollers=1,
    )
    daemon = Daemon(settings, load_rules_dir(rules_dir), stop=asyncio.Event(), wait_time_s=1)
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: daemon.started.is_set() or task.done(), what="daemon start")
    if task.done():
        task.result()
    try:
        bodies = [*bodies_for(tenant), '{"eventType": "Bounce", "bounce": ']
        for i in range(0, len(bodies), 10):
            await sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])
                ],
            )
        reg = daemon.registry
        await eventually(
            lambda: reg.get_sample_value(
                "repmon_actions_total", {"action": "ses_tenant", "result": "ok"}
            ),
            what="the pause action done",
        )
        await eventually(
            lambda: (
                any(
                    s.name == "repmon_undecodable_messages_total" and s.value > 0
                    for m in reg.collect()
                    for s in m.samples
                )
                and any(
                    s.name == "repmon_queue_poll_errors_total" and s.value > 0
                    for m in reg.collect()
                    for s in m.samples
                )
            ),
            what="undecodable and poll-error samples",
        )
        assert daemon.http is not None
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{daemon.http.bound_port}/metrics") as resp,
        ):
            assert resp.status == 200
            text = await resp.text()
    finally:
        daemon.stop.set()
        assert await asyncio.wait_for(task, 30) == 0

    scraped: dict[str, set[str]] = {}  # family → label names seen on its samples
    for fam in text_string_to_metric_families(text):
        if not fam.name.startswith("repmon_"):
            continue
        if not fam.samples:
            # A projection needs a minute of a warning tenant's history, more than this test
            # runs: its family is declared (HELP/TYPE) with the labels the engine test proves.
            if fam.name in DECLARED_ONLY:
                scraped[fam.name] = DECLARED_ONLY[fam.name]
            continue
        labels = scraped.setdefault(family(fam.name), set())
        for sample in fam.samples:
            labels.update(sample.labels)
    every_label = set().union(*scraped.values()) | TARGET_LABELS

    sources = {
        "dashboards/reputation-monitor.json": dashboard_exprs(),
        "alerts.yaml": alert_exprs(),
    }
    referenced: set[str] = set()
    for where, exprs in sources.items():
        for expr in exprs:
            for name in NAME.findall(expr):
                referenced.add(name)
                assert family(name) in scraped, f"{where}: {name} has no samples in /metrics"
            for name, matchers in SELECTOR.findall(expr):
                for label in MATCHER.findall(matchers):
                    assert label in scraped[family(name)] | TARGET_LABELS, (
                        f"{where}: {name} has no label {label!r} in /metrics: {expr}"
                    )
            for group in GROUPING.findall(expr):
                for label in filter(None, (x.strip() for x in group.split(","))):
                    assert label in every_label, f"{where}: no metric has label {label!r}: {expr}"
    # Every family the README documents is on the dashboard or in an alert.
    assert {family(n) for n in readme_metrics()} <= {family(n) for n in referenced}
