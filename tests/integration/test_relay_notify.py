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
