"""Intake's own fast tests: commands and policies on a SQLite store in a temporary
folder, with the read models and household directory intake keeps; no HTTP, and the
in-memory broker for policies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from kyosei_events import EventStore
from kyosei_households.directory import metadata as directory_tables
from kyosei_intake.app import service
from kyosei_intake.projections import metadata as intake_tables
from kyosei_platform.application import CommandContext
from kyosei_platform.testing import PolicyBus, acting_as, local_store, policy_bus


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EventStore]:
    async with local_store(tmp_path, service, intake_tables, directory_tables) as s:
        yield s


@pytest.fixture
def as_agency(store: EventStore) -> Callable[[str], CommandContext]:
    return lambda agency: acting_as(store, agency)


@pytest.fixture
async def bus(tmp_path: Path, store: EventStore) -> AsyncIterator[PolicyBus]:
    async with policy_bus(tmp_path, service, store) as b:
        yield b
