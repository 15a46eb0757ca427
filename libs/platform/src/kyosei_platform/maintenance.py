"""Operator and auditor commands that work on a service's store directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kyosei_events import EventStore, KeyVault
from kyosei_events.crypto import master_key_from_hex
from kyosei_events.database import create_engine
from kyosei_events.projection import rebuild as rebuild_projection

from .service import Service
from .settings import Settings


@asynccontextmanager
async def _open(service: Service, settings: Settings) -> AsyncIterator[EventStore]:
    """The service's store, on engines of its own that are disposed of on the way out."""
    engine = create_engine(settings.database_url, schema=settings.db_schema)
    keys = create_engine(settings.keys_database_url, schema=settings.keys_db_schema)
    try:
        vault = KeyVault(
            keys, master_key_from_hex(settings.master_key), cache_size=settings.key_cache_size
        )
        yield EventStore(engine, vault, name=service.name)
    finally:
        await engine.dispose()
        await keys.dispose()


async def verify(service: Service, settings: Settings) -> int:
    """Print one line per broken stream and a summary; exit status 1 if any is broken."""
    async with _open(service, settings) as store:
        streams = await store.stream_ids()
        broken = 0
        events = 0
        for i, stream_id in enumerate(streams, 1):
            report = await store.verify_stream(stream_id)
            events += report.events
            if report.broken is not None:
                broken += 1
                b = report.broken
                print(
                    f"BROKEN {stream_id} at version {b.version} (position {b.position}): {b.reason}"
                )
            if i % 1000 == 0:
                print(f"… {i}/{len(streams)} streams checked")
        print(f"{service.name}: {len(streams)} streams, {events} events, {broken} broken")
        return 1 if broken else 0


async def rebuild(service: Service, settings: Settings) -> None:
    async with _open(service, settings) as store:
        for make in service.projections:
            projection = make()
            print(f"{service.name}: rebuilding {projection.name}", flush=True)

            def progress(done: int, name: str = projection.name) -> None:
                if done % 10_000 == 0:
                    print(f"… {name}: {done} events", flush=True)

            count = await rebuild_projection(store, projection, progress=progress)
            print(f"{service.name}: {projection.name} rebuilt from {count} events")
