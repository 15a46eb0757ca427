"""What a service's own tests (``services/<name>/tests``) run on: a SQLite store with the
service's read models, its routes over that store, command contexts for named
agencies, and the service's
policies on FastStream's in-memory ``TestKafkaBroker`` fed with events published as
their producing service's relay would (same envelope and hash chain). Milliseconds per
test; the real broker over TCP is for the root ``tests/`` suites.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy import MetaData

from kyosei_events import (
    DomainEvent,
    EventStore,
    IdempotentConsumer,
    KeyVault,
    Metadata,
    NewEvent,
    dead_letter_topic,
    events_topic,
)
from kyosei_events.database import create_engine

from . import errors
from .application import CommandContext
from .auth import Identity, Role
from .bus import kafka_broker
from .http import add_routes
from .idempotency import idempotency_metadata
from .service import Service

MASTER_KEY = bytes(range(32))


@asynccontextmanager
async def local_store(
    tmp_path: Path, service: Service, *tables: MetaData
) -> AsyncIterator[EventStore]:
    """The service's store on SQLite with its projections, the idempotency keys, and
    ``tables`` created."""
    keys = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db")
    vault = KeyVault(keys, MASTER_KEY)
    await vault.create_tables()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / service.name}.db")
    store = EventStore(
        engine, vault, name=service.name, projections=[make() for make in service.projections]
    )
    await store.create_tables()
    async with engine.begin() as conn:
        for metadata in (idempotency_metadata, *tables):
            await conn.run_sync(metadata.create_all)
    try:
        yield store
    finally:
        await engine.dispose()
        await keys.dispose()


def service_app(service: Service, store: EventStore, auth_secret: str) -> FastAPI:
    """The service's routes, with the real auth (tokens signed with ``auth_secret``) and
    error envelope, over ``store``; no broker or relay (the test drives those)."""
    app = FastAPI()
    errors.install(app)
    add_routes(app, service.router)
    app.state.runtime = SimpleNamespace(
        engine=store.engine, store=store, settings=SimpleNamespace(auth_secret=auth_secret)
    )
    return app


def acting_as(store: EventStore, agency: str, role: Role = Role.STAFF) -> CommandContext:
    """The context a request from staff of ``agency`` gives a command."""
    who = Identity(agency, f"{agency}-staff", role)
    return CommandContext(
        store=store, actor=who, metadata=Metadata(agency_id=agency, staff_id=who.staff_id)
    )


@dataclass
class PolicyBus:
    """The service's policies on an in-memory broker."""

    consumer: IdempotentConsumer
    broker: KafkaBroker
    _sources: dict[str, EventStore]
    _tmp: Path
    _vault: KeyVault
    dead_letters: list[dict[str, str]] = field(default_factory=list)

    def dead_letter_reasons(self) -> list[str]:
        """Why each message put on the service's dead-letter topic could not be processed."""
        return [headers.get("dlq_reason", "") for headers in self.dead_letters]

    async def publish(
        self, producer: str, *events: DomainEvent, agency: str = "ext", subject: str | None = None
    ) -> list[str]:
        """Publish ``events`` as ``producer``'s relay would: stored in its own store,
        sent with its envelope. Returns the event ids, to send one again."""
        store = await self._source(producer)
        ids = []
        for e in events:
            about = subject or getattr(e, "household_id", None) or str(uuid.uuid4())
            (rec,) = await store.append(
                f"{producer}-{uuid.uuid4()}", [NewEvent(e, about, Metadata(agency_id=agency))], 0
            )
            await self.redeliver(producer, rec.event_id)
            ids.append(rec.event_id)
        return ids

    async def redeliver(self, producer: str, event_id: str) -> None:
        """Send a published event again (at-least-once delivery)."""
        store = self._sources[producer]
        (rec,) = [r for r in await store.read_log() if r.event_id == event_id]
        await self.broker.publish(
            rec.payload.encode(),
            events_topic(producer),
            key=rec.subject.encode(),
            headers=rec.envelope(f"/kyosei/{producer}").header_map(),
        )

    async def close(self) -> None:
        for source in self._sources.values():
            await source.engine.dispose()

    async def _source(self, producer: str) -> EventStore:
        if producer not in self._sources:
            engine = create_engine(f"sqlite+aiosqlite:///{self._tmp / producer}-source.db")
            source = EventStore(engine, self._vault, name=producer)
            await source.create_tables()
            self._sources[producer] = source
        return self._sources[producer]


_runs = itertools.count()


@asynccontextmanager
async def policy_bus(
    tmp_path: Path, service: Service, store: EventStore
) -> AsyncIterator[PolicyBus]:
    """The service's policies subscribed as in production, on TestKafkaBroker."""
    broker = kafka_broker("localhost:9092", service=service.name)
    consumer = IdempotentConsumer(
        f"kyosei-{service.name}-test{next(_runs)}",
        store,
        service.policies,
        broker,
        dead_letter_topic=dead_letter_topic(service.name),
    )
    consumer.subscribe(*sorted({events_topic(p.event_type.producer) for p in service.policies}))
    bus = PolicyBus(consumer, broker, {}, tmp_path, store.vault)

    async def raw(message: KafkaMessage) -> Any:
        return message.raw_message

    @broker.subscriber(consumer.dead_letter_topic, decoder=raw)
    async def dead_letter(record: Any) -> None:
        bus.dead_letters.append({k: v.decode("utf-8", "replace") for k, v in record.headers})

    try:
        async with TestKafkaBroker(broker):
            yield bus
    finally:
        await bus.close()
