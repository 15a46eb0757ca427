"""A running system for end-to-end tests: real services on real HTTP ports, the
embedded Kafka broker over TCP, SQLite files or PostgreSQL schemas."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from kyosei_events import DomainEvent, EventStore, Metadata, NewEvent, OutboxRelay, events_topic
from kyosei_events.database import create_engine
from kyosei_platform.application import today
from kyosei_platform.auth import Role, issue_token
from kyosei_platform.dev import EMBEDDED_FETCH_MAX_WAIT_MS
from kyosei_platform.http import create_app
from kyosei_platform.migrate import upgrade
from kyosei_platform.runtime import ServiceRuntime
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings

AUTH_SECRET = "e2e-secret-" + uuid.uuid4().hex
MASTER_KEY = "11" * 32
T = TypeVar("T")


@dataclass
class RunningService:
    name: str
    url: str
    runtime: ServiceRuntime
    server: uvicorn.Server
    settings: Settings


@dataclass
class System:
    tmp: Path
    topic_prefix: str
    services: dict[str, RunningService] = field(default_factory=dict)
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    _publishers: dict[str, tuple[EventStore, OutboxRelay]] = field(default_factory=dict)

    async def publish(self, service: str, *events: DomainEvent, agency: str = "ext") -> None:
        """Publish events as ``service`` does (an integrating agency's system, or a
        pillar not running here): stored in its own event store, relayed with the
        same envelope and hash chain to its topic over the real Kafka protocol."""
        if service not in self._publishers:
            intake = self.services["intake"].runtime
            engine = create_engine(f"sqlite+aiosqlite:///{self.tmp / service}-publisher.db")
            store = EventStore(engine, intake.vault, name=service)
            await store.create_tables()
            relay = OutboxRelay(
                store,
                intake.broker,
                topic=events_topic(service, self.topic_prefix),
                source=f"/kyosei/{service}",
            )
            self._publishers[service] = (store, relay)
        store, relay = self._publishers[service]
        for e in events:
            subject = getattr(e, "household_id", None) or str(uuid.uuid4())
            await store.append(
                f"{service}-{uuid.uuid4()}",
                [NewEvent(e, subject, Metadata(agency_id=agency))],
                0,
            )
        await relay.publish_pending()

    def client(self, service: str, agency: str, staff: str, role: Role) -> httpx.AsyncClient:
        token = issue_token(AUTH_SECRET, agency, staff, role)
        c = httpx.AsyncClient(
            base_url=self.services[service].url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        self.clients.append(c)
        return c


def settings_for(
    name: str,
    kind: str,
    tmp: Path,
    pg_url: str,
    pg_prefix: str,
    bootstrap: list[str],
    topic_prefix: str,
) -> Settings:
    if kind == "sqlite":
        db, schema = f"sqlite+aiosqlite:///{tmp / name}.db", None
        keys, keys_schema = f"sqlite+aiosqlite:///{tmp / 'keys'}.db", None
    else:
        db, schema = pg_url, f"{pg_prefix}_{name}"
        keys, keys_schema = pg_url, f"{pg_prefix}_keys"
    return Settings(
        database_url=db,
        db_schema=schema,
        keys_database_url=keys,
        keys_db_schema=keys_schema,
        kafka_bootstrap=bootstrap,
        master_key=MASTER_KEY,
        auth_secret=AUTH_SECRET,
        topic_prefix=topic_prefix,
        http_host="127.0.0.1",
        http_port=0,
        relay_poll_interval=1.0,
        kafka_fetch_max_wait_ms=EMBEDDED_FETCH_MAX_WAIT_MS,
        metrics_interval=0.5,
    )


@asynccontextmanager
async def running_system(
    kind: str, tmp: Path, pg_url: str, bootstrap: list[str], **overrides: Any
) -> AsyncIterator[System]:
    """Every installed service, migrated and serving HTTP on a free port; ``overrides``:
    settings of every service."""
    run_id = uuid.uuid4().hex[:8]
    system = System(tmp, f"e2e{run_id}.")
    tasks = []
    try:
        for name, svc in discover().items():
            settings = settings_for(
                name, kind, tmp, pg_url, f"e2e_{run_id}", bootstrap, f"e2e{run_id}."
            ).model_copy(update=overrides)
            await asyncio.to_thread(upgrade, svc, settings)
            app = create_app(svc, settings)
            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
            )
            tasks.append(asyncio.create_task(server.serve()))
            while not server.started:
                if tasks[-1].done():
                    tasks[-1].result()
                await asyncio.sleep(0.05)
            await asyncio.wait_for(app.state.runtime.wait_connected(), 30)
            port = server.servers[0].sockets[0].getsockname()[1]
            system.services[name] = RunningService(
                name, f"http://127.0.0.1:{port}", app.state.runtime, server, settings
            )
        yield system
    finally:
        for c in system.clients:
            await c.aclose()
        for s in system.services.values():
            s.server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for store, _ in system._publishers.values():
            await store.engine.dispose()
        if kind == "postgresql":
            await _drop_schemas(pg_url, f"e2e_{run_id}")


async def _drop_schemas(pg_url: str, prefix: str) -> None:
    from sqlalchemy import text

    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        rows = await conn.execute(
            text("select nspname from pg_namespace where nspname like :p"), {"p": prefix + "%"}
        )
        for (schema,) in rows.all():
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await engine.dispose()


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 20.0) -> T:
    """Poll ``probe`` until it returns something truthy (events cross Kafka asynchronously)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"nothing after {within}s")
        await asyncio.sleep(0.2)


def json_of(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def days(n: int) -> str:
    """A date ``n`` days from today (negative: in the past)."""
    return (today() + timedelta(days=n)).isoformat()
