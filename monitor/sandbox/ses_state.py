"""In-memory state behind the SES stand-in: tenants, their resources, reputation entities and
configuration sets.

No I/O and no locking: `ses_standin` serialises access and maps `SesError` onto restJson1 error
responses. Each operation method takes the merged request parameters (URI members and JSON body,
named as in botocore's `sesv2` model) and returns the response body as a JSON-ready dict.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

Json = dict[str, Any]
T = TypeVar("T")

SENDING_STATUSES = frozenset({"ENABLED", "REINSTATED", "DISABLED"})
RESOURCE_TYPES = {
    "identity": "EMAIL_IDENTITY",
    "configuration-set": "CONFIGURATION_SET",
    "template": "EMAIL_TEMPLATE",
}
# The model's documentation of TenantName: up to 64 letters, digits, hyphens and underscores.
_TENANT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SES_ARN = re.compile(
    r"arn:aws[a-z-]*:ses:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>[a-z-]+)/(?P<rest>.+)"
)
# Neither default nor maximum page size is documented; these match other SESv2 list calls.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class SesError(Exception):
    """A modelled SESv2 error: its shape name (the botocore error code) and HTTP status."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


def bad_request(message: str) -> SesError:
    return SesError("BadRequestException", 400, message)


def not_found(message: str) -> SesError:
    return SesError("NotFoundException", 404, message)


def already_exists(message: str) -> SesError:
    return SesError("AlreadyExistsException", 400, message)


@dataclass
class StatusRecord:
    status: str
    updated: float
    cause: str | None = None

    def to_json(self) -> Json:
        out: Json = {"Status": self.status, "LastUpdatedTimestamp": self.updated}
        if self.cause is not None:
            out["Cause"] = self.cause
        return out


@dataclass
class ReputationEntity:
    arn: str
    customer: StatusRecord
    aws: StatusRecord

    @property
    def aggregate(self) -> str:
        # As documented for SendingStatusAggregate: either side DISABLED wins; otherwise a
        # customer REINSTATED shows through.
        statuses = {self.customer.status, self.aws.status}
        if "DISABLED" in statuses:
            return "DISABLED"
        return "REINSTATED" if "REINSTATED" in statuses else "ENABLED"

    def to_json(self) -> Json:
        return {
            "ReputationEntityReference": self.arn,
            "ReputationEntityType": "RESOURCE",
            "CustomerManagedStatus": self.customer.to_json(),
            "AwsSesManagedStatus": self.aws.to_json(),
            "SendingStatusAggregate": self.aggregate,
        }


@dataclass
class Tenant:
    name: str
    id: str
    arn: str
    created: float
    tags: list[Json]
    suppression: Json | None
    resources: dict[str, str] = field(default_factory=dict)  # ARN -> ResourceType


class SesState:
    def __init__(
        self, *, account_id: str, region: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.account_id = account_id
        self.region = region
        self._clock = clock
        self._tenants: dict[str, Tenant] = {}
        self._entities: dict[str, ReputationEntity] = {}
        self._config_sets: dict[str, Json] = {}

    # --- seeding helpers (no validation beyond what the operations do) ---

    def configuration_set_arn(self, name: str) -> str:
        return f"arn:aws:ses:{self.region}:{self.account_id}:configuration-set/{name}"

    def tenant_arn(self, name: str) -> str:
        return self._tenant(name).arn

    def sending_status(self, tenant_name: str) -> str:
        return self._entities[self._tenant(tenant_name).arn].aggregate

    def set_aws_managed_status(self, arn: str, status: str, cause: str | None = None) -> None:
        """What SES itself would do to a tenant (e.g. disable it after a finding)."""
        self._entity(arn, missing=not_found).aws = StatusRecord(status, self._clock(), cause)

    # --- tenants ---

    def create_tenant(self, p: Json) -> Json:
        name = _string(p, "TenantName")
        if not _TENANT_NAME.fullmatch(name):
            raise bad_request(
                f"Invalid TenantName {name!r}: up to 64 letters, digits, '-' and '_' only."
            )
        if name in self._tenants:
            raise already_exists(f"Tenant {name} already exists.")
        tags = _tags(p.get("Tags", []))
        suppression = p.get("SuppressionAttributes")
        if suppression is not None and not isinstance(suppression, dict):
            raise bad_request("SuppressionAttributes must be an object.")
        tenant_id = f"tn-{uuid.uuid4().hex}"
        now = self._clock()
        arn = f"arn:aws:ses:{self.region}:{self.account_id}:tenant/{name}/{tenant_id}"
        tenant = Tenant(name, tenant_id, arn, now, tags, suppression)
        self._tenants[name] = tenant
        self._entities[arn] = ReputationEntity(
            arn, StatusRecord("ENABLED", now), StatusRecord("ENABLED", now)
        )
        return self._tenant_json(tenant, full=True)

    def get_tenant(self, p: Json) -> Json:
        return {"Tenant": self._tenant_json(self._tenant(_string(p, "TenantName")), full=True)}

    def list_tenants(self, p: Json) -> Json:
        tenants = sorted(self._tenants.values(), key=lambda t: t.name)
        for key, value in _filter(p).items():
            if key == "TENANT_NAME_CONTAINS":
                tenants = [t for t in tenants if value in t.name]
            elif key == "SENDING_STATUS":
                if value not in SENDING_STATUSES:
                    raise bad_request(f"Unknown SENDING_STATUS {value!r}.")
                tenants = [t for t in tenants if self._entities[t.arn].aggregate == value]
            else:
                raise bad_request(f"Unsupported ListTenants filter key {key!r}.")
        page, token = _page([(t.name, t) for t in tenants], p)
        out: Json = {"Tenants": [self._tenant_json(t, full=False) for t in page]}
        if token is not None:
            out["NextToken"] = token
        return out

    def delete_tenant(self, p: Json) -> Json:
        tenant = self._tenant(_string(p, "TenantName"))
        # The resources themselves stay; only the associations and the tenant's entity go.
        del self._tenants[tenant.name]
        del self._entities[tenant.arn]
        return {}

    # --- tenant resources ---

    def create_tenant_resource_association(self, p: Json) -> Json:
        tenant = self._tenant(_string(p, "TenantName"))
        arn = _string(p, "ResourceArn")
        resource_type = self._resource_type(arn)
        if arn in tenant.resources:
            raise already_exists(f"Resource {arn} is already associated with {tenant.name}.")
        tenant.resources[arn] = resource_type
        return {}

    def delete_tenant_resource_association(self, p: Json) -> Json:
        tenant = self._tenant(_string(p, "TenantName"))
        arn = _string(p, "ResourceArn")
        if tenant.resources.pop(arn, None) is None:
            raise not_found(f"Resource {arn} is not associated with {tenant.name}.")
        return {}

    def list_tenant_resources(self, p: Json) -> Json:
        tenant = self._tenant(_string(p, "TenantName"))
        resources = sorted(tenant.resources.items())
        for key, value in _filter(p).items():
            if key != "RESOURCE_TYPE":
                raise bad_request(f"Unsupported ListTenantResources filter key {key!r}.")
            if value not in RESOURCE_TYPES.values():
                raise bad_request(f"Unknown RESOURCE_TYPE {value!r}.")
            resources = [r for r in resources if r[1] == value]
        page, token = _page([(arn, (arn, kind)) for arn, kind in resources], p)
        out: Json = {"TenantResources": [{"ResourceType": k, "ResourceArn": a} for a, k in page]}
        if token is not None:
            out["NextToken"] = token
        return out

    # --- reputation entities ---

    def get_reputation_entity(self, p: Json) -> Json:
        _entity_type(p)
        entity = self._entity(_string(p, "ReputationEntityReference"), missing=not_found)
        return {"ReputationEntity": entity.to_json()}

    def update_reputation_entity_customer_managed_status(self, p: Json) -> Json:
        """The model lists no NotFoundException for this operation, so an ARN that is not a
        known tenant's (malformed, another kind of resource, a deleted tenant) is a
        BadRequestException, like any other invalid input."""
        _entity_type(p)
        status = _string(p, "SendingStatus")
        if status not in SENDING_STATUSES:
            raise bad_request(f"Invalid SendingStatus {status!r}.")
        entity = self._entity(_string(p, "ReputationEntityReference"), missing=bad_request)
        entity.customer = StatusRecord(status, self._clock())
        return {}

    # --- configuration sets ---

    def create_configuration_set(self, p: Json) -> Json:
        name = _string(p, "ConfigurationSetName")
        if name in self._config_sets:
            raise already_exists(f"Configuration set {name} already exists.")
        options = {k: v for k, v in p.items() if k != "ConfigurationSetName"}
        options.setdefault("SendingOptions", {"SendingEnabled": True})
        self._config_sets[name] = options
        return {}

    def get_configuration_set(self, p: Json) -> Json:
        name = _string(p, "ConfigurationSetName")
        return {"ConfigurationSetName": name, **self._config_set(name)}

    def put_configuration_set_sending_options(self, p: Json) -> Json:
        options = self._config_set(_string(p, "ConfigurationSetName"))
        # SendingEnabled is optional in the model; absent reads as false, the JSON default.
        enabled = p.get("SendingEnabled", False)
        if not isinstance(enabled, bool):
            raise bad_request("SendingEnabled must be a boolean.")
        options["SendingOptions"] = {"SendingEnabled": enabled}
        return {}

    # --- internals ---

    def _tenant(self, name: str) -> Tenant:
        try:
            return self._tenants[name]
        except KeyError:
            raise not_found(f"Tenant {name} does not exist.") from None

    def _entity(self, arn: str, *, missing: Callable[[str], SesError]) -> ReputationEntity:
        try:
            return self._entities[arn]
        except KeyError:
            raise missing(f"Reputation entity {arn} does not exist.") from None

    def _config_set(self, name: str) -> Json:
        try:
            return self._config_sets[name]
        except KeyError:
            raise not_found(f"Configuration set {name} does not exist.") from None

    def _resource_type(self, arn: str) -> str:
        # Any well-formed ARN of this account and region is accepted: the stand-in does not
        # track identities or templates, so it cannot check that the resource exists.
        match = _SES_ARN.fullmatch(arn)
        if match is None or match["kind"] not in RESOURCE_TYPES:
            raise bad_request(
                f"Invalid ResourceArn {arn!r}: not an SES identity, "
                "configuration set or template ARN."
            )
        if (match["region"], match["account"]) != (self.region, self.account_id):
            raise bad_request(f"ResourceArn {arn!r} is not in {self.region}/{self.account_id}.")
        return RESOURCE_TYPES[match["kind"]]

    def _tenant_json(self, tenant: Tenant, *, full: bool) -> Json:
        out: Json = {
            "TenantName": tenant.name,
            "TenantId": tenant.id,
            "TenantArn": tenant.arn,
            "CreatedTimestamp": tenant.created,
            "SendingStatus": self._entities[tenant.arn].aggregate,
        }
        if full:
            out["Tags"] = tenant.tags
            if tenant.suppression is not None:
                out["SuppressionAttributes"] = tenant.suppression
        return out


def _string(p: Json, name: str) -> str:
    value = p.get(name)
    if not isinstance(value, str) or not value:
        raise bad_request(f"{name} is required and must be a non-empty string.")
    return value


def _entity_type(p: Json) -> None:
    if _string(p, "ReputationEntityType") != "RESOURCE":
        raise bad_request("ReputationEntityType must be RESOURCE.")


def _tags(raw: object) -> list[Json]:
    if not isinstance(raw, list) or not all(
        isinstance(t, dict) and isinstance(t.get("Key"), str) and isinstance(t.get("Value"), str)
        for t in raw
    ):
        raise bad_request("Tags must be a list of {Key, Value} string pairs.")
    return [{"Key": t["Key"], "Value": t["Value"]} for t in raw]


def _filter(p: Json) -> dict[str, str]:
    raw = p.get("Filter", {})
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
        raise bad_request("Filter must map filter keys to non-empty strings.")
    return raw


def _page(items: Sequence[tuple[str, T]], p: Json) -> tuple[list[T], str | None]:
    """One page of `items` (sorted by key). The token names the first key of the next page, so
    paging stays correct when items are added or deleted between calls."""
    size = p.get("PageSize", DEFAULT_PAGE_SIZE)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_PAGE_SIZE:
        raise bad_request(f"PageSize must be an integer from 1 to {MAX_PAGE_SIZE}.")
    start = 0
    if "NextToken" in p:
        first = _decode_token(p["NextToken"])
        start = next((i for i, (key, _) in enumerate(items) if key >= first), len(items))
    page = items[start : start + size]
    more = start + size < len(items)
    token = _encode_token(items[start + size][0]) if more else None
    return [value for _, value in page], token


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode_token(token: object) -> str:
    try:
        if not isinstance(token, str) or not token:
            raise ValueError
        return base64.b64decode(token, altchars=b"-_", validate=True).decode()
    except ValueError:  # also covers binascii.Error and UnicodeDecodeError
        raise bad_request("Invalid NextToken.") from None
