"""The composition root of a service process: one store, one Kafka client (a FastStream
broker) shared by the relay and the consumer, one consumer group for the policies."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import Depends, Request
from prometheus_client import Gauge
from pydantic_settings import BaseSettings
from sqlalchemy import text

from kyosei_events import (
    EventStore,
    IdempotentConsumer,
    KeyVault,
    OutboxRelay,
    consumer_group,
    dead_letter_topic,
    events_topic,
)
from kyosei_events.anchors import anchor_periodically, signing_key
from kyosei_events.crypto import master_key_from_hex
from kyosei_events.database import create_engine

from . import tracing
from .bus import MAX_MESSAGE_BYTES, kafka_broker, kafka_security
from .service import Service
from .settings import Settings

log = structlog.get_logger(__name__)
S = TypeVar("S", bound=BaseSettings)

KAFKA_CONNECTED = Gauge(
    "kyosei_kafka_connected",
    "1 when the service's Kafka client answered at the last readiness check",
    ["service"],
)


@dataclass
class Readiness:
    """What /health/ready answers. Ready when the database and the key vault answer
    (``problems`` empty); Kafka's state and the relay's are reported, not required:
    writes need only the database, and the relay catches up when Kafka is back."""

    problems: dict[str, str] = field(default_factory=dict)
    kafka: str = "connecting"
    relay: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return not self.problems

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": "ready" if self.ready else "not_ready"}
        if self.problems:
            out["problems"] = self.problems
        return out | {"kafka": self.kafka, "relay": self.relay}


class ServiceRuntime:
    def __init__(
        self,
        service: Service,
        settings: Settings,
        service_settings: BaseSettings | None = None,
    ) -> None:
        """``service_settings`` overrides what the service's own settings class would
        read from the environment (tests, the dev runner)."""
        self.service = service
        self.settings = settings
        self._service_settings = (
            service.load_settings() if service_settings is None else service_settings
        )
        self.engine = create_engine(
            settings.database_url,
            schema=settings.db_schema,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        self.keys_engine = create_engine(
            settings.keys_database_url,
            schema=settings.keys_db_schema,
            pool_size=settings.keys_db_pool_size,
            max_overflow=settings.keys_db_max_overflow,
        )
        self.vault = KeyVault(
            self.keys_engine,
            master_key_from_hex(settings.master_key),
            cache_size=settings.key_cache_size,
            previous_master_key=settings.previous_master_key_bytes(),
        )
        self.store = EventStore(
            self.engine,
            self.vault,
            name=service.name,
            projections=[make() for make in service.projections],
            max_message_bytes=settings.max_message_bytes,
            head_cache_size=settings.head_cache_size,
        )
        if self.store.dialect == "postgresql":
            self.store.notify_channel(f"kyosei_{service.name}_events")
        self.topic = events_topic(service.name, settings.topic_prefix)
        # KYOSEI_OTEL_ENABLED: the SDK's tracer provider, shared by the broker and the
        # HTTP app (http.py); None when tracing is off.
        self.tracer_provider: Any = (
            tracing.tracer_provider(service.name) if settings.otel_enabled else None
        )
        self.broker = kafka_broker(
            settings.kafka_bootstrap,
            service=service.name,
            security=kafka_security(settings),
            tracer_provider=self.tracer_provider,
            linger_ms=settings.kafka_linger_ms,
        )
        self.relay = OutboxRelay(
            self.store,
            self.broker,
            topic=self.topic,
            source=f"/kyosei/{service.name}",
            poll_interval=settings.relay_poll_interval,
            batch_size=settings.relay_batch_size,
        )
        self.consumer: IdempotentConsumer | None = None
        if service.policies:
            self.consumer = IdempotentConsumer(
                consumer_group(service.name, settings.topic_prefix),
                self.store,
                service.policies,
                self.broker,
                dead_letter_topic=dead_letter_topic(service.name, settings.topic_prefix),
                max_message_bytes=MAX_MESSAGE_BYTES,
                fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
                commit_interval=settings.kafka_commit_interval_ms / 1000,
                max_batch=settings.consumer_max_batch,
                tracer_provider=self.tracer_provider,
            )
            self.consumer.subscribe(*self.consumed_topics)
        self._connect_task: asyncio.Task[None] | None = None
        self._anchor_task: asyncio.Task[None] | None = None
        self._metrics_task: asyncio.Task[None] | None = None

    def service_settings(self, kind: type[S]) -> S:
        """The service's own settings (``Service.settings``), as the class it declared:
        ``runtime.service_settings(IntakeSettings).unresolved_after_days``."""
        if not isinstance(self._service_settings, kind):
            declared = self.service.settings.__name__ if self.service.settings else "none"
            raise TypeError(
                f"service {self.service.name} declares settings {declared}, not {kind.__name__}"
            )
        return self._service_settings

    @property
    def consumed_topics(self) -> list[str]:
        return sorted(
            {
                events_topic(p.event_type.producer, self.settings.topic_prefix)
                for p in self.service.policies
            }
        )

    async def start(self) -> None:
        """Connect to Kafka in the background and return at once.

        Writes only need the database (the store is the outbox), so the API serves
        and is ready while Kafka is still unreachable; /health/ready's body says so.
        """
        self._connect_task = asyncio.get_running_loop().create_task(
            self._connect(), name=f"connect:{self.service.name}"
        )
        if self.settings.metrics_interval:
            self._metrics_task = asyncio.get_running_loop().create_task(
                self._measure_periodically(self.settings.metrics_interval),
                name=f"metrics:{self.service.name}",
            )
        if self.settings.anchor_interval and self.settings.checkpoint_signing_key:
            self._anchor_task = asyncio.get_running_loop().create_task(
                anchor_periodically(
                    self.store,
                    self.service.name,
                    signing_key(self.settings.checkpoint_signing_key),
                    self.settings.anchor_interval * 60,
                    lambda: self.relay.is_leader,
                ),
                name=f"anchor:{self.service.name}",
            )

    async def measure(self) -> None:
        """Update the measured metrics: the relay's backlog (from the database, Kafka or
        not) and the consumer's lag per assigned partition (once it has joined)."""
        try:
            await self.relay.backlog()
        except Exception as exc:
            log.debug("relay_backlog_unknown", service=self.service.name, error=str(exc))
        if self.consumer is not None:
            await self.consumer.lag()

    async def _measure_periodically(self, interval: float) -> None:
        this = asyncio.current_task()
        while True:
            try:
                await self.measure()
            except Exception:
                log.warning("metrics_update_failed", service=self.service.name, exc_info=True)
            if this is not None and this.cancelling():
                # stop() cancelled it while a client library's call swallowed that.
                raise asyncio.CancelledError
            await asyncio.sleep(interval)

    async def wait_connected(self) -> None:
        assert self._connect_task is not None, "start() first"
        await asyncio.shield(self._connect_task)

    async def _connect(self) -> None:
        # The producer first, so that the relay publishes while the consumer group
        # is still being joined.
        await _retry("kafka", self.broker.connect)
        self.relay.start()
        await _retry("kafka consumer", self.broker.start)
        log.info(
            "service_started",
            service=self.service.name,
            topic=self.topic,
            consumes=self.consumed_topics,
        )

    async def readiness(self) -> Readiness:
        """The database and the key vault (required), Kafka and the relay (reported)."""
        state = Readiness()

        async def probe(name: str, engine: Any) -> None:
            # The bound covers taking a connection from the pool too: an exhausted pool
            # answers "not ready" within the orchestrator's probe timeout (3 s).
            try:
                async with asyncio.timeout(2):
                    async with engine.connect() as conn:
                        await conn.execute(text("select 1"))
            except Exception as exc:
                state.problems[name] = type(exc).__name__

        await asyncio.gather(
            probe("database", self.engine),
            probe("key_vault", self.keys_engine),
            self._kafka_state(state),
        )
        stuck = self.relay.stuck
        state.relay = {
            "leader": self.relay.is_leader,
            "stuck": None if stuck is None else stuck.as_dict(),
        }
        return state

    async def _kafka_state(self, state: Readiness) -> None:
        task = self._connect_task
        if task is None or not task.done():
            state.kafka = "connecting"
        elif task.cancelled() or task.exception() is not None:
            state.kafka = f"gave up: {None if task.cancelled() else task.exception()}"
        else:
            try:
                answered = await self.broker.ping(timeout=2)
            except Exception:
                answered = False
            state.kafka = "connected" if answered else "unreachable"
        KAFKA_CONNECTED.labels(self.service.name).set(1 if state.kafka == "connected" else 0)

    async def stop(self) -> None:
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect_task
        for task in (self._anchor_task, self._metrics_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.relay.stop()
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self.consumer.flush()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        await self.engine.dispose()
        await self.keys_engine.dispose()
        if self.tracer_provider is not None:
            await asyncio.to_thread(tracing.shutdown, self.tracer_provider)


async def _retry(what: str, start: Any, attempts: int = 1_000_000) -> None:
    for attempt in range(1, attempts + 1):
        try:
            await start()
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            log.warning("waiting_for", what=what, attempt=attempt, error=str(exc))
            await asyncio.sleep(min(attempt, 5))


async def get_runtime(request: Request) -> ServiceRuntime:
    """The service's runtime, for a route (``runtime: Runtime``)."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
