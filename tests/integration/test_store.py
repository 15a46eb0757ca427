"""Event store conformance: every test runs on SQLite and on PostgreSQL (`store`),
except the commit-order tests, which need concurrent writers (PostgreSQL only)."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from kyosei_events import START, ConcurrencyError, EventStore, LogCursor, RecordedEvent
from kyosei_events.codec import GENESIS
from kyosei_events.database import create_engine
from tests.backbone_support import case_opened, consultation, new, settled, uid


def fresh(store: EventStore) -> EventStore:
    """Another store object on the same database: another process, with a cold cache."""
    return EventStore(store.engine, store.vault, name=store.name)


async def test_append_at_expected_versions(store: EventStore) -> None:
    first = await store.append("s-1", [new(case_opened()), new(case_opened())], expected_version=0)
    assert [r.version for r in first] == [1, 2]
    assert first[0].prev_hash == GENESIS
    assert first[1].prev_hash == first[0].hash

    third = await store.append("s-1", [new(case_opened())], expected_version=2)
    assert [r.version for r in third] == [3]
    assert third[0].prev_hash == first[1].hash

    at_head = await store.append("s-1", [new(case_opened())], expected_version=None)
    assert [r.version for r in at_head] == [4]

    # A cold store object (no head cache) appends at the same places.
    other = fresh(store)
    assert [r.version for r in await other.append("s-1", [new(case_opened())], 4)] == [5]
    assert [r.version for r in await other.append("s-new", [new(case_opened())], None)] == [1]

    stored = await store.read_stream("s-1")
    assert [r.version for r in stored] == [1, 2, 3, 4, 5]
    assert [r.event_id for r in stored[:4]] == [r.event_id for r in [*first, *third, *at_head]]
    assert (await store.verify_stream("s-1")).ok


async def test_append_nothing_is_a_no_op(store: EventStore) -> None:
    assert await store.append("s-empty", [], expected_version=0) == []
    assert await store.read_stream("s-empty") == []


async def test_expected_version_zero_on_existing_stream_conflicts(store: EventStore) -> None:
    await store.append("s-1", [new(case_opened())], 0)
    for s in (store, fresh(store)):
        with pytest.raises(ConcurrencyError) as info:
            await s.append("s-1", [new(case_opened())], 0)
        assert info.value.stream_id == "s-1"
        assert info.value.expected == 0
    assert len(await store.read_stream("s-1")) == 1


@pytest.mark.parametrize("expected", [1, 2], ids=["stale", "stale-by-one"])
async def test_stale_expected_version_conflicts(store: EventStore, expected: int) -> None:
    await store.append("s-1", [new(case_opened()) for _ in range(3)], 0)
    for s in (store, fresh(store)):
        with pytest.raises(ConcurrencyError) as info:
            await s.append("s-1", [new(case_opened())], expected)
        assert info.value.expected == expected
        assert "reload" in str(info.value)
    assert [r.version for r in await store.read_stream("s-1")] == [1, 2, 3]


@pytest.mark.parametrize("expected", [4, 10], ids=["ahead-by-one", "far-ahead"])
async def test_expected_version_ahead_of_stream_conflicts(store: EventStore, expected: int) -> None:
    await store.append("s-1", [new(case_opened()) for _ in range(3)], 0)
    for s in (store, fresh(store)):
        with pytest.raises(ConcurrencyError):
            await s.append("s-1", [new(case_opened())], expected)
    with pytest.raises(ConcurrencyError):
        await store.append("s-missing", [new(case_opened())], 1)
    assert [r.version for r in await store.read_stream("s-1")] == [1, 2, 3]
    assert await store.read_stream("s-missing") == []


async def test_a_failed_unit_of_work_leaves_nothing(store: EventStore) -> None:
    await store.append("s-a", [new(case_opened())], 0)
    with pytest.raises(ConcurrencyError):
        async with store.unit_of_work() as uow:
            await uow.append("s-b", [new(case_opened()), new(case_opened())], 0)
            await uow.append("s-a", [new(case_opened())], 0)  # conflicts
    assert await store.read_stream("s-b") == []
    await settled(store)
    assert len(await store.read_log(START)) == 1
    # The head cache did not take the rolled-back append as the head.
    assert [r.version for r in await store.append("s-b", [new(case_opened())], 0)] == [1]


async def test_an_event_id_is_stored_once(store: EventStore) -> None:
    event = new(case_opened())
    await store.append("s-1", [event], 0)
    with pytest.raises(IntegrityError):
        await store.append("s-2", [event], 0)
    assert await store.read_stream("s-2") == []


async def test_racing_writers_at_the_same_version_have_one_winner(store: EventStore) -> None:
    writers = 12
    stores = [store if i % 2 else fresh(store) for i in range(writers)]

    async def attempt(s: EventStore, expected: int) -> RecordedEvent | None:
        try:
            (rec,) = await s.append("contended", [new(case_opened())], expected)
            return rec
        except ConcurrencyError:
            return None

    for expected in (0, 1, 2):
        results = await asyncio.gather(*(attempt(s, expected) for s in stores))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1, f"{len(winners)} writers won version {expected + 1}"
        stream = await store.read_stream("contended")
        assert [r.version for r in stream] == list(range(1, expected + 2))
        assert stream[-1].event_id == winners[0].event_id
    assert (await store.verify_stream("contended")).ok


async def test_retrying_concurrent_writers_never_duplicate_a_version(store: EventStore) -> None:
    writers, per_writer = 8, 4
    written: list[str] = []

    async def writer(s: EventStore) -> int:
        conflicts = 0
        for _ in range(per_writer):
            while True:
                head = len(await s.read_stream("busy"))
                event = new(case_opened())
                try:
                    await s.append("busy", [event], head)
                except ConcurrencyError:
                    conflicts += 1
                    await asyncio.sleep(0)
                    continue
                written.append(event.event_id)
                break
        return conflicts

    await asyncio.gather(*(writer(fresh(store)) for _ in range(writers)))
    stream = await store.read_stream("busy")
    assert [r.version for r in stream] == list(range(1, writers * per_writer + 1))
    assert sorted(r.event_id for r in stream) == sorted(written)
    assert len(set(written)) == writers * per_writer
    assert (await store.verify_stream("busy")).ok


async def test_concurrent_appends_to_distinct_streams_all_succeed(store: EventStore) -> None:
    streams = [uid("s") for _ in range(16)]

    async def write(stream_id: str) -> list[RecordedEvent]:
        first = await store.append(stream_id, [new(case_opened())], 0)
        return first + await store.append(stream_id, [new(case_opened()), new(case_opened())], 1)

    results = await asyncio.gather(*(write(s) for s in streams))
    positions = [r.position for recs in results for r in recs]
    assert len(set(positions)) == len(positions) == 48
    for stream_id in streams:
        assert [r.version for r in await store.read_stream(stream_id)] == [1, 2, 3]
    await settled(store)
    log = await store.read_log(START, 1000)
    assert len(log) == 48
    assert {r.event_id for r in log} == {r.event_id for recs in results for r in recs}


async def test_global_position_increases_with_each_append(store: EventStore) -> None:
    appended: list[RecordedEvent] = []
    for i in range(6):
        appended += await store.append(f"s-{i % 3}", [new(case_opened()), new(case_opened())])
    positions = [r.position for r in appended]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    await settled(store)
    log = await store.read_log(START)
    assert [r.event_id for r in log] == [r.event_id for r in appended]
    assert [r.position for r in log] == positions


async def test_read_log_pages_deliver_every_event_once_in_order(store: EventStore) -> None:
    appended: list[RecordedEvent] = []
    for i in range(23):
        appended += await store.append(f"s-{i % 5}", [new(case_opened())])
    expected = [r.event_id for r in appended]
    await settled(store)

    pages: list[list[RecordedEvent]] = []
    cursor: LogCursor = START
    while page := await store.read_log(cursor, limit=7):
        assert len(page) <= 7
        pages.append(page)
        cursor = page[-1].cursor
    assert [len(p) for p in pages] == [7, 7, 7, 2]
    assert [r.event_id for p in pages for r in p] == expected
    assert await store.read_log(cursor) == []

    # From a cursor in the middle: exactly the events after it.
    middle = (await store.read_log(START, limit=10))[-1].cursor
    assert [r.event_id for r in await store.read_log(middle)] == expected[10:]

    # New events after the end are delivered from the saved cursor.
    later = await store.append("s-later", [new(case_opened())], 0)
    await settled(store)
    assert [r.event_id for r in await store.read_log(cursor)] == [later[0].event_id]


async def test_read_log_and_head_pages_like_read_log_and_tell_the_head(
    store: EventStore,
) -> None:
    assert await store.read_log_and_head(START) == ([], 0)
    appended: list[RecordedEvent] = []
    for i in range(5):
        appended += await store.append(f"s-{i}", [new(case_opened()), new(case_opened())], 0)
    await settled(store)
    head = max(r.position for r in appended)

    page, seen_head = await store.read_log_and_head(START, limit=4)
    assert page == await store.read_log(START, limit=4)
    assert [r.event_id for r in page] == [r.event_id for r in appended[:4]]
    assert seen_head == head
    rest, seen_head = await store.read_log_and_head(page[-1].cursor)
    assert [r.event_id for r in rest] == [r.event_id for r in appended[4:]]
    assert seen_head == head
    # Past the end: nothing to read, and still the head.
    assert await store.read_log_and_head(rest[-1].cursor) == ([], head)


async def test_read_stream_after_version_and_load(store: EventStore) -> None:
    events = [new(consultation("hh-1")) for _ in range(4)]
    await store.append("cons-1", events, 0)
    assert [r.version for r in await store.read_stream("cons-1", after_version=2)] == [3, 4]
    decoded, version = await fresh(store).load("cons-1")
    assert version == 4
    assert [d.event for d in decoded] == [e.event for e in events]
    assert decoded[0].metadata == events[0].metadata
    assert await store.load("nothing") == ([], 0)


async def test_read_subject_returns_one_households_events_across_streams(
    store: EventStore,
) -> None:
    mine: list[RecordedEvent] = []
    mine += await store.append("consultation-1", [new(consultation("hh-1"))], 0)
    await store.append("consultation-2", [new(consultation("hh-2"))], 0)
    mine += await store.append("case-1", [new(case_opened("hh-1"))], 0)
    await store.append("case-2", [new(case_opened("hh-2"))], 0)
    mine += await store.append("consultation-1", [new(consultation("hh-1"))], 1)

    found = await store.read_subject("hh-1")
    assert [r.event_id for r in found] == [r.event_id for r in mine]
    assert {r.subject for r in found} == {"hh-1"}
    assert [r.position for r in found] == sorted(r.position for r in found)
    assert await store.read_subject("hh-nobody") == []


async def test_checkpoints(store: EventStore) -> None:
    assert await store.checkpoint("reader") == START
    recs = await store.append("s-1", [new(case_opened()), new(case_opened())], 0)
    await store.save_checkpoint("reader", recs[0].cursor)
    assert await store.checkpoint("reader") == recs[0].cursor
    await store.save_checkpoint("reader", recs[1].cursor)
    assert await fresh(store).checkpoint("reader") == recs[1].cursor
    assert await store.checkpoint("other") == START


@pytest.mark.postgres
async def test_read_log_never_skips_an_event_that_commits_late(pg_store: EventStore) -> None:
    """Transaction A appends first (lower position) but commits after B. A reader that
    went by position alone would take B, move its cursor past A's position, and never
    see A. The store withholds B until A has committed, then delivers both."""
    store = pg_store
    (before,) = await store.append("s-before", [new(case_opened())], 0)
    await settled(store)
    first_read = await store.read_log(START)
    assert [r.event_id for r in first_read] == [before.event_id]
    cursor = first_read[-1].cursor

    a_may_commit = asyncio.Event()
    a_appended = asyncio.Event()
    a_records: list[RecordedEvent] = []

    async def transaction_a() -> None:
        async with store.unit_of_work() as uow:
            a_records.extend(await uow.append("s-a", [new(case_opened())], 0))
            a_appended.set()
            await a_may_commit.wait()

    task_a = asyncio.create_task(transaction_a())
    try:
        await asyncio.wait_for(a_appended.wait(), 10)
        async with store.unit_of_work() as uow:
            b_records = await uow.append("s-b", [new(case_opened())], 0)
        # B committed; A holds the lower position and has not committed.
        assert a_records[0].position < b_records[0].position
        assert [r.event_id for r in await store.read_stream("s-b")] == [b_records[0].event_id]

        while_a_open = await store.read_log(cursor)
        # The head shows that a committed event (B) lies beyond what could be read.
        held, head = await store.read_log_and_head(cursor)
        assert [r.event_id for r in held] == [r.event_id for r in while_a_open]
        assert head == b_records[0].position > max((r.position for r in held), default=0)
        assert a_records[0].event_id not in {r.event_id for r in while_a_open}
        assert b_records[0].event_id not in {r.event_id for r in while_a_open}, (
            "B was delivered while A (lower position) was uncommitted: a reader's cursor "
            "would move past A"
        )
        for r in while_a_open:  # whatever is delivered, the cursor may safely move on
            cursor = r.cursor
    finally:
        a_may_commit.set()
        await task_a

    await settled(store)
    after = await store.read_log(cursor)
    ids = [r.event_id for r in after]
    assert ids == [a_records[0].event_id, b_records[0].event_id]
    assert await store.read_log(after[-1].cursor) == []


@pytest.mark.postgres
async def test_a_transaction_open_in_another_database_does_not_hold_the_log_back(
    pg_store: EventStore,
) -> None:
    """The horizon is this database's oldest writer, not the cluster's: a write
    transaction left open in another database of the same server (another application,
    a forgotten psql session) cannot write this store, so the log delivers at once."""
    store = pg_store
    other_url = make_url(store.engine.url).set(database="postgres")
    other = create_engine(other_url.render_as_string(hide_password=False))
    try:
        async with other.connect() as foreign:
            await foreign.execute(text("create temp table held_open (n int)"))
            await foreign.execute(text("select pg_current_xact_id()"))
            # The foreign transaction now holds a transaction id, older than the append.
            (rec,) = await store.append("s-foreign", [new(case_opened())], 0)
            started = time.monotonic()
            delivered: list[RecordedEvent] = []
            while time.monotonic() - started < 1.0 and not delivered:
                delivered = await store.read_log(START)
                if not delivered:
                    await asyncio.sleep(0.05)
            waited = time.monotonic() - started
            assert [r.event_id for r in delivered] == [rec.event_id], (
                f"the log withheld a committed event for {waited:.1f} s behind a "
                "transaction in another database"
            )
            await foreign.rollback()
    finally:
        await other.dispose()


@pytest.mark.postgres
async def test_a_transaction_that_got_its_id_before_appending_is_never_skipped(
    pg_store: EventStore,
) -> None:
    """A transaction of this database takes its id when it first writes anything, maybe
    long before it appends. Until it ends, later appends are withheld; then it comes
    first, in transaction-id order."""
    store = pg_store
    may_append, may_commit = asyncio.Event(), asyncio.Event()
    early: list[RecordedEvent] = []

    async def early_writer() -> None:
        async with store.unit_of_work() as uow:
            await uow.conn.execute(text("select pg_current_xact_id()"))  # id taken now
            may_append.set()
            await may_commit.wait()
            early.extend(await uow.append("s-early", [new(case_opened())], 0))

    task = asyncio.create_task(early_writer())
    try:
        await asyncio.wait_for(may_append.wait(), 10)
        (late,) = await store.append("s-late", [new(case_opened())], 0)
        assert late.event_id not in {r.event_id for r in await store.read_log(START)}
    finally:
        may_commit.set()
        await task
    await settled(store)
    assert [r.event_id for r in await store.read_log(START)] == [
        early[0].event_id,
        late.event_id,
    ]
