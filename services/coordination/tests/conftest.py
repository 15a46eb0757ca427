"""Coordination's own fast tests: its store on SQLite with the case list and its copy
of the household directory, and its policies on the in-memory broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kyosei_coordination.app import service
from kyosei_coordination.projections import metadata as coordination_tables
from kyosei_events import EventStore
from kyosei_households.directory import metadata as directory_tables
from kyosei_platform.testing import PolicyBus, local_store, policy_bus


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EventStore]:
    async with local_store(tmp_path, service, coordination_tables, directory_tables) as s:
        yield s


@pytest.fixture
async def bus(tmp_path: Path, store: EventStore) -> AsyncIterator[PolicyBus]:
    async with policy_bus(tmp_path, service, store) as b:
        yield b
