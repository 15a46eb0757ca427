"""Services migrating together on a fresh PostgreSQL database (every service's first
start): intake and coordination create the shared key vault's schema and table and
their own schemas at the same moment, and none of them fails."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid

import pytest
from sqlalchemy import text

from kyosei_events.database import create_engine
from tests.conftest import PG_URL, require_postgres
from tests.integration.migration_race import migrate_rounds

ROUNDS = 20
SERVICES = ("intake", "coordination")

pytestmark = pytest.mark.postgres


async def _drop_schemas(like: str) -> None:
    engine = create_engine(PG_URL)
    try:
        async with engine.begin() as conn:
            names = (
                await conn.execute(
                    text("select nspname from pg_namespace where nspname like :p"), {"p": like}
                )
            ).scalars()
            for name in list(names):
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        await engine.dispose()


async def test_intake_and_coordination_migrate_together_on_a_fresh_database() -> None:
    require_postgres()
    run = f"race_{uuid.uuid4().hex[:8]}"
    prefixes = [f"{run}_{i:02d}" for i in range(ROUNDS)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(SERVICES))
    results = ctx.Queue()
    workers = [
        ctx.Process(target=migrate_rounds, args=(s, PG_URL, prefixes, barrier, results))
        for s in SERVICES
    ]
    started = time.monotonic()
    try:
        for w in workers:
            w.start()
        outcomes = []
        for _ in range(ROUNDS * len(SERVICES)):
            outcomes.append(await asyncio.to_thread(results.get, True, 180))
        elapsed = time.monotonic() - started
        for w in workers:
            w.join(30)
        failures = [o for o in outcomes if o[2] is not None]
        print(f"{len(outcomes)} migrations in {elapsed:.1f}s, {len(failures)} failed")
        assert not failures, f"{len(failures)} of {len(outcomes)} migrations failed:\n" + "\n".join(
            f"{prefix} {service}: {error}" for prefix, service, error in failures
        )
    finally:
        for w in workers:
            if w.is_alive():
                w.kill()
        await _drop_schemas(f"{run}_%")
