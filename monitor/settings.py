"""Settings: `REPMON_*` environment variables (or `--flags` on `run`); the only env reader."""

from __future__ import annotations

import sys
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPMON_", extra="forbid", frozen=True)

    queue_urls: Annotated[tuple[str, ...], NoDecode] = ()
    aws_region: str | None = None  # else the AWS SDK chain, else us-east-1
    rules_dir: str = "rules"
    state_url: str = "sqlite:///repmon-state.db"
    http_host: str = "127.0.0.1"
    http_port: int = Field(9464, ge=0, le=65535)
    admin_token: str | None = None
    dry_run: bool = False
    pollers: int = Field(4, ge=1, le=64)
    dead_letter_queue_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] | None = None  # None: console on a TTY, else json
    metrics_tenant_limit: int = Field(1000, ge=0)
    # Beyond the contract: the most tenants held in memory. At the cap the least recently
    # active healthy tenants are forgotten (a flood of one-off tenant tags stays bounded).
    max_tenants: int = Field(500_000, ge=1000)
    shutdown_timeout: float = Field(20.0, gt=0)
    event_bus_name: str = "default"
    webhook_url: str | None = None
    webhook_secret: str | None = None

    @field_validator("queue_urls", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(u.strip() for u in v.split(",") if u.strip())
        return v

    @field_validator("queue_urls")
    @classmethod
    def _urls(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for url in v:
            if not url.startswith(("https://", "http://")):
                raise ValueError(
                    f"{url!r} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
                )
        return v

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v

    @field_validator("state_url")
    @classmethod
    def _state(cls, v: str) -> str:
        if v.startswith("sqlite:///") and len(v) > len("sqlite:///"):
            return v
        if v.startswith("dynamodb://") and len(v) > len("dynamodb://"):
            return v
        raise ValueError("must be sqlite:///PATH or dynamodb://TABLE")

    @field_validator(
        "admin_token", "webhook_url", "webhook_secret", "dead_letter_queue_url", "aws_region"
    )
    @classmethod
    def _empty_is_unset(cls, v: str | None) -> str | None:
        return v or None


class SettingsError(Exception):
    """A bad setting; str() is one line naming it."""


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus `overrides` (CLI flags), or raise SettingsError."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            raise SettingsError(f"unknown setting {field}") from None
        raise SettingsError(f"invalid setting REPMON_{field.upper()}: {msg}") from None


def fail(message: str) -> None:
    """Print a one-line configuration error and exit 2."""
    print(f"reputation-monitor: {message}", file=sys.stderr)
    raise SystemExit(2)
