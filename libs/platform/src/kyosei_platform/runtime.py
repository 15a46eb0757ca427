"""The composition root of a service process: one store, one Kafka client (a FastStream
broker) shared by the relay and the consumer, one consumer group for the policies."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, TypeVar

import structlog
from pydantic_settings import BaseSettings
from sqlalchemy import text

from kyosei_events import EventStore, IdempotentConsumer, KeyVault, OutboxRelay, events_topic
from kyosei_events.crypto import master_key_from_hex
from kyosei_events.database import create_engine

from .bus import MAX_MESSAGE_BYTES, kafka_broker
from .service import Service
from .settings import Settings

log = structlog.get_logger(__name__)
S = TypeVar("S", bound=BaseSettings)


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
        self.engine = create_engine(settings.database_url, schema=settings.db_schema)
        self.keys_engine = create_engine(settings.keys_database_url, schema=settings.keys_db_schema)
        self.vault = KeyVault(self.keys_engine, master_key_from_hex(settings.master_key))
        self.store = EventStore(
            self.engine,
            self.vault,
            name=service.name,
            projections=[make() for make in service.projections],
        )
        if self.store.dialect == "postgresql":
            self.store.notify_channel(f"kyosei_{service.name}_events")
        self.topic = settings.topic_prefix + events_topic(service.name)
        self.broker = kafka_broker(settings.kafka_bootstrap, service=service.name)
        self.relay = OutboxRelay(
            self.store,
            self.broker,
            topic=self.topic,
            source=f"/kyosei/{service.name}",
            poll_interval=settings.relay_poll_interval,
        )
        self.consumer: IdempotentConsumer | None = None
        if service.policies:
            self.consumer = IdempotentConsumer(
                f"{settings.topic_prefix}kyosei-{service.name}",
                self.store,
                service.policies,
                self.broker,
                max_message_bytes=MAX_MESSAGE_BYTES,
            )
            self.consumer.subscribe(*self.consumed_topics)
        self._connect_task: asyncio.Task[None] | None = None

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
                self.settings.topic_prefix + events_topic(p.event_type.producer)
                for p in self.service.policies
            }
        )

    async def start(self) -> None:
        """Connect to Kafka in the background and return at once.

        Writes only need the database (the store is the outbox), so the API serves
        while Kafka is still unreachable; /health/ready says so until it connects.
        """
        self._connect_task = asyncio.get_running_loop().create_task(
            self._connect(), name=f"connect:{self.service.name}"
        )

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

    async def ready(self) -> dict[str, str]:
        """What is not reachable, by name (empty when ready)."""
        problems: dict[str, str] = {}
        if self._connect_task is None or not self._connect_task.done():
            problems["kafka"] = "connecting"
        elif self._connect_task.exception() is not None:
            problems["kafka"] = f"gave up: {self._connect_task.exception()}"
        for name, engine in (("database", self.engine), ("key_vault", self.keys_engine)):
            try:
                async with engine.connect() as conn:
                    await asyncio.wait_for(conn.execute(text("select 1")), 2)
            except Exception as exc:
                problems[name] = type(exc).__name__
        if problems:
            return problems
        if not await self.broker.ping(timeout=2):
            problems["kafka"] = "unreachable"
        return problems

    async def stop(self) -> None:
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect_task
        await self.relay.stop()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        await self.engine.dispose()
        await self.keys_engine.dispose()


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
