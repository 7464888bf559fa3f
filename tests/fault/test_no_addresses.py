"""No recipient address or phone number in any log line, metric or API answer.

Every sample in tests/data/samples goes through the in-process daemon three times: as it is,
wrapped in an SNS notification, and (SNS-wrapped) with its times moved to now, so that events
are counted rather than dropped as late. The daemon logs at debug level through its own
structlog setup into a buffer (stdlib warnings too); then /metrics and the API are scraped,
and none of it may hold an address or number that appears in a sample's recipient fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import structlog
from crash import create_queue, sqs_client

from conftest import eventually
from monitor import logs
from monitor.app import Daemon
from monitor.rulesfile import load_rules_dir
from monitor.sandbox import Sandbox
from monitor.sandbox.moto_server import queue_depth
from monitor.sandbox.traffic import iso, sns
from monitor.settings import load_settings

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
ADDRESS_KEYS = (
    "emailAddress",
    "destination",
    "recipients",
    "destinationPhoneNumber",
    "destination_phone_number",
    "to",
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"\+\d{8,15}")
# `"key": "value"` or `"key": [ ... ]` (a list cut short by a truncated sample included)
_FIELD = re.compile(
    r'"(' + "|".join(ADDRESS_KEYS) + r')"\s*:\s*(\[[^\]]*\]?|"(?:[^"\\]|\\.)*")', re.S
)
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
EPOCH_MS = (10**12, 2 * 10**12)


def sample_texts() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(SAMPLES.glob("*.json"))}


def _walk(value: Any, key: str | None, out: set[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, k, out)
    elif isinstance(value, list):
        for v in value:
            _walk(v, key, out)
    elif isinstance(value, str):
        if value.startswith("{"):  # an envelope's inner message, JSON in a string
            with contextlib.suppress(ValueError):
                _walk(json.loads(value), None, out)
        if key in ADDRESS_KEYS:
            out.update(EMAIL.findall(value) + PHONE.findall(value))


def recipient_addresses(texts: dict[str, str]) -> set[str]:
    """Every email address and phone number in a recipient field of any sample: from the
    parsed JSON, and by pattern from the text (which also covers the truncated sample)."""
    out: set[str] = set()
    for text in texts.values():
        with_escapes = text.replace('\\"', '"')  # fields inside an SNS `Message` string
        for m in _FIELD.finditer(with_escapes):
            out.update(EMAIL.findall(m.group(2)) + PHONE.findall(m.group(2)))
        with contextlib.suppress(ValueError):
            _walk(json.loads(text), None, out)
    return out


def fresh(value: Any, now: float) -> Any:
    """The sample with every timestamp moved to `now` (ISO strings, epoch milliseconds)."""
    if isinstance(value, dict):
        return {k: fresh(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [fresh(v, now) for v in value]
    if isinstance(value, str) and ISO.match(value):
        return iso(now)
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and EPOCH_MS[0] <= value < EPOCH_MS[1]
    ):
        return int(now * 1000)
    return value


def sns_text(text: str) -> str:
    """Any text as the `Message` of an SNS notification."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": "arn:aws:sns:us-east-1:111122223333:ses-events",
            "Message": text,
            "Timestamp": "2025-06-02T14:03:13.052Z",
        }
    )


def bodies(texts: dict[str, str], now: float) -> list[str]:
    out: list[str] = []
    for text in texts.values():
        out += [text, sns_text(text)]
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            out.append(sns(fresh(parsed, now)))
    return out


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """The daemon's own structlog setup (JSON, debug level) writing into a buffer, and
    stdlib warnings (aiohttp, botocore) into the same buffer."""
    buf = io.StringIO()
    saved = structlog.get_config()
    logs.configure("debug", "json")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=buf))
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        structlog.configure(**saved)


async def test_no_recipient_address_in_logs_metrics_or_api(
    sandbox: Sandbox,
    aws_env: dict[str, str],
    rules_dir: Path,
    tmp_path: Path,
    log_buffer: io.StringIO,
) -> None:
    texts = sample_texts()
    addresses = recipient_addresses(texts)
    assert len(texts) >= 40
    assert {a for a in addresses if "@" in a} and {a for a in addresses if a.startswith("+")}
    feed = bodies(texts, time.time())
    # The feed does carry them: a leak would have something to leak.
    assert all(any(a in b for b in feed) for a in addresses)

    async with sqs_client(sandbox) as sqs:
        queue = await create_queue(sqs, "addr")
        dlq = await create_queue(sqs, "addr-dlq")
        settings = load_settings(
            queue_urls=queue,
            rules_dir=str(rules_dir),
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            http_port=0,
            pollers=2,
            dead_letter_queue_url=dlq,  # undecodable bodies leave the queue: it empties
        )
        daemon = Daemon(settings, load_rules_dir(rules_dir), stop=asyncio.Event(), wait_time_s=1)
        task = asyncio.create_task(daemon.run())
        scraped: dict[str, str] = {}
        try:
            await eventually(lambda: daemon.started.is_set() or task.done(), what="start")
            assert not task.done(), task.result()
            for i in range(0, len(feed), 10):
                await sqs.send_message_batch(
                    QueueUrl=queue,
                    Entries=[
                        {"Id": str(j), "MessageBody": b} for j, b in enumerate(feed[i : i + 10])
                    ],
                )

            async def drained() -> bool:
                return await queue_depth(sqs, queue) == 0

            await eventually(drained, what="every sample consumed")
            assert daemon.http is not None
            base = f"http://127.0.0.1:{daemon.http.bound_port}"
            async with aiohttp.ClientSession() as http:

                async def get(path: str) -> str:
                    async with http.get(base + path) as resp:
                        assert resp.status == 200, path
                        text = await resp.text()
                        scraped[path] = text
                        return text

                await get("/metrics")
                tenants = json.loads(await get("/api/v1/tenants"))
                for t in tenants:
                    await get(f"/api/v1/tenants/{quote(t['tenant'], safe='')}")
                audit = json.loads(await get("/api/v1/audit?limit=5000"))
        finally:
            daemon.stop.set()
            code = await asyncio.wait_for(task, 30)
        assert code == 0

    captured = log_buffer.getvalue()
    # The capture and the scrapes hold what they should: events counted, undecodable
    # bodies logged, tenants and decisions served.
    for event in ("daemon_started", "message_undecodable", "daemon_stopped"):
        assert f'"event": "{event}"' in captured
    assert "repmon_events_total{" in scraped["/metrics"]
    assert {"acme", "unassigned"} <= {t["tenant"] for t in tenants} and audit

    haystacks = {"logs": captured} | scraped
    leaks = [
        (where, a)
        for a in sorted(addresses)
        for where, text in haystacks.items()
        if a.lower() in text.lower() or (a.startswith("+") and a[1:] in text)
    ]
    assert leaks == []
