"""Key-vault operations: master-key rotation, erasure, and reconciling a restored vault.

- ``kyosei keys rewrap`` re-wraps every household key from ``KYOSEI_PREVIOUS_MASTER_KEY``
  to ``KYOSEI_MASTER_KEY``, in batches; each key is replaced only if it is still the one
  read, so services may run meanwhile (with either key), and an interrupted run is
  simply run again.
- ``kyosei keys erase SERVICE HOUSEHOLD`` records the erasure in the service's own store
  (table ``key_erasures``), then deletes the household's key. The record lives outside
  the key vault, in the store's database and its backups.
- ``kyosei keys reconcile SERVICE`` deletes from the vault every key the service's store
  records as erased: run it after restoring a key-vault backup, so that no erased key
  comes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from kyosei_events import KeyVault
from kyosei_events.crypto import master_key_from_hex
from kyosei_events.database import create_engine

from .settings import Settings

erasure_metadata = MetaData()
key_erasures = Table(
    "key_erasures",
    erasure_metadata,
    Column("household_id", String(64), primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)


async def _ensure_erasures(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(erasure_metadata.create_all)


async def erase(engine: AsyncEngine, vault: KeyVault, household_id: str) -> bool:
    """Record the erasure in the store's database (committed first, so a crash in
    between leaves a record that ``reconcile`` completes), then delete the key.
    Returns whether a key existed."""
    await _ensure_erasures(engine)
    async with engine.begin() as conn:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        await conn.execute(
            insert(key_erasures)
            .values(household_id=household_id, erased_at=datetime.now(UTC))
            .on_conflict_do_nothing()
        )
    return await vault.erase(household_id)


async def reconcile(engine: AsyncEngine, vault: KeyVault) -> tuple[int, int]:
    """Delete every key the store records as erased. Returns (recorded, deleted now)."""
    await _ensure_erasures(engine)
    async with engine.connect() as conn:
        erased = set((await conn.execute(select(key_erasures.c.household_id))).scalars())
    present = erased & await vault.household_ids()
    for household_id in sorted(present):
        await vault.erase(household_id)
    return len(erased), len(present)


async def rewrap(
    vault: KeyVault, *, batch: int = 500, progress: Callable[[int, int], None] | None = None
) -> tuple[int, int]:
    """Re-wrap every household key under the master key. Returns (re-wrapped, already)."""
    done = already = 0
    after = ""
    while True:
        d, a, last = await vault.rewrap(after=after, limit=batch)
        if last is None:
            return done, already
        done, already, after = done + d, already + a, last
        if progress is not None:
            progress(done, already)


@asynccontextmanager
async def _vault(settings: Settings) -> AsyncIterator[KeyVault]:
    keys = create_engine(settings.keys_database_url, schema=settings.keys_db_schema)
    try:
        yield KeyVault(
            keys,
            master_key_from_hex(settings.master_key),
            cache_size=0,
            previous_master_key=settings.previous_master_key_bytes(),
        )
    finally:
        await keys.dispose()


async def rewrap_command(settings: Settings, batch: int) -> int:
    if not settings.previous_master_key:
        print("keys rewrap: set KYOSEI_PREVIOUS_MASTER_KEY (the old master key)")
        return 2

    def progress(done: int, already: int) -> None:
        print(f"… {done + already} keys: {done} re-wrapped, {already} already", flush=True)

    async with _vault(settings) as vault:
        done, already = await rewrap(vault, batch=batch, progress=progress)
    print(
        f"keys rewrap: {done} re-wrapped, {already} already under KYOSEI_MASTER_KEY; "
        "every household key opens with KYOSEI_MASTER_KEY alone"
    )
    return 0


async def erase_command(service: str, settings: Settings, household_id: str) -> int:
    engine = create_engine(settings.database_url, schema=settings.db_schema)
    try:
        async with _vault(settings) as vault:
            existed = await erase(engine, vault, household_id)
    finally:
        await engine.dispose()
    print(
        f"keys erase: household {household_id} "
        + ("erased" if existed else "had no key; the erasure is recorded")
        + f" (recorded in {service}'s store)"
    )
    return 0


async def reconcile_command(service: str, settings: Settings) -> int:
    engine = create_engine(settings.database_url, schema=settings.db_schema)
    try:
        async with _vault(settings) as vault:
            recorded, deleted = await reconcile(engine, vault)
    finally:
        await engine.dispose()
    print(
        f"keys reconcile: {service} records {recorded} erased households; "
        f"{deleted} of their keys were in the vault and are deleted again"
    )
    return 0
