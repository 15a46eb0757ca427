"""The embedded broker (``make dev``, the tests): made through librdkafka's mock API so
that a new consumer group is assigned its partitions without the 3 s initial delay."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kyosei_platform.embedded import EmbeddedKafka


async def test_the_bundled_librdkafka_configures_the_broker_and_a_group_consumes() -> None:
    broker = EmbeddedKafka()
    try:
        # The configurable path is the one in use (a librdkafka without the mock API
        # would fall back to the 3 s delay, and this says so).
        assert broker._cluster is not None
        topic = f"embedded-{uuid.uuid4().hex[:8]}"
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hello", key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=f"g-{topic}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
        assert (record.key, record.value) == (b"k", b"hello")
    finally:
        broker.close()
