"""A read-model rebuild while the service keeps appending ends equal to a replay from zero.

Intake's read models (the household directory and IntakeReadModel) are inline
projections: every append updates them in its own transaction. ``kyosei rebuild`` (and
``kyosei migrate`` after a reshaping revision) resets and replays them while the
service may be serving; live appends must neither collide with the replay nor be lost
or applied twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Table, select

from kyosei_events import EventStore, KeyVault
from kyosei_events.projection import rebuild
from kyosei_households.directory import TABLES as DIRECTORY_TABLES
from kyosei_households.directory import metadata as directory_tables
from kyosei_intake.app import service
from kyosei_intake.commands import consultations, households
from kyosei_intake.projections import TABLES as INTAKE_TABLES
from kyosei_intake.projections import metadata as intake_tables
from kyosei_platform.testing import acting_as
from tests.conftest import Database

READ_MODEL: tuple[Table, ...] = (*DIRECTORY_TABLES, *INTAKE_TABLES)
APPENDS = 2000
WRITERS = 8
AGENCIES = ("houkatsu", "jiritsu", "kosodate")


@pytest.fixture
async def intake(database: Database, vault: KeyVault) -> AsyncIterator[EventStore]:
    """Intake's store with its inline projections and read-model tables."""
    engine = database.engine()
    store = EventStore(
        engine, vault, name="intake", projections=[make() for make in service.projections]
    )
    await store.create_tables()
    async with engine.begin() as conn:
        for metadata in (directory_tables, intake_tables):
            await conn.run_sync(metadata.create_all)
    yield store
    await engine.dispose()


async def snapshot(store: EventStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table's rows, sorted."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with store.engine.connect() as conn:
        for table in READ_MODEL:
            rows = [tuple(r) for r in await conn.execute(select(table))]
            out[table.name] = sorted(rows, key=repr)
    return out


def differences(live: dict[str, list[Any]], replayed: dict[str, list[Any]]) -> dict[str, Any]:
    """Per table: rows only in the live read model, rows only in the replay."""
    out = {}
    for name in replayed:
        extra = set(live[name]) - set(replayed[name])
        missing = set(replayed[name]) - set(live[name])
        if extra or missing or len(live[name]) != len(replayed[name]):
            out[name] = {
                "rows": len(live[name]),
                "replayed": len(replayed[name]),
                "extra": len(extra),
                "missing": len(missing),
            }
    return out


async def register(store: EventStore, i: int) -> str:
    registered = await households.register_household(
        acting_as(store, AGENCIES[i % len(AGENCIES)]),
        households.RegisterHousehold(
            address=f"松戸市本町{i}-2-3",
            members=[
                households.MemberIn(name=f"松戸 ハル{i}", birth_date=date(1944, 4, 1)),
                households.MemberIn(name=f"松戸 一郎{i}", kana=f"まつど いちろう{i}"),
            ],
            proceed_despite_duplicates=True,
        ),
    )
    assert registered.household_id is not None
    return registered.household_id


async def consult(store: EventStore, i: int, household_id: str) -> None:
    await consultations.receive_consultation(
        acting_as(store, AGENCIES[i % len(AGENCIES)]),
        consultations.ReceiveConsultation(
            household_id=household_id,
            window="community_general_support_center",
            channel="phone",
            concerns=["care"],
            summary=f"相談 {i}",
        ),
    )


async def rebuild_all(store: EventStore) -> int:
    """What `kyosei rebuild intake` does: a store without projections of its own."""
    maintenance = EventStore(store.engine, store.vault, name=store.name)
    return sum([await rebuild(maintenance, make()) for make in service.projections])


async def test_a_rebuild_during_live_appends_equals_a_replay_from_zero(
    intake: EventStore,
) -> None:
    # A log to replay before the writers start: a rebuild that takes a while.
    seeded = [await register(intake, i) for i in range(200)]
    counter = iter(range(200, 200 + APPENDS))
    registered = list(seeded)
    errors: list[BaseException] = []

    async def writer() -> None:
        for i in counter:
            try:
                if i % 4 == 3:
                    await consult(intake, i, registered[i % len(registered)])
                else:
                    registered.append(await register(intake, i))
            except Exception as exc:  # a failure is part of the verdict
                errors.append(exc)

    rebuilds: list[tuple[int, float]] = []

    async def rebuilder() -> None:
        for _ in range(3):
            await asyncio.sleep(4)
            started = time.monotonic()
            try:
                count = await rebuild_all(intake)
            except Exception as exc:
                errors.append(exc)
            else:
                rebuilds.append((count, time.monotonic() - started))

    started = time.monotonic()
    await asyncio.gather(rebuilder(), *(writer() for _ in range(WRITERS)))
    elapsed = time.monotonic() - started
    live = await snapshot(intake)

    replayed_started = time.monotonic()
    events = await rebuild_all(intake)  # nobody writing: a replay from zero
    replay = time.monotonic() - replayed_started
    replayed = await snapshot(intake)
    print(
        f"\n{intake.engine.dialect.name}: {APPENDS} appends by {WRITERS} writers in "
        f"{elapsed:.1f}s during rebuilds {rebuilds}; replay from zero of {events} events "
        f"in {replay:.2f}s; {len(errors)} failures {sorted({type(e).__name__ for e in errors})}"
        f"; live read model against the replay: {differences(live, replayed)}"
    )

    assert differences(live, replayed) == {}
    assert not errors, f"{len(errors)} appends or rebuilds failed, the first: {errors[0]!r}"
    assert live == replayed
    assert len(replayed["directory_households"]) == len(registered) == 200 + APPENDS * 3 // 4
