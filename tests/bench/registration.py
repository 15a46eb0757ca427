"""Registration against a town's worth of households (part of ``make bench``).

The directory and search index are filled directly with ``size`` households of two
members each, every one sharing one birth date (the worst case for the duplicate
check: a common birth date alone is no match, so none of them may be read). Then
``registrations`` new households with that birth date and fresh names are registered
through intake's command (duplicate check, events, read models), one after another.
Timings are per registration, in milliseconds.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from kyosei_events import EventStore, KeyVault
from kyosei_households.directory import households
from kyosei_households.directory import metadata as directory_tables
from kyosei_intake.app import service
from kyosei_intake.commands.households import MemberIn, RegisterHousehold, register_household
from kyosei_intake.projections import metadata as intake_tables
from kyosei_intake.projections import search_index
from kyosei_intake.search_terms import exact_terms
from kyosei_platform.testing import acting_as

BORN = date(1950, 1, 1)
CHUNK = 2000


@dataclass
class RegistrationResult:
    database: str
    households: int
    registrations: int
    p50_ms: float
    p99_ms: float
    fill_s: float


async def _fill(engine: AsyncEngine, vault: KeyVault, size: int) -> None:
    born = vault.blind_index(exact_terms(birth_date=BORN)["birth_date"])
    house_rows, index_rows = [], []
    for n in range(size):
        hid = str(uuid.uuid4())
        house_rows.append(
            {
                "household_id": hid,
                "registered_by": "houkatsu",
                "registered_at": "2026-01-01T00:00:00+00:00",
                "merged_into": None,
            }
        )
        address = exact_terms(address=f"松戸市本町{n}-1-1")["address"]
        index_rows.append(
            {"household_id": hid, "member_id": "", "token": vault.blind_index(address)}
        )
        for m in range(2):
            mid = str(uuid.uuid4())
            name = exact_terms(name=f"町民 {n}-{m}")["name"]
            index_rows += [
                {"household_id": hid, "member_id": mid, "token": vault.blind_index(name)},
                {"household_id": hid, "member_id": mid, "token": born},
            ]
    async with engine.begin() as conn:
        for i in range(0, len(house_rows), CHUNK):
            await conn.execute(insert(households), house_rows[i : i + CHUNK])
        for i in range(0, len(index_rows), CHUNK):
            await conn.execute(insert(search_index), index_rows[i : i + CHUNK])


async def registration_bench(
    database: str, engine: AsyncEngine, vault: KeyVault, size: int, registrations: int
) -> RegistrationResult:
    """Fill ``engine`` (empty) with ``size`` households, then time ``registrations``."""
    store = EventStore(
        engine, vault, name=service.name, projections=[make() for make in service.projections]
    )
    await store.create_tables()
    async with engine.begin() as conn:
        for metadata in (intake_tables, directory_tables):
            await conn.run_sync(metadata.create_all)
    started = time.perf_counter()
    await _fill(engine, vault, size)
    fill_s = time.perf_counter() - started
    ctx = acting_as(store, "houkatsu")
    took: list[float] = []
    for n in range(registrations):
        cmd = RegisterHousehold(
            address=f"柏市{n}-2-3",
            members=[MemberIn(name=f"新規 {n}", birth_date=BORN)],
        )
        t0 = time.perf_counter()
        done = await register_household(ctx, cmd)
        took.append((time.perf_counter() - t0) * 1000)
        assert done.household_id is not None and not done.candidates, "bench data matched"
    took.sort()
    return RegistrationResult(
        database,
        size,
        registrations,
        statistics.median(took),
        took[min(len(took) - 1, int(len(took) * 0.99))],
        fill_s,
    )
