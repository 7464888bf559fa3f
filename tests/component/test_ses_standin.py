"""The SES stand-in driven over HTTP by the real aiobotocore sesv2 client."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import botocore.session
import pytest
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from monitor.sandbox import SesStandIn, ThreadedSesStandIn
from monitor.sandbox.ses_standin import ROUTES, UNKNOWN_OPERATION

ACCOUNT = "111122223333"
REGION = "us-east-1"
IDENTITY = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/acme.example"
CONFIG_SET = f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/acme-tx"
TEMPLATE = f"arn:aws:ses:{REGION}:{ACCOUNT}:template/welcome"


# One session for the module: it caches the loaded service model across clients.
SESSION = get_session()


def client(url: str, config: Config | None = None) -> AbstractAsyncContextManager[Any]:
    created: AbstractAsyncContextManager[Any] = SESSION.create_client(
        "sesv2",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )
    return created


@pytest.fixture
async def standin() -> AsyncIterator[SesStandIn]:
    async with SesStandIn(account_id=ACCOUNT, region=REGION) as server:
        yield server


@pytest.fixture
async def ses(standin: SesStandIn) -> AsyncIterator[Any]:
    async with client(standin.url) as c:
        yield c


async def error_of(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        await call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"][
        "HTTPStatusCode"
    ]


def test_routes_are_the_botocore_model() -> None:
    model = botocore.session.get_session().get_service_model("sesv2")
    assert {r.operation for r in ROUTES} == {
        "CreateTenant",
        "GetTenant",
        "ListTenants",
        "DeleteTenant",
        "GetReputationEntity",
        "UpdateReputationEntityCustomerManagedStatus",
        "CreateConfigurationSet",
        "GetConfigurationSet",
        "PutConfigurationSetSendingOptions",
        "CreateTenantResourceAssociation",
        "DeleteTenantResourceAssociation",
        "ListTenantResources",
    }
    for route in ROUTES:
        op = model.operation_model(route.operation)
        assert (route.method, route.uri) == (op.http["method"], op.http["requestUri"])
        uri_members = {
            name
            for name, shape in op.input_shape.members.items()
            if shape.serialization.get("location") == "uri"
        }
        assert set(re.findall(r"{(\w+)}", route.uri)) == uri_members
        assert set(route.required) == set(op.input_shape.required_members)


async def test_tenant_lifecycle(ses: Any) -> None:
    before = datetime.now(UTC)
    created = await ses.create_tenant(TenantName="acme", Tags=[{"Key": "team", "Value": "mail"}])
    assert re.fullmatch(r"tn-[0-9a-f]{32}", created["TenantId"])
    assert (
        created["TenantArn"] == f"arn:aws:ses:{REGION}:{ACCOUNT}:tenant/acme/{created['TenantId']}"
    )
    assert created["SendingStatus"] == "ENABLED"
    assert before - timedelta(seconds=1) <= created["CreatedTimestamp"] <= datetime.now(UTC)

    tenant = (await ses.get_tenant(TenantName="acme"))["Tenant"]
    assert tenant["TenantArn"] == created["TenantArn"]
    assert tenant["Tags"] == [{"Key": "team", "Value": "mail"}]

    await ses.delete_tenant(TenantName="acme")
    assert await error_of(ses.get_tenant, TenantName="acme") == ("NotFoundException", 404)
    assert (await ses.list_tenants())["Tenants"] == []


async def test_list_tenants_pages_and_filters(standin: SesStandIn, ses: Any) -> None:
    names = ["t-e", "t-a", "t-d", "t-b", "t-c"]
    for name in names:
        standin.add_tenant(name)

    first = await ses.list_tenants(PageSize=2)
    assert [t["TenantName"] for t in first["Tenants"]] == ["t-a", "t-b"]
    assert set(first["Tenants"][0]) == {
        "TenantName",
        "TenantId",
        "TenantArn",
        "CreatedTimestamp",
        "SendingStatus",
    }
    pages = [
        [t["TenantName"] for t in page["Tenants"]]
        async for page in ses.get_paginator("list_tenants").paginate(
            PaginationConfig={"PageSize": 2}
        )
    ]
    assert pages == [["t-a", "t-b"], ["t-c", "t-d"], ["t-e"]]
    assert "NextToken" not in await ses.list_tenants(PageSize=5)

    # A tenant deleted between pages does not derail the walk.
    second = await ses.list_tenants(PageSize=2, NextToken=first["NextToken"])
    await ses.delete_tenant(TenantName="t-e")
    third = await ses.list_tenants(PageSize=2, NextToken=second["NextToken"])
    assert [t["TenantName"] for t in third["Tenants"]] == []
    assert "NextToken" not in third

    only_b = await ses.list_tenants(Filter={"TENANT_NAME_CONTAINS": "-b"})
    assert [t["TenantName"] for t in only_b["Tenants"]] == ["t-b"]


async def test_tenant_resources(ses: Any) -> None:
    await ses.create_tenant(TenantName="acme")
    for arn in (TEMPLATE, IDENTITY, CONFIG_SET):
        await ses.create_tenant_resource_association(TenantName="acme", ResourceArn=arn)

    listed = (await ses.list_tenant_resources(TenantName="acme"))["TenantResources"]
    assert sorted((r["ResourceType"], r["ResourceArn"]) for r in listed) == [
        ("CONFIGURATION_SET", CONFIG_SET),
        ("EMAIL_IDENTITY", IDENTITY),
        ("EMAIL_TEMPLATE", TEMPLATE),
    ]
    config_sets = await ses.list_tenant_resources(
        TenantName="acme", Filter={"RESOURCE_TYPE": "CONFIGURATION_SET"}
    )
    assert config_sets["TenantResources"] == [
        {"ResourceType": "CONFIGURATION_SET", "ResourceArn": CONFIG_SET}
    ]
    pages = [
        len(page["TenantResources"])
        async for page in ses.get_paginator("list_tenant_resources").paginate(
            TenantName="acme", PaginationConfig={"PageSize": 2}
        )
    ]
    assert pages == [2, 1]

    await ses.delete_tenant_resource_association(TenantName="acme", ResourceArn=IDENTITY)
    remaining = (await ses.list_tenant_resources(TenantName="acme"))["TenantResources"]
    assert IDENTITY not in {r["ResourceArn"] for r in remaining}
    assert len(remaining) == 2


async def test_pause_and_resume_tenant(standin: SesStandIn, ses: Any) -> None:
    arn = standin.add_tenant("acme")
    standin.add_tenant("other")

    await ses.update_reputation_entity_customer_managed_status(
        ReputationEntityType="RESOURCE", ReputationEntityReference=arn, SendingStatus="DISABLED"
    )
    assert (await ses.get_tenant(TenantName="acme"))["Tenant"]["SendingStatus"] == "DISABLED"
    entity = (
        await ses.get_reputation_entity(
            ReputationEntityType="RESOURCE", ReputationEntityReference=arn
        )
    )["ReputationEntity"]
    assert entity["ReputationEntityReference"] == arn
    assert entity["CustomerManagedStatus"]["Status"] == "DISABLED"
    assert entity["AwsSesManagedStatus"]["Status"] == "ENABLED"
    assert entity["SendingStatusAggregate"] == "DISABLED"
    disabled = await ses.list_tenants(Filter={"SENDING_STATUS": "DISABLED"})
    assert [t["TenantName"] for t in disabled["Tenants"]] == ["acme"]

    await ses.update_reputation_entity_customer_managed_status(
        ReputationEntityType="RESOURCE", ReputationEntityReference=arn, SendingStatus="ENABLED"
    )
    listed = {t["TenantName"]: t["SendingStatus"] for t in (await ses.list_tenants())["Tenants"]}
    assert listed == {"acme": "ENABLED", "other": "ENABLED"}
    assert standin.sending_status("acme") == "ENABLED"


async def test_ses_managed_disable_wins_over_reinstated(standin: SesStandIn, ses: Any) -> None:
    arn = standin.add_tenant("acme")
    await ses.update_reputation_entity_customer_managed_status(
        ReputationEntityType="RESOURCE", ReputationEntityReference=arn, SendingStatus="REINSTATED"
    )
    assert standin.sending_status("acme") == "REINSTATED"

    standin.set_aws_managed_status(arn, "DISABLED", cause="complaint rate")
    entity = (
        await ses.get_reputation_entity(
            ReputationEntityType="RESOURCE", ReputationEntityReference=arn
        )
    )["ReputationEntity"]
    assert entity["AwsSesManagedStatus"]["Cause"] == "complaint rate"
    assert entity["SendingStatusAggregate"] == "DISABLED"
    assert (await ses.get_tenant(TenantName="acme"))["Tenant"]["SendingStatus"] == "DISABLED"


async def test_configuration_set_sending_options(ses: Any) -> None:
    await ses.create_configuration_set(
        ConfigurationSetName="acme-tx", ReputationOptions={"ReputationMetricsEnabled": True}
    )
    got = await ses.get_configuration_set(ConfigurationSetName="acme-tx")
    assert got["SendingOptions"] == {"SendingEnabled": True}
    assert got["ReputationOptions"] == {"ReputationMetricsEnabled": True}

    await ses.put_configuration_set_sending_options(
        ConfigurationSetName="acme-tx", SendingEnabled=False
    )
    got = await ses.get_configuration_set(ConfigurationSetName="acme-tx")
    assert got["SendingOptions"] == {"SendingEnabled": False}


ERRORS = [
    # (operation, kwargs, error code, HTTP status); the tenant acme owns IDENTITY
    ("get_tenant", {"TenantName": "ghost"}, "NotFoundException", 404),
    ("delete_tenant", {"TenantName": "ghost"}, "NotFoundException", 404),
    ("create_tenant", {"TenantName": "acme"}, "AlreadyExistsException", 400),
    ("create_tenant", {"TenantName": "has space"}, "BadRequestException", 400),
    ("list_tenants", {"NextToken": "%%%"}, "BadRequestException", 400),
    ("list_tenants", {"PageSize": 0}, "BadRequestException", 400),
    ("list_tenants", {"Filter": {"SENDING_STATUS": "PAUSED"}}, "BadRequestException", 400),
    (
        "create_tenant_resource_association",
        {"TenantName": "ghost", "ResourceArn": IDENTITY},
        "NotFoundException",
        404,
    ),
    (
        "create_tenant_resource_association",
        {"TenantName": "acme", "ResourceArn": IDENTITY},
        "AlreadyExistsException",
        400,
    ),
    (
        "create_tenant_resource_association",
        {"TenantName": "acme", "ResourceArn": "not-an-arn"},
        "BadRequestException",
        400,
    ),
    (
        "create_tenant_resource_association",
        {"TenantName": "acme", "ResourceArn": IDENTITY.replace(ACCOUNT, "999999999999")},
        "BadRequestException",
        400,
    ),
    (
        "delete_tenant_resource_association",
        {"TenantName": "acme", "ResourceArn": TEMPLATE},
        "NotFoundException",
        404,
    ),
    ("list_tenant_resources", {"TenantName": "ghost"}, "NotFoundException", 404),
    (
        "list_tenant_resources",
        {"TenantName": "acme", "Filter": {"RESOURCE_TYPE": "BUCKET"}},
        "BadRequestException",
        400,
    ),
    (
        "get_reputation_entity",
        {"ReputationEntityType": "RESOURCE", "ReputationEntityReference": IDENTITY},
        "NotFoundException",
        404,
    ),
    (
        "get_reputation_entity",
        {"ReputationEntityType": "TENANT", "ReputationEntityReference": IDENTITY},
        "BadRequestException",
        400,
    ),
    (
        "update_reputation_entity_customer_managed_status",
        {
            "ReputationEntityType": "RESOURCE",
            "ReputationEntityReference": IDENTITY,
            "SendingStatus": "DISABLED",
        },
        "BadRequestException",
        400,
    ),
    (
        "create_configuration_set",
        {"ConfigurationSetName": "acme-tx"},
        "AlreadyExistsException",
        400,
    ),
    ("get_configuration_set", {"ConfigurationSetName": "ghost"}, "NotFoundException", 404),
    (
        "put_configuration_set_sending_options",
        {"ConfigurationSetName": "ghost", "SendingEnabled": True},
        "NotFoundException",
        404,
    ),
]


@pytest.mark.parametrize(
    ("operation", "kwargs", "code", "status"),
    ERRORS,
    ids=[f"{op}-{code}-{i}" for i, (op, _, code, _) in enumerate(ERRORS)],
)
async def test_errors_reach_the_client_as_their_code(
    standin: SesStandIn, ses: Any, operation: str, kwargs: dict[str, Any], code: str, status: int
) -> None:
    standin.add_tenant("acme", resources=[IDENTITY])
    standin.add_configuration_set("acme-tx")
    call = getattr(ses, operation)
    assert await error_of(call, **kwargs) == (code, status)
    # The modelled exception class, not just a generic ClientError.
    with pytest.raises(getattr(ses.exceptions, code)):
        await call(**kwargs)


async def test_invalid_sending_status_and_deleted_tenant_arn(standin: SesStandIn, ses: Any) -> None:
    arn = standin.add_tenant("acme")
    update = ses.update_reputation_entity_customer_managed_status
    bad_status = await error_of(
        update, ReputationEntityType="RESOURCE", ReputationEntityReference=arn, SendingStatus="OFF"
    )
    assert bad_status == ("BadRequestException", 400)
    await ses.delete_tenant(TenantName="acme")
    gone = await error_of(
        update,
        ReputationEntityType="RESOURCE",
        ReputationEntityReference=arn,
        SendingStatus="DISABLED",
    )
    assert gone == ("BadRequestException", 400)


async def test_missing_required_members_are_bad_requests(standin: SesStandIn) -> None:
    # botocore validates required members client-side; switch that off to reach the server.
    async with client(standin.url, Config(parameter_validation=False)) as ses:
        assert await error_of(ses.create_tenant) == ("BadRequestException", 400)
        assert await error_of(ses.get_tenant) == ("BadRequestException", 400)
        assert await error_of(ses.create_tenant_resource_association, TenantName="x") == (
            "BadRequestException",
            400,
        )
    assert [c.status for c in standin.calls] == [400, 400, 400]


async def test_unknown_route_is_a_clear_404(standin: SesStandIn) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{standin.url}/v2/email/nothing-here", json={}) as response,
    ):
        body = await response.json()
        assert response.status == 404
        assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert "POST /v2/email/nothing-here" in body["message"]
    assert standin.calls[-1].operation == UNKNOWN_OPERATION
    assert standin.calls[-1].status == 404


async def test_call_log(standin: SesStandIn, ses: Any) -> None:
    arn = standin.add_tenant("acme")
    await ses.get_tenant(TenantName="acme")
    await ses.update_reputation_entity_customer_managed_status(
        ReputationEntityType="RESOURCE", ReputationEntityReference=arn, SendingStatus="DISABLED"
    )
    await error_of(ses.get_tenant, TenantName="ghost")

    calls = standin.calls
    assert [(c.operation, c.status) for c in calls] == [
        ("GetTenant", 200),
        ("UpdateReputationEntityCustomerManagedStatus", 200),
        ("GetTenant", 404),
    ]
    # URI members and body members land in one params dict.
    assert calls[1].params == {
        "ReputationEntityType": "RESOURCE",
        "ReputationEntityReference": arn,
        "SendingStatus": "DISABLED",
    }
    assert calls[0].time <= calls[1].time <= calls[2].time <= time.monotonic()
    assert [c.params["TenantName"] for c in standin.calls_to("GetTenant")] == ["acme", "ghost"]
    with pytest.raises(AttributeError):
        calls[0].status = 500  # type: ignore[misc]
    standin.clear_calls()
    assert standin.calls == []


async def test_fault_hook_throttles_one_operation(standin: SesStandIn) -> None:
    arn = standin.add_tenant("acme")
    seen: list[str] = []

    def fault(operation: str) -> tuple[int, str] | None:
        seen.append(operation)
        if operation == "UpdateReputationEntityCustomerManagedStatus":
            return 429, "TooManyRequestsException"
        return None

    standin.fault = fault
    # In botocore's retry config `max_attempts` counts retries (legacy semantics: 1 means two
    # calls); `total_max_attempts` counts calls.
    async with client(standin.url, Config(retries={"total_max_attempts": 1})) as ses:
        throttled = await error_of(
            ses.update_reputation_entity_customer_managed_status,
            ReputationEntityType="RESOURCE",
            ReputationEntityReference=arn,
            SendingStatus="DISABLED",
        )
        assert throttled == ("TooManyRequestsException", 429)
        assert (await ses.get_tenant(TenantName="acme"))["Tenant"]["SendingStatus"] == "ENABLED"
    assert seen == ["UpdateReputationEntityCustomerManagedStatus", "GetTenant"]
    assert [c.status for c in standin.calls] == [429, 200]


async def test_per_operation_delay(standin: SesStandIn, ses: Any) -> None:
    standin.add_tenant("acme")
    standin.delays["GetTenant"] = 0.2
    started = time.monotonic()
    await ses.get_tenant(TenantName="acme")
    slow = time.monotonic() - started
    started = time.monotonic()
    await ses.list_tenants()
    fast = time.monotonic() - started
    assert slow >= 0.19
    assert fast < slow


async def test_threaded_variant_serves_while_this_loop_runs() -> None:
    with ThreadedSesStandIn(region="eu-west-1", account_id="444455556666") as threaded:
        arn = threaded.add_tenant("acme")
        assert arn.startswith("arn:aws:ses:eu-west-1:444455556666:tenant/acme/tn-")
        async with client(threaded.url) as ses:
            await ses.update_reputation_entity_customer_managed_status(
                ReputationEntityType="RESOURCE",
                ReputationEntityReference=arn,
                SendingStatus="DISABLED",
            )
            tenant = (await ses.get_tenant(TenantName="acme"))["Tenant"]
        assert tenant["SendingStatus"] == "DISABLED"
        assert [c.operation for c in threaded.calls_to("GetTenant")] == ["GetTenant"]
        url = threaded.url
    with pytest.raises(RuntimeError):
        _ = threaded.url
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http, http.get(url):
            pass
