"""A deadlock or serialization failure on a command's save is sent again (bounded); a
command that lost a race is decided again on the new state (bounded), unless the
caller sent If-Match (then 412); what remains is a 409 in the error envelope, never a
500. The concurrent cases over HTTP: tests/e2e/test_concurrent_writes.py and
tests/e2e/test_etags.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from kyosei_events import ConcurrencyError, Metadata
from kyosei_events.catalogue.intake import HouseholdRegistered
from kyosei_platform import errors
from kyosei_platform.api import NEVER_MATCHES, if_match
from kyosei_platform.application import (
    COMMAND_ATTEMPTS,
    SAVE_ATTEMPTS,
    Change,
    CommandContext,
    PreconditionFailed,
    is_write_conflict,
    retry_on_conflict,
)
from kyosei_platform.errors import ApiError


def db_error(sqlstate: str) -> sa_exc.DBAPIError:
    orig = Exception(f"sqlstate {sqlstate}")
    orig.sqlstate = sqlstate  # type: ignore[attr-defined]
    return sa_exc.DBAPIError("INSERT INTO events", {}, orig)


def test_deadlocks_and_serialization_failures_are_write_conflicts() -> None:
    assert is_write_conflict(db_error("40P01"))
    assert is_write_conflict(db_error("40001"))
    assert not is_write_conflict(db_error("23505"))
    assert not is_write_conflict(ValueError("x"))
    try:
        try:
            raise db_error("40P01")
        except sa_exc.DBAPIError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_write_conflict(outer)


class FlakyStore:
    """A store whose first ``failures`` appends are rolled back as deadlocks."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    async def append(self, stream: str, events: Any, expected: int) -> list[Any]:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise db_error("40P01")
        return []


class State:
    version = 0
    exists = True
    evolved = 0

    def evolve(self, event: Any) -> None:
        self.evolved += 1


def event() -> HouseholdRegistered:
    return HouseholdRegistered.model_construct(household_id="h1")


async def save_on(store: FlakyStore) -> State:
    ctx = CommandContext(store=store, metadata=Metadata(agency_id="a"))  # type: ignore[arg-type]
    state = State()
    await ctx.save(Change(state, "household-h1", [event()], "h1"))  # type: ignore[arg-type]
    return state


async def test_a_save_rolled_back_as_a_deadlock_is_sent_again() -> None:
    store = FlakyStore(failures=SAVE_ATTEMPTS - 1)
    state = await save_on(store)
    assert store.attempts == SAVE_ATTEMPTS
    assert state.evolved == 1


async def test_a_deadlock_that_remains_is_raised_after_the_last_attempt() -> None:
    store = FlakyStore(failures=SAVE_ATTEMPTS)
    with pytest.raises(sa_exc.DBAPIError):
        await save_on(store)
    assert store.attempts == SAVE_ATTEMPTS


async def test_a_remaining_write_conflict_is_a_409_in_the_envelope() -> None:
    app = FastAPI()
    errors.install(app)

    @app.post("/deadlock")
    async def deadlock() -> None:
        raise db_error("40P01")

    @app.post("/other")
    async def other() -> None:
        raise db_error("23502")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post("/deadlock")
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "concurrent_update"
        other_answer = await client.post("/other")
        assert other_answer.status_code == 500
        assert other_answer.json()["error"]["code"] == "internal_error"


class RacedStore:
    """A store at ``version``; the first ``losses`` appends find another writer there."""

    def __init__(self, losses: int, version: int = 3) -> None:
        self.losses, self.version, self.appends = losses, version, 0

    async def append(self, stream: str, events: Any, expected: int) -> list[Any]:
        self.appends += 1
        if self.appends <= self.losses or expected != self.version:
            raise ConcurrencyError(stream, expected, self.version)
        self.version += len(events)
        return []


def context(store: RacedStore) -> CommandContext:
    return CommandContext(store=store, metadata=Metadata(agency_id="a"))  # type: ignore[arg-type]


@retry_on_conflict
async def record(ctx: CommandContext, if_match: int | None = None) -> State:
    state = State()
    state.version = ctx.store.version  # type: ignore[attr-defined]  # "loaded"
    await ctx.save(Change(state, "household-h1", [event()], "h1", if_match))  # type: ignore[arg-type]
    return state


async def test_a_command_that_lost_a_race_is_decided_again() -> None:
    store = RacedStore(losses=COMMAND_ATTEMPTS - 1)
    assert (await record(context(store))).evolved == 1
    assert store.appends == COMMAND_ATTEMPTS


async def test_a_race_lost_every_time_is_raised_after_the_last_attempt() -> None:
    store = RacedStore(losses=COMMAND_ATTEMPTS)
    with pytest.raises(ConcurrencyError):
        await record(context(store))
    assert store.appends == COMMAND_ATTEMPTS


async def test_with_if_match_a_lost_race_is_a_failed_precondition_at_once() -> None:
    store = RacedStore(losses=0, version=5)
    with pytest.raises(PreconditionFailed) as failed:
        await record(context(store), if_match=4)
    assert (failed.value.sent, failed.value.current, store.appends) == (4, 5, 1)
    assert '"5"' in str(failed.value)
    assert (await record(context(store), if_match=5)).evolved == 1


@pytest.mark.parametrize(
    ("header", "version"),
    [(None, None), ("*", None), ('"7"', 7), (' "7" ', 7), ("7", 7), ('W/"7"', NEVER_MATCHES)],
)
async def test_if_match_takes_the_etag_a_star_or_a_bare_version(
    header: str | None, version: int | None
) -> None:
    assert await if_match(header) == version


@pytest.mark.parametrize("header", ['"7", "8"', "seven", '"-1"', '"99999999999"', '"7'])
async def test_any_other_if_match_is_refused_naming_the_header(header: str) -> None:
    with pytest.raises(ApiError) as refused:
        await if_match(header)
    assert (refused.value.status, refused.value.field) == (422, "If-Match")
