"""One relay per service publishes at a time: on PostgreSQL the relays of every replica
share one checkpoint and elect a leader with a session advisory lock; the checkpoint
never moves back."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict

import pytest
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY
from sqlalchemy import text

from kyosei_events import START, EventStore, LogCursor, OutboxRelay, RecordedEvent
from tests.backbone_support import case_opened, new, read_topic, settled

SOURCE = "/kyosei/test"
EVENTS = 5_000
BATCH = 200


async def test_the_checkpoint_never_moves_back(store: EventStore) -> None:
    await store.save_checkpoint("relay", LogCursor(10, 20))
    await store.save_checkpoint("relay", LogCursor(10, 15))
    await store.save_checkpoint("relay", LogCursor(5, 30))
    assert await store.checkpoint("relay") == LogCursor(10, 20)
    await store.save_checkpoint("relay", LogCursor(11, 1))
    assert await store.checkpoint("relay") == LogCursor(11, 1)


async def _leader(relays: list[OutboxRelay], within: float = 10.0) -> OutboxRelay:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        leaders = [r for r in relays if r.is_leader]
        assert len(leaders) <= 1, "two relays lead at once"
        if leaders:
            return leaders[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no relay took the lead")


@pytest.mark.postgres
async def test_three_relays_publish_every_event_once_in_order_through_a_crash(
    pg_store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    store = pg_store
    # Three replicas: each its own store object (its own process), one database.
    replicas = [EventStore(store.engine, store.vault, name=store.name) for _ in range(3)]
    relays = [
        OutboxRelay(
            r, kafka_broker, topic=topic, source=SOURCE, batch_size=BATCH, poll_interval=0.1
        )
        for r in replicas
    ]
    checkpoints: list[LogCursor] = []
    appended: list[RecordedEvent] = []
    done, halfway = asyncio.Event(), asyncio.Event()

    killed: list[OutboxRelay] = []
    most_leaders = 0

    async def watch_checkpoint() -> None:
        nonlocal most_leaders
        while not done.is_set():
            checkpoints.append(await store.checkpoint("relay"))
            leaders = sum(r.is_leader for r in relays if r not in killed)
            most_leaders = max(most_leaders, leaders)
            await asyncio.sleep(0.005)

    async def write(worker: int, count: int) -> None:
        for i in range(count):
            hh = f"hh-{(worker * 7 + i) % 40}"
            appended.extend(
                await replicas[i % 3].append(f"case-{hh}-w{worker}", [new(case_opened(hh))])
            )
            if len(appended) >= EVENTS // 2:
                halfway.set()

    for relay in relays:
        relay.start()
    watcher = asyncio.create_task(watch_checkpoint())
    started = time.monotonic()
    writers = [asyncio.create_task(write(w, EVENTS // 10)) for w in range(10)]
    try:
        first = await _leader(relays)
        assert REGISTRY.get_sample_value("kyosei_relay_leader", {"store": store.name}) == 1
        # Kill the leader midway: its task dies and its database session with it.
        await halfway.wait()
        published_before = (await store.checkpoint("relay")).position
        assert first._lock is not None
        pid = first._lock.backend_pid
        assert first._task is not None
        first._task.cancel()
        killed.append(first)
        async with store.engine.connect() as conn:
            await conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        second = await _leader([r for r in relays if r is not first])
        assert second is not first
        await asyncio.gather(*writers)
        await settled(store)
        last = max(r.cursor for r in appended)
        deadline = time.monotonic() + 60
        while await store.checkpoint("relay") < last:
            assert time.monotonic() < deadline, "the relays did not catch up"
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        done.set()
        await watcher
        for relay in relays:
            await relay.stop()

    assert len(appended) == EVENTS
    assert checkpoints == sorted(checkpoints), "the checkpoint went back"
    assert most_leaders == 1, "two relays led at once"
    assert checkpoints[0] >= START
    records = await read_topic(kafka_bootstrap, topic, expect_at_least=EVENTS)
    ids = [dict(r.headers)["ce_id"].decode() for r in records]
    copies = Counter(ids)
    duplicates = len(ids) - len(copies)
    assert set(copies) == {r.event_id for r in appended}, "an event was not published"
    # Duplicates only from the crash window: at most the batches in flight when the
    # leader died, never a second relay publishing alongside.
    assert duplicates <= 2 * BATCH, f"{duplicates} duplicates"
    by_key: dict[bytes, list[str]] = defaultdict(list)
    for record in records:
        by_key[record.key].append(dict(record.headers)["ce_id"].decode())
    for key, on_topic in by_key.items():
        expected = [
            r.event_id
            for r in sorted(appended, key=lambda r: r.cursor)
            if r.subject.encode() == key
        ]
        assert list(dict.fromkeys(on_topic)) == expected
    print(
        f"\nthree relays, {EVENTS} events: {len(ids)} published, {duplicates} duplicates, "
        f"checkpoint at kill {published_before}, {elapsed:.1f} s"
    )


@pytest.mark.postgres
async def test_a_leader_whose_session_dies_gives_way(
    pg_store: EventStore, kafka_broker: KafkaBroker, topic: str
) -> None:
    relays = [
        OutboxRelay(
            EventStore(pg_store.engine, pg_store.vault, name=pg_store.name),
            kafka_broker,
            topic=topic,
            source=SOURCE,
            poll_interval=0.1,
        )
        for _ in range(2)
    ]
    for relay in relays:
        relay.start()
    try:
        first = await _leader(relays)
        assert first._lock is not None
        async with pg_store.engine.connect() as conn:  # its session dies, the process lives
            await conn.execute(
                text("select pg_terminate_backend(:pid)"), {"pid": first._lock.backend_pid}
            )
        deadline = time.monotonic() + 10
        while not any(r.is_leader for r in relays if r is not first) or first.is_leader:
            assert time.monotonic() < deadline, "no other relay took over"
            await asyncio.sleep(0.02)
        (rec,) = await pg_store.append("case-hh-9", [new(case_opened("hh-9"))])
        await settled(pg_store)
        while await pg_store.checkpoint("relay") < rec.cursor:
            assert time.monotonic() < deadline + 10, "the new leader did not publish"
            await asyncio.sleep(0.02)
    finally:
        for relay in relays:
            await relay.stop()
