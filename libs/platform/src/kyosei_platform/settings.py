"""Settings of a service process, from KYOSEI_* environment variables.

Where a value comes from, first found wins: a ``KYOSEI_*`` environment variable, then
the data folder's settings file of the service (``data/<service>.env``, which
``kyosei dev`` writes at every start, so that ``kyosei verify``, ``rebuild`` and the
other maintenance commands find the dev databases, keys and broker with nothing
exported), then the defaults. See :func:`load`.

These are what every service needs. A setting only one service reads belongs to that
service: its ``settings.py`` declares a class read from ``KYOSEI_<SERVICE>_*`` and
names it in its :class:`~kyosei_platform.service.Service` (``settings=``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """What an operator sets for every service (see deploy/README.md)."""

    model_config = SettingsConfigDict(env_prefix="KYOSEI_", extra="ignore")

    # Each field's description is its row in deploy/README.md (make deploy-files);
    # "secret" marks what belongs in a Secret rather than a ConfigMap.
    database_url: str = Field(
        description="the service's event store and read models, e.g. "
        "`postgresql+asyncpg://kyosei:PASSWORD@postgres:5432/kyosei`",
        json_schema_extra={"secret": "yes (has the password)"},
    )
    db_schema: str | None = Field(
        None, description="PostgreSQL schema of the service, named like the service (one each)"
    )
    keys_database_url: str = Field(
        description="the shared key vault database; may be the same URL",
        json_schema_extra={"secret": "yes"},
    )
    keys_db_schema: str | None = Field("keys", description="PostgreSQL schema of the key vault")
    kafka_bootstrap: Annotated[list[str], NoDecode] = Field(
        description="host:port of Kafka brokers, comma-separated"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="how the services (and `kyosei topics`, `dlq`, `republish`) reach Kafka: "
        "PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SCRAM over TLS, what a managed "
        "Kafka asks for)",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism with SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL user; required with SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_password: SecretStr | None = Field(
        None,
        description="SASL password; required with SASL_PLAINTEXT or SASL_SSL",
        json_schema_extra={"secret": "yes"},
    )
    kafka_ssl_cafile: str | None = Field(
        None,
        description="PEM file of the CA that signed the brokers' certificates, with SSL or "
        "SASL_SSL (mount it, e.g. from a ConfigMap); empty: the system's CAs",
    )
    master_key: str = Field(
        description="64 hex characters: wraps every household key",
        json_schema_extra={"secret": "yes"},
    )
    previous_master_key: str | None = Field(
        None,
        description="during a master-key rotation only: the old master key (64 hex "
        "characters), to read household keys `kyosei keys rewrap` has not re-wrapped yet "
        "and to keep search tokens unchanged; remove it once the rewrap is done (see "
        "Master-key rotation)",
        json_schema_extra={"secret": "yes"},
    )
    auth_secret: str = Field(
        description="HS256 secret that signs staff access tokens (JWT), at least 32 characters",
        json_schema_extra={"secret": "yes"},
    )
    topic_prefix: str = Field(
        "",
        description="put in front of every topic and consumer group name "
        "(<prefix>kyosei.<service>.events, <prefix>kyosei.<service>.dlq, "
        "<prefix>kyosei-<service>), e.g. `nabari.` when several municipalities share "
        "one Kafka cluster",
    )
    topic_partitions: int = Field(
        6,
        ge=1,
        description="partitions of each topic `kyosei topics` creates (events and dead "
        "letters); a consumer group shares a topic's partitions among its replicas, so "
        "at least the most replicas a service runs; can be raised later, never lowered",
    )
    topic_replication_factor: int | None = Field(
        None,
        ge=1,
        description="replicas of each topic `kyosei topics` creates; empty: 3, or the "
        "number of brokers when there are fewer",
    )
    topic_retention_ms: int = Field(
        -1,
        ge=-1,
        description="retention.ms of the events topics `kyosei topics` creates; -1 keeps "
        "them for ever, so an agency that joins late reads every event",
    )
    topic_dlq_retention_ms: int = Field(
        2_592_000_000,
        ge=-1,
        description="retention.ms of the dead-letter topics `kyosei topics` creates (30 "
        "days by default: list and replay dead letters before then)",
    )
    http_host: str = Field("0.0.0.0", description="address the HTTP API listens on")
    http_port: int = Field(8000, description="port the HTTP API listens on")
    log_level: str = Field("info", description="debug, info, warning or error")
    log_format: str = Field("json", description="json, or console for people reading a terminal")
    relay_poll_interval: float = Field(
        5.0,
        gt=0,
        description="seconds between relay polls when no commit or NOTIFY wakes it; also how "
        "often a replica that is not the relay's leader tries to take the lead",
    )
    relay_batch_size: int = Field(
        500,
        ge=1,
        description="events the relay reads from the log and publishes at a time; its "
        "checkpoint is saved once per batch",
    )
    kafka_linger_ms: int = Field(
        0,
        ge=0,
        description="milliseconds the producer waits to gather more messages into one "
        "request (the relay's events, dead letters): each of them up to that much later; "
        "0 sends at once, and a relay's batch, published in one go, still leaves in one "
        "request per partition",
    )
    kafka_fetch_max_wait_ms: int = Field(
        500,
        ge=0,
        description="milliseconds the broker may hold the consumer's fetch open while it has "
        "nothing new; Kafka answers as soon as something arrives, the embedded broker only "
        "when the wait is over (`kyosei dev` sets 5), so there it adds up to this much to "
        "an event's latency; lower means more fetches while nothing happens",
    )
    consumer_max_batch: int = Field(
        100,
        ge=1,
        description="messages the consumer takes from one fetch and handles as a batch, at "
        "most: consecutive messages its policies handle go in one transaction (one commit "
        "for all of them); when anything in it fails, each is handled again on its own; 1: "
        "one at a time",
    )
    kafka_commit_interval_ms: int = Field(
        0,
        ge=0,
        description="milliseconds between the consumer's commits of the offsets it has "
        "processed, at most (they go in the background, coalesced; 0: as soon as the "
        "previous one is answered); after a crash the messages since the last commit are "
        "delivered again and dropped as duplicates",
    )
    otel_enabled: bool = Field(
        False,
        description="OpenTelemetry tracing: a span per HTTP request, per Kafka message "
        "published or processed and per batch consumed, the trace context carried in the "
        "Kafka headers; spans go over "
        "OTLP/HTTP as the standard `OTEL_*` variables say (`OTEL_EXPORTER_OTLP_ENDPOINT`, "
        "`OTEL_SERVICE_NAME`, …). Needs the packages of `kyosei-platform[otel]` installed "
        "(the service refuses to start without them, saying so)",
    )
    metrics_interval: float = Field(
        15.0,
        ge=0,
        description="seconds between updates of the metrics the service measures rather than "
        "counts (`kyosei_consumer_lag`, `kyosei_relay_backlog`); 0: off",
    )
    db_pool_size: int = Field(
        10,
        ge=1,
        description="connections each process keeps open to the service's database (on "
        "PostgreSQL the relay's leader lock and its LISTEN hold one each)",
    )
    db_max_overflow: int = Field(
        10,
        ge=0,
        description="connections to the service's database opened beyond the pool under "
        "load, closed when returned",
    )
    keys_db_pool_size: int = Field(
        10, ge=1, description="connections each process keeps open to the key vault"
    )
    keys_db_max_overflow: int = Field(
        10, ge=0, description="connections to the key vault opened beyond the pool under load"
    )
    key_cache_size: int = Field(
        10_000,
        ge=0,
        description="household keys each process keeps unwrapped in memory (about 2.7 KiB "
        "each; the least recently used go first; 0 reads every key from the key vault)",
    )
    head_cache_size: int = Field(
        100_000,
        ge=0,
        description="streams whose latest event each process keeps in memory, so an append "
        "to them skips reading it (about 0.4 KiB each; the least recently used go first; "
        "0 reads it before every append)",
    )
    max_message_bytes: int = Field(
        1_000_000,
        gt=0,
        description="largest Kafka message an event may become (at most the topic's "
        "max.message.bytes); an append over it is refused with 413 `event_too_large`",
    )
    max_request_bytes: int = Field(
        1_048_576,
        gt=0,
        description="largest HTTP request body accepted; larger is refused with 413 "
        "`request_too_large` before it is read",
    )
    checkpoint_signing_key: str | None = Field(
        None,
        description="Ed25519 private key (64 hex characters or PEM) that signs the store's "
        "anchors (`kyosei anchor`); kept out of the database; `kyosei checkpoint-key` "
        "prints its public key for auditors",
        json_schema_extra={"secret": "yes"},
    )
    checkpoint_public_key: str | None = Field(
        None,
        description="Ed25519 public key (64 hex characters or PEM) `kyosei verify` checks "
        "anchors with; derived from the signing key when unset",
    )
    anchor_interval: float = Field(
        0,
        ge=0,
        description="minutes between anchors made by the running service (in the replica "
        "leading the relay; needs `KYOSEI_CHECKPOINT_SIGNING_KEY`); 0: off, run "
        "`kyosei anchor` from cron instead",
    )

    idempotency_key_hours: float = Field(
        24,
        gt=0,
        description="how long an `Idempotency-Key` and the answer it got are kept (per "
        "agency): a retry within it gets the first answer, an older key is new again",
    )

    @model_validator(mode="after")
    def _sasl_credentials(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"KYOSEI_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "KYOSEI_KAFKA_SASL_USERNAME and KYOSEI_KAFKA_SASL_PASSWORD"
            )
        return self

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

    @field_validator("checkpoint_signing_key")
    @classmethod
    def _signing_key(cls, value: str | None) -> str | None:
        if value:
            from kyosei_events.anchors import AnchorError, signing_key

            try:
                signing_key(value)
            except AnchorError as exc:
                raise ValueError(f"KYOSEI_CHECKPOINT_SIGNING_KEY: {exc}") from None
        return value

    @field_validator("checkpoint_public_key")
    @classmethod
    def _public_key(cls, value: str | None) -> str | None:
        if value:
            from kyosei_events.anchors import AnchorError, public_key

            try:
                public_key(value)
            except AnchorError as exc:
                raise ValueError(f"KYOSEI_CHECKPOINT_PUBLIC_KEY: {exc}") from None
        return value

    @model_validator(mode="after")
    def _anchor_key(self) -> Settings:
        if self.anchor_interval and not self.checkpoint_signing_key:
            raise ValueError("KYOSEI_ANCHOR_INTERVAL needs KYOSEI_CHECKPOINT_SIGNING_KEY")
        return self

    def previous_master_key_bytes(self) -> bytes | None:
        """The old master key during a rotation, else None."""
        return bytes.fromhex(self.previous_master_key) if self.previous_master_key else None

    @field_validator("previous_master_key")
    @classmethod
    def _previous_hex(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            if len(bytes.fromhex(value)) == 32:
                return value
        except ValueError:
            pass
        raise ValueError("KYOSEI_PREVIOUS_MASTER_KEY must be 64 hex characters")

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


# The data folder of `kyosei dev` (and `make dev`), relative to where commands run.
DEV_DATA = "data"


def settings_file(data: str | Path, service: str) -> Path:
    """The settings file `kyosei dev` writes for ``service`` in its data folder."""
    return Path(data) / f"{service}.env"


def env_file(data: str | Path, service: str) -> Path | None:
    """``service``'s settings file in the data folder, if there is one."""
    path = settings_file(data, service)
    return path if path.is_file() else None


def load(service: str | None, data: str | Path = DEV_DATA) -> Settings:
    """``service``'s settings: KYOSEI_* variables, then the data folder's settings
    file of the service (if any), then the defaults (None: no file)."""
    return Settings(_env_file=env_file(data, service) if service else None)
