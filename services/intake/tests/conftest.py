"""Intake's own fast tests: commands run on a SQLite store in a temporary folder, with
the read models and household directory intake keeps, and no HTTP or broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kyosei_events import EventStore, KeyVault, Metadata
from kyosei_events.database import create_engine
from kyosei_households import HouseholdDirectory
from kyosei_households.directory import metadata as directory_tables
from kyosei_intake.projections import IntakeReadModel
from kyosei_intake.projections import metadata as intake_tables
from kyosei_platform.application import CommandContext
from kyosei_platform.auth import Identity, Role


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EventStore]:
    keys = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db")
    vault = KeyVault(keys, bytes(range(32)))
    await vault.create_tables()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'intake'}.db")
    s = EventStore(
        engine, vault, name="intake", projections=[HouseholdDirectory(), IntakeReadModel()]
    )
    await s.create_tables()
    async with engine.begin() as conn:
        await conn.run_sync(intake_tables.create_all)
        await conn.run_sync(directory_tables.create_all)
    yield s
    await engine.dispose()
    await keys.dispose()


class Agencies:
    """Command contexts for staff of named agencies."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def __call__(self, agency: str, role: Role = Role.STAFF) -> CommandContext:
        who = Identity(agency, f"{agency}-staff", role)
        return CommandContext(
            store=self.store,
            actor=who,
            metadata=Metadata(agency_id=agency, staff_id=who.staff_id),
        )


@pytest.fixture
def as_agency(store: EventStore) -> Agencies:
    return Agencies(store)
