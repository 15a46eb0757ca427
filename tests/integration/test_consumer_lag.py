"""kyosei_consumer_lag over the embedded broker: while the consumer's policy is held
on the first of five messages, its partition's lag is the four behind it; once they
are processed it is 0. A partition no longer assigned loses its series."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from prometheus_client import REGISTRY

from kyosei_events import EventStore, IdempotentConsumer, PolicyContext, policy
from kyosei_events.catalogue.intake import ConsultationReceived
from kyosei_platform.bus import kafka_broker
from tests.backbone_support import consultation, new

SOURCE = "urn:kyosei:service:intake"


async def test_lag_per_partition(
    source: EventStore,
    store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def held(e: ConsultationReceived, ctx: PolicyContext) -> None:
        started.set()
        await release.wait()

    held.__name__ = "held"
    broker = kafka_broker(kafka_bootstrap, service="coordination")
    name = f"coordination-{uuid.uuid4().hex[:8]}"
    consumer = IdempotentConsumer(name, store, [policy(ConsultationReceived)(held)], broker)
    consumer.subscribe(topic)
    for i in range(5):
        (rec,) = await source.append(f"consultation-{i}", [new(consultation("hh-1"))], 0)
        await kafka_producer.send_and_wait(
            topic,
            value=rec.payload.encode(),
            key=b"hh-1",
            headers=rec.envelope(SOURCE).to_headers(),
            partition=0,
        )

    def gauge() -> float | None:
        labels = {"consumer": name, "topic": topic, "partition": "0"}
        return REGISTRY.get_sample_value("kyosei_consumer_lag", labels)

    assert await consumer.lag() == {}  # not started: nothing assigned
    await broker.start()
    try:
        await asyncio.wait_for(started.wait(), 30)
        lags = await consumer.lag()
        assert lags[(topic, 0)] == 4
        assert sum(lags.values()) == 4  # every partition of the topic is reported
        assert gauge() == 4
        release.set()
        for _ in range(600):
            if not any((await consumer.lag()).values()):
                break
            await asyncio.sleep(0.05)
        assert gauge() == 0
    finally:
        release.set()
        await broker.stop()
    assert await consumer.lag() == {}
    assert gauge() is None  # no longer assigned here
