"""moto's server on a free local port, and the Sandbox's environment for the AWS SDK."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from aiobotocore.session import get_session

from monitor.sandbox import MotoServer, Sandbox

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def refuses_connections(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_binds_loopback_on_a_free_port(moto: MotoServer) -> None:
    parts = urlsplit(moto.url)
    assert (parts.scheme, parts.hostname) == ("http", "127.0.0.1")
    assert parts.port not in (None, 0, 5000)
    with MotoServer() as second:
        assert urlsplit(second.url).port != parts.port
        url = second.url
    assert refuses_connections(url)
    with pytest.raises(RuntimeError):
        _ = second.url


async def test_sqs_send_and_receive(moto: MotoServer) -> None:
    async with get_session().create_client(
        "sqs", endpoint_url=moto.url, region_name="us-east-1", **CREDENTIALS
    ) as sqs:
        queue_url = (await sqs.create_queue(QueueName="events"))["QueueUrl"]
        await sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"eventType": "Send"}))
        received = await sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    assert [json.loads(m["Body"]) for m in received["Messages"]] == [{"eventType": "Send"}]


async def test_reset_drops_resources(moto: MotoServer) -> None:
    async with get_session().create_client(
        "sqs", endpoint_url=moto.url, region_name="us-east-1", **CREDENTIALS
    ) as sqs:
        await sqs.create_queue(QueueName="doomed")
        moto.reset()
        listed = await sqs.list_queues()
    assert listed.get("QueueUrls", []) == []


async def test_sandbox_env_routes_each_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """No endpoint_url anywhere: the SDK must find moto and the stand-in from env() alone."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    with Sandbox(region="eu-west-1") as sandbox:
        env = sandbox.env()
        assert env["AWS_ENDPOINT_URL_SESV2"] == sandbox.ses.url != sandbox.moto.url
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        session = get_session()
        async with (
            session.create_client("sqs") as sqs,
            session.create_client("dynamodb") as dynamodb,
            session.create_client("events") as events,
            session.create_client("sesv2") as sesv2,
        ):
            queue_url = (await sqs.create_queue(QueueName="sandboxed"))["QueueUrl"]
            # moto's backends are process-global, so only ask that DynamoDB answered.
            assert "TableNames" in await dynamodb.list_tables()
            put = await events.put_events(
                Entries=[{"Source": "test", "DetailType": "probe", "Detail": "{}"}]
            )
            tenant = await sesv2.create_tenant(TenantName="acme")
        assert sqs.meta.endpoint_url == dynamodb.meta.endpoint_url == sandbox.moto.url
        assert events.meta.endpoint_url == sandbox.moto.url
        assert sesv2.meta.endpoint_url == sandbox.ses.url
        assert "sandboxed" in queue_url
        assert put["FailedEntryCount"] == 0
        assert tenant["TenantArn"].startswith("arn:aws:ses:eu-west-1:")
        assert [c.operation for c in sandbox.ses.calls] == ["CreateTenant"]
        urls = (sandbox.moto.url, sandbox.ses.url)
    assert all(refuses_connections(url) for url in urls)
