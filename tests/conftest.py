"""Shared fixtures: the embedded Kafka broker, and databases (SQLite always,
PostgreSQL when reachable; with KYOSEI_REQUIRE_POSTGRES=1 an unreachable PostgreSQL
fails the run instead of skipping)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from kyosei_events import EventStore, KeyVault
from kyosei_events.database import create_engine
from kyosei_platform.bus import kafka_broker as kafka_broker_of
from kyosei_platform.embedded import EmbeddedKafka

PG_URL = os.environ.get(
    "KYOSEI_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("KYOSEI_REQUIRE_POSTGRES") == "1"
MASTER_KEY = bytes(range(32))


def _pg_reachable() -> str | None:
    async def probe() -> None:
        engine = create_engine(PG_URL)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("select 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), 5))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


_PG_PROBLEM = _pg_reachable()


@pytest.fixture(autouse=True)
def _asyncio_tasks_on_timeout() -> Iterator[None]:
    """When pytest-timeout stops a test that hangs, print where every asyncio task of the
    loop is waiting first (its own report shows only the main thread, idle in the event
    loop's select, which does not say what was awaited)."""
    original = signal.getsignal(signal.SIGALRM)
    if not callable(original):
        yield
        return

    def dump_then_fail(signum: int, frame: Any) -> None:
        try:
            tasks = asyncio.all_tasks()
        except RuntimeError:  # no loop running in this thread
            tasks = set()
        print(f"\n--- {len(tasks)} asyncio tasks at the timeout ---", file=sys.stderr)
        for task in tasks:
            task.print_stack(limit=12, file=sys.stderr)
        original(signum, frame)

    signal.signal(signal.SIGALRM, dump_then_fail)
    try:
        yield
    finally:
        signal.signal(signal.SIGALRM, original)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[list[str]]:
    broker = EmbeddedKafka()
    yield broker.bootstrap
    broker.close()


@dataclass
class Database:
    """A fresh, empty database for one test: a SQLite file or a PostgreSQL schema (in
    the shared database, or in a database of its own when ``own`` names it)."""

    kind: str
    url: str
    schema: str | None
    own: str | None = None

    def engine(self) -> AsyncEngine:
        return create_engine(self.url, schema=self.schema)


def require_postgres() -> None:
    if _PG_PROBLEM is not None:
        if REQUIRE_PG:
            pytest.fail(
                f"PostgreSQL required (KYOSEI_REQUIRE_POSTGRES=1) but unreachable: {_PG_PROBLEM}"
            )
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {_PG_PROBLEM}")


async def _new_database(kind: str, tmp_path: Path, name: str, *, own: bool = False) -> Database:
    """``own``: on PostgreSQL, a database of its own rather than a schema of the shared
    one. The store's read horizon is the whole database's (store.py): any transaction
    in it, such as another test run's, holds back what the log shows. A test that
    needs the horizon past its own writes at once (an anchor covering them) needs a
    database where no one else writes."""
    if kind == "sqlite":
        return Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / name}.db", None)
    require_postgres()
    schema = f"t_{name}_{uuid.uuid4().hex[:10]}"
    url, dbname = PG_URL, None
    if own:
        dbname = schema
        engine = create_engine(PG_URL)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{dbname}" TEMPLATE template0'))
        await engine.dispose()
        url = make_url(PG_URL).set(database=dbname).render_as_string(hide_password=False)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await engine.dispose()
    return Database("postgresql", url, schema, dbname)


async def _drop(db: Database) -> None:
    if db.schema is None:
        return
    engine = create_engine(PG_URL)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        if db.own is not None:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{db.own}" WITH (FORCE)'))
        else:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE'))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """Runs the test once on SQLite and once on PostgreSQL."""
    db = await _new_database(request.param, tmp_path, "store")
    yield db
    await _drop(db)


@pytest.fixture
async def vault(tmp_path: Path) -> AsyncIterator[KeyVault]:
    """The shared key vault, in its own database as in every deployment."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db")
    v = KeyVault(engine, MASTER_KEY)
    await v.create_tables()
    yield v
    await engine.dispose()


@pytest.fixture
async def store(database: Database, vault: KeyVault) -> AsyncIterator[EventStore]:
    engine = database.engine()
    s = EventStore(engine, vault, name=f"test-{database.kind}")
    await s.create_tables()
    yield s
    await engine.dispose()


# -- backbone tests (libs/events) ------------------------------------------------------


@asynccontextmanager
async def sqlite_store(folder: Path, vault: KeyVault, name: str) -> AsyncIterator[EventStore]:
    """A service's event store in its own SQLite file, with the shared key vault."""
    engine = create_engine(f"sqlite+aiosqlite:///{folder / name}.db")
    s = EventStore(engine, vault, name=name)
    await s.create_tables()
    try:
        yield s
    finally:
        await engine.dispose()


@pytest.fixture
async def source(tmp_path: Path, vault: KeyVault) -> AsyncIterator[EventStore]:
    """The producing service's store (intake), whose events a consumer test receives."""
    async with sqlite_store(tmp_path, vault, "intake") as s:
        yield s


@pytest.fixture
async def pg_store(tmp_path: Path, vault: KeyVault) -> AsyncIterator[EventStore]:
    """An event store on PostgreSQL only, for behaviour that only PostgreSQL has
    (concurrent writers, commit-order gaps, LISTEN/NOTIFY)."""
    db = await _new_database("postgresql", tmp_path, "pgstore")
    engine = db.engine()
    s = EventStore(engine, vault, name="test-postgresql")
    await s.create_tables()
    yield s
    await engine.dispose()
    await _drop(db)


@pytest.fixture(scope="session")
async def kafka_broker(kafka_bootstrap: list[str]) -> AsyncIterator[KafkaBroker]:
    """A service's Kafka client, as the relay publishes through it (connected, no
    subscribers)."""
    broker = kafka_broker_of(kafka_bootstrap, service="test")
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture(scope="session")
async def kafka_producer(kafka_bootstrap: list[str]) -> AsyncIterator[Any]:
    """A plain Kafka producer, for messages exactly as a test writes them (any headers,
    any value, a chosen partition), as another agency's system might send them."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
def topic() -> str:
    """A fresh topic name: the broker is shared by the whole session."""
    return f"test.{uuid.uuid4().hex}.events"
