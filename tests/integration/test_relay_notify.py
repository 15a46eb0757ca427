"""On PostgreSQL the relay wakes on LISTEN/NOTIFY when another process appends.

The relay's own store never sees the append (a second EventStore stands in for
another process), and its poll interval is 60 s: only the notification can make it
publish within seconds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker
from sqlalchemy import text

from kyosei_events import EventStore, KeyVault, NewEvent, OutboxRelay
from kyosei_events.catalogue.coordination import CaseOpened
from tests.conftest import _drop, _new_database


async def test_relay_wakes_on_notify_from_another_writer(
    tmp_path: Path, vault: KeyVault, kafka_bootstrap: list[str], kafka_broker: KafkaBroker
) -> None:
    database = await _new_database("postgresql", tmp_path, "notify")
    channel = f"kyosei_test_{uuid.uuid4().hex[:8]}"
    topic = f"notify-{uuid.uuid4().hex[:8]}"
    relay_engine, writer_engine = database.engine(), database.engine()
    relay_store = EventStore(relay_engine, vault, name="relay-side")
    relay_store.notify_channel(channel)
    await relay_store.create_tables()
    writer = EventStore(writer_engine, vault, name="writer-side")
    writer.notify_channel(channel)

    relay = OutboxRelay(relay_store, kafka_broker, topic=topic, source="/test", poll_interval=60)
    relay.start()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=f"g-{topic}",
    )
    await consumer.start()
    try:
        await asyncio.sleep(0.5)  # the relay has done its first (empty) pass and waits
        opened = CaseOpened(
            case_id="case-n",
            consultation_id="c-n",
            escalated_by="a",
            concerns=["isolation"],
            opened_at=datetime.now(UTC),
        )
        [recorded] = await writer.append("case-n", [NewEvent(opened, "h-n")], 0)
        started = asyncio.get_running_loop().time()
        message = await asyncio.wait_for(consumer.getone(), 15)
        elapsed = asyncio.get_running_loop().time() - started
        assert dict(message.headers)["ce_id"].decode() == recorded.event_id
        assert elapsed < 15  # far below the 60 s poll: the NOTIFY woke it
    finally:
        await consumer.stop()
        await relay.stop()
        await relay_engine.dispose()
        await writer_engine.dispose()
        await _drop(database)


async def test_relay_reads_again_when_a_running_transaction_held_events_back(
    tmp_path: Path, vault: KeyVault, kafka_bootstrap: list[str], kafka_broker: KafkaBroker
) -> None:
    """A transaction still running in the database (it writes nothing to the store)
    holds back what the relay may read; when it ends, nothing wakes the relay, whose
    poll interval is 60 s: it reads again by itself while the log has a committed event
    above what it has read."""
    database = await _new_database("postgresql", tmp_path, "heldback", own=True)
    topic = f"heldback-{uuid.uuid4().hex[:8]}"
    engine, blocker_engine = database.engine(), database.engine()
    store = EventStore(engine, vault, name="held-back")
    await store.create_tables()
    relay = OutboxRelay(store, kafka_broker, topic=topic, source="/test", poll_interval=60)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=topic
    )
    blocker = await blocker_engine.connect()
    try:
        # a writing transaction of the same database, begun before the append
        await blocker.begin()
        await blocker.execute(text("select pg_current_xact_id()"))
        relay.start()
        await consumer.start()
        await asyncio.sleep(0.5)  # the relay's first (empty) pass is done
        opened = CaseOpened(
            case_id="case-h",
            consultation_id="c-h",
            escalated_by="a",
            concerns=["isolation"],
            opened_at=datetime.now(UTC),
        )
        [recorded] = await store.append("case-h", [NewEvent(opened, "h-h")], 0)
        await asyncio.sleep(0.5)  # woken by the commit, the relay could not read it
        assert await relay.store.checkpoint(relay.name) == await store.checkpoint("nobody")
        await blocker.rollback()  # nothing announces this
        message = await asyncio.wait_for(consumer.getone(), 15)
        assert dict(message.headers)["ce_id"].decode() == recorded.event_id
    finally:
        await blocker.close()
        await consumer.stop()
        await relay.stop()
        await engine.dispose()
        await blocker_engine.dispose()
        await _drop(database)
