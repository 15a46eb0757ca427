"""Settings of a service process, from KYOSEI_* environment variables.

These are what every service needs. A setting only one service reads belongs to that
service: its ``settings.py`` declares a class read from ``KYOSEI_<SERVICE>_*`` and
names it in its :class:`~kyosei_platform.service.Service` (``settings=``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """What an operator sets for every service (see deploy/README.md)."""

    model_config = SettingsConfigDict(env_prefix="KYOSEI_", extra="ignore")

    database_url: str = Field(description="the service's event store and read models")
    db_schema: str | None = Field(None, description="PostgreSQL schema of the service")
    keys_database_url: str = Field(description="the shared key vault database")
    keys_db_schema: str | None = Field("keys", description="PostgreSQL schema of the key vault")
    kafka_bootstrap: Annotated[list[str], NoDecode] = Field(
        description="host:port of Kafka brokers, comma-separated"
    )
    master_key: str = Field(description="64 hex characters: wraps every household key")
    auth_secret: str = Field(description="HS256 secret that access tokens are signed with")
    topic_prefix: str = Field(
        "",
        description="prepended to every topic and consumer group, e.g. 'nabari.' "
        "when several municipalities share one Kafka cluster",
    )
    http_host: str = "0.0.0.0"
    http_port: int = 8000
    log_level: str = "info"
    log_format: str = Field("json", description="json, or console for people reading a terminal")
    relay_poll_interval: float = 5.0
    max_message_bytes: int = Field(
        1_000_000,
        gt=0,
        description="largest Kafka message an event may become (keep it at or below the "
        "cluster's message.max.bytes); an append over it is refused with 413",
    )
    max_request_bytes: int = Field(
        1_048_576, gt=0, description="largest HTTP request body accepted; larger is 413"
    )

    @field_validator("kafka_bootstrap", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("auth_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < 32:
            raise ValueError(
                "KYOSEI_AUTH_SECRET must be at least 32 characters; generate one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("master_key")
    @classmethod
    def _hex(cls, value: str) -> str:
        try:
            if len(bytes.fromhex(value)) == 32:
                return value
        except ValueError:
            pass
        raise ValueError(
            "KYOSEI_MASTER_KEY must be 64 hex characters; generate one with "
            "python -c 'import secrets; print(secrets.token_hex(32))'"
        )
