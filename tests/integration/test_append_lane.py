"""The append lane (group commit of the store's own appends): appends made at the same
time share a transaction, and each keeps its own outcome. Every test runs on SQLite and
on PostgreSQL (`store`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from kyosei_events import START, ConcurrencyError, EventStore, EventTooLarge
from kyosei_events.records import NewEvent
from tests.backbone_support import case_opened, consultation, new, settled

pytestmark = pytest.mark.timeout(120)


def batches(store: EventStore) -> tuple[float, float]:
    """(batches written, events in them) by the store's lane so far."""
    labels = {"store": store.name}
    count = REGISTRY.get_sample_value("kyosei_events_append_batch_events_count", labels)
    total = REGISTRY.get_sample_value("kyosei_events_append_batch_events_sum", labels)
    return count or 0.0, total or 0.0


def cold(store: EventStore, **options: Any) -> EventStore:
    """Another store object on the same database: another process, with a cold cache."""
    return EventStore(store.engine, store.vault, name=store.name, **options)


async def test_appends_made_together_share_a_batch_and_keep_their_own_results(
    store: EventStore,
) -> None:
    await store.append("warm-up", [new(case_opened())], 0)
    before = batches(store)
    results = await asyncio.gather(
        *(store.append(f"s-{i}", [new(case_opened(f"hh-{i}"))], 0) for i in range(16))
    )
    count, events = (a - b for a, b in zip(batches(store), before, strict=True))
    assert events == 16
    assert count < 16  # at least two of them were written in one transaction
    for i, (rec,) in enumerate(results):
        assert (rec.stream_id, rec.version) == (f"s-{i}", 1)
        stored = await store.read_stream(f"s-{i}")
        assert [(r.position, r.event_id, r.hash) for r in stored] == [
            (rec.position, rec.event_id, rec.hash)
        ]
    assert len({rec.position for (rec,) in results}) == 16
    await settled(store)
    assert len(await store.read_log(START)) == 17


async def test_appends_to_one_stream_in_a_batch_chain_in_the_order_they_were_made(
    store: EventStore,
) -> None:
    await store.append("shared", [new(case_opened())], 0)
    results = await asyncio.gather(
        *(store.append("shared", [new(case_opened()), new(case_opened())]) for _ in range(8))
    )
    versions = [[r.version for r in recs] for recs in results]
    assert versions == [[2 + 2 * i, 3 + 2 * i] for i in range(8)]
    stored = await store.read_stream("shared")
    assert [r.version for r in stored] == list(range(1, 18))
    assert (await store.verify_stream("shared")).ok


async def test_only_the_append_at_fault_fails(store: EventStore) -> None:
    """In one batch: an event id used before, a stream another process moved on, an
    expected version already passed, an event too large to publish. Each of those fails
    alone; the others are written."""
    taken = new(case_opened())
    await store.append("first", [taken], 0)
    await store.append("moved", [new(case_opened())], 0)  # cached here at version 1
    await cold(store).append("moved", [new(case_opened())], 1)  # now at 2
    limited = cold(store, max_message_bytes=20_000)
    await limited.append("limited", [new(case_opened())], 0)
    big = new(consultation(summary="長" * 10_000))

    outcomes = await asyncio.gather(
        store.append("ok-1", [new(case_opened())], 0),
        store.append("again", [taken], 0),
        store.append("moved", [new(case_opened())], 1),
        store.append("first", [new(case_opened())], 0),
        store.append("ok-2", [new(case_opened())], 0),
        limited.append("limited", [big], 1),
        limited.append("limited-ok", [new(case_opened())], 0),
        return_exceptions=True,
    )
    ok_1, again, moved, first, ok_2, too_big, limited_ok = outcomes
    assert isinstance(again, IntegrityError)
    assert isinstance(moved, ConcurrencyError) and moved.stream_id == "moved"
    assert isinstance(first, ConcurrencyError) and first.actual == 1
    assert isinstance(too_big, EventTooLarge)
    for written in (ok_1, ok_2, limited_ok):
        assert isinstance(written, list) and written[0].version == 1
    assert await store.read_stream("again") == []
    assert [r.version for r in await store.read_stream("moved")] == [1, 2]
    assert [r.version for r in await store.read_stream("limited")] == [1]
    # the refused batch left no heads behind: the next appends chain on what is stored
    await store.append("moved", [new(case_opened())], 2)
    await store.append("ok-1", [new(case_opened())], 1)
    for stream in ("moved", "ok-1", "ok-2", "first"):
        assert (await store.verify_stream(stream)).ok


async def test_an_append_whose_caller_has_gone_is_not_written(store: EventStore) -> None:
    await store.append("warm-up", [new(case_opened())], 0)
    first = asyncio.ensure_future(store.append("a", [new(case_opened())], 0))
    await asyncio.sleep(0)  # the first is being written; the next two wait for a batch
    gone = asyncio.ensure_future(store.append("gone", [new(case_opened())], 0))
    kept = asyncio.ensure_future(store.append("kept", [new(case_opened())], 0))
    await asyncio.sleep(0)
    gone.cancel()
    await first
    assert (await kept)[0].version == 1
    assert gone.cancelled()
    assert await store.read_stream("gone") == []


async def test_a_failed_connection_fails_its_batch_and_the_next_append_goes_on(
    store: EventStore,
) -> None:
    await store.append("s", [new(case_opened())], 0)
    if store.dialect == "postgresql":
        # the connection the lane kept for the next batch is killed under it
        async with store.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND query LIKE 'INSERT INTO%events%'"
                )
            )
        with pytest.raises(Exception) as failed:
            await store.append("s", [new(case_opened())], 1)
        assert not isinstance(failed.value, ConcurrencyError)
    (rec,) = await store.append("s", [new(case_opened())], 1)
    assert rec.version == 2
    assert (await store.verify_stream("s")).ok


async def test_appends_and_units_of_work_take_turns(store: EventStore) -> None:
    """On SQLite the lane shares the service's one connection with its units of work;
    on PostgreSQL they run side by side. Either way none of them fails or waits long."""

    async def unit(i: int) -> None:
        async with store.unit_of_work() as uow:
            await uow.append(f"uow-{i}", [new(case_opened())], 0)
            await uow.save_checkpoint(f"reader-{i}", START)

    async def lane(i: int) -> None:
        await store.append(f"lane-{i}", [new(case_opened())], 0)

    await asyncio.wait_for(
        asyncio.gather(*(f(i) for i in range(20) for f in (unit, lane))), timeout=60
    )
    await settled(store)
    assert len(await store.read_log(START)) == 40


async def test_an_append_never_joins_a_transaction_in_progress(store: EventStore) -> None:
    """A unit of work that is rolled back takes none of the lane's appends with it,
    though on SQLite both use the one connection."""
    await store.append("warm-up", [new(case_opened())], 0)
    inside = asyncio.Event()

    async def abandoned() -> None:
        with pytest.raises(RuntimeError):
            async with store.unit_of_work() as uow:
                await uow.append("in-the-unit", [new(case_opened())], 0)
                inside.set()
                await asyncio.sleep(0.2)
                raise RuntimeError("abandoned")

    unit = asyncio.create_task(abandoned())
    await inside.wait()
    (rec,) = await store.append("outside", [new(case_opened())], 0)
    await unit
    assert rec.version == 1
    assert await store.read_stream("in-the-unit") == []
    assert [r.event_id for r in await store.read_stream("outside")] == [rec.event_id]


async def test_a_disposed_engine_closes_the_connection_kept_for_the_next_batch(
    store: EventStore,
) -> None:
    await store.append("s", [new(case_opened())], 0)
    await store.engine.dispose()
    # the store goes on with a new pool, and nothing is left checked out of the old one
    (rec,) = await store.append("s", [new(case_opened())], 1)
    assert rec.version == 2
    if store.dialect == "postgresql":
        assert store.engine.pool.checkedout() <= 1  # at most the one kept again now


async def test_new_events_are_what_the_store_read_back(store: EventStore) -> None:
    events = [new(consultation()) for _ in range(3)]
    recorded = await store.append("c", events, 0)
    assert [r.event_id for r in recorded] == [e.event_id for e in events]
    decoded, version = await cold(store).load("c")
    assert version == 3
    assert [d.event for d in decoded] == [e.event for e in events]
    assert all(isinstance(e, NewEvent) for e in events)
