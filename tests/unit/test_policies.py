"""Event policies on the service's broker, in memory (FastStream's TestKafkaBroker): the
policy gets its typed event, a duplicate has no second effect, a type no policy
handles is ignored, and what can never be processed is dead-lettered with the reason.
The same guarantees over the real Kafka protocol: tests/integration/test_consumer.py."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from kyosei_events import (
    EventStore,
    IdempotentConsumer,
    KeyVault,
    Policy,
    PolicyContext,
    RecordedEvent,
    Unprocessable,
    policy,
)
from kyosei_events.catalogue.intake import ConsultationReceived
from kyosei_events.policy import by_event_type
from kyosei_platform.bus import kafka_broker
from tests.backbone_support import CALLER_NAME, case_opened, consultation, headers_for, new
from tests.backbone_support import outcomes as outcomes_of
from tests.conftest import sqlite_store

TOPIC = "kyosei.intake.events"
SOURCE = "/kyosei/intake"


@pytest.fixture
async def own(tmp_path: Path, vault: KeyVault) -> AsyncIterator[EventStore]:
    """The consuming service's store (``source``, the producing one's, is in conftest)."""
    async with sqlite_store(tmp_path, vault, "coordination") as store:
        yield store


class Seen:
    """A policy on ConsultationReceived that records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[ConsultationReceived, PolicyContext]] = []
        self.policy = policy(ConsultationReceived)(self.consultation_received)

    async def consultation_received(self, event: ConsultationReceived, ctx: PolicyContext) -> None:
        self.calls.append((event, ctx))
        if event.agency_id == "agency-reject":
            raise Unprocessable("no coordination office for agency-reject")


@dataclasses.dataclass
class Bus:
    broker: KafkaBroker
    consumer: IdempotentConsumer
    dead_letters: list[Any]

    async def send(self, value: bytes | None, headers: dict[str, str]) -> None:
        await self.broker.publish(value, TOPIC, key=b"hh-1", headers=headers)

    async def relay(self, rec: RecordedEvent) -> None:
        """As the producing service's relay publishes it."""
        await self.send(rec.payload.encode(), rec.envelope(SOURCE).header_map())

    def outcomes(self) -> dict[str, int]:
        return outcomes_of(self.consumer.name)

    def reasons(self) -> list[str]:
        return [dict(r.headers)["dlq_reason"].decode() for r in self.dead_letters]


@pytest.fixture
async def bus(own: EventStore) -> AsyncIterator[tuple[Bus, Seen]]:
    seen = Seen()
    broker = kafka_broker("localhost:9092", service="coordination")
    consumer = IdempotentConsumer(f"test-{uuid.uuid4().hex[:8]}", own, [seen.policy], broker)
    consumer.subscribe(TOPIC)
    dead_letters: list[Any] = []

    async def record(message: KafkaMessage) -> Any:
        return message.raw_message

    @broker.subscriber(consumer.dead_letter_topic, decoder=record)
    async def dead_letter(record: Any) -> None:
        dead_letters.append(record)

    async with TestKafkaBroker(broker):
        yield Bus(broker, consumer, dead_letters), seen


async def test_a_policy_receives_its_typed_event(bus: tuple[Bus, Seen], source: EventStore) -> None:
    b, seen = bus
    sent = consultation("hh-1")
    (rec,) = await source.append("consultation-1", [new(sent)], 0)
    await b.relay(rec)

    ((event, ctx),) = seen.calls
    assert isinstance(event, ConsultationReceived)
    assert event == sent  # personal fields opened with the household's key
    assert event.caller_name == CALLER_NAME
    assert ctx.envelope == rec.envelope(SOURCE)
    caused = ctx.caused_metadata(agency_id="coord")
    assert (caused.correlation_id, caused.causation_id, caused.agency_id) == (
        "corr-1",
        rec.event_id,
        "coord",
    )
    assert b.outcomes() == {"processed": 1}
    assert b.dead_letters == []


async def test_a_duplicate_is_processed_once(bus: tuple[Bus, Seen], source: EventStore) -> None:
    b, seen = bus
    (rec,) = await source.append("consultation-1", [new(consultation("hh-1"))], 0)
    await b.relay(rec)
    await b.relay(rec)
    assert len(seen.calls) == 1
    assert b.outcomes() == {"processed": 1, "duplicate": 1}


async def test_an_event_type_no_policy_handles_is_ignored(
    bus: tuple[Bus, Seen], source: EventStore
) -> None:
    b, seen = bus
    (rec,) = await source.append("case-1", [new(case_opened("hh-1"))], 0)
    await b.relay(rec)
    # A type this catalogue does not know yet is no different: no policy handles it.
    newer = dataclasses.replace(rec.envelope(SOURCE), event_type="SomethingNew")
    await b.send(rec.payload.encode(), newer.header_map())
    assert seen.calls == []
    assert b.outcomes() == {"ignored": 2}
    assert b.dead_letters == []


async def test_bad_messages_are_dead_lettered_with_the_reason(
    bus: tuple[Bus, Seen], source: EventStore
) -> None:
    b, seen = bus
    good, for_json, tampered, rejected = await source.append(
        "consultation-1",
        [new(consultation("hh-1", agency_id=a)) for a in ("a", "b", "c", "agency-reject")],
        0,
    )
    no_id = {k: v for k, v in good.envelope(SOURCE).header_map().items() if k != "ce_id"}
    not_json = "{not json"
    json_headers = dict(
        (k, v.decode()) for k, v in headers_for(for_json.envelope(SOURCE), not_json)
    )
    assert json_headers["content-type"] == "application/json"  # FastStream would parse it

    await b.send(good.payload.encode(), no_id)
    await b.send(not_json.encode(), json_headers)
    await b.send(None, good.envelope(SOURCE).header_map())  # a tombstone
    await b.send(
        tampered.payload.replace('"c"', '"x"').encode(), tampered.envelope(SOURCE).header_map()
    )
    await b.relay(rejected)

    reasons = b.reasons()
    assert len(reasons) == 5
    assert reasons[0] == "bad envelope: missing header ce_id"
    assert reasons[1].startswith("JSONDecodeError")
    assert reasons[2].startswith("tombstone")
    assert "ce_hash" in reasons[3]
    assert reasons[4] == "no coordination office for agency-reject"
    assert [r.value for r in b.dead_letters] == [
        good.payload.encode(),
        not_json.encode(),
        None,
        tampered.payload.replace('"c"', '"x"').encode(),
        rejected.payload.encode(),
    ]
    for r in b.dead_letters:
        headers = {k: v.decode() for k, v in r.headers}
        assert headers["dlq_consumer"] == b.consumer.name
        assert headers["dlq_topic"] == TOPIC
        assert r.key == b"hh-1"
    assert [e.agency_id for e, _ in seen.calls] == ["agency-reject"]
    assert b.outcomes() == {"dead_lettered": 5}

    # The rejected message was recorded as processed: a redelivery is a duplicate.
    # The good message whose copies were refused is still processed when it comes.
    await b.relay(rejected)
    await b.relay(good)
    assert b.outcomes() == {"dead_lettered": 5, "duplicate": 1, "processed": 1}
    assert len(b.dead_letters) == 5


def test_a_service_has_at_most_one_policy_per_event_type() -> None:
    first, second = Seen().policy, Seen().policy
    assert by_event_type([first]) == {"ConsultationReceived": first}
    with pytest.raises(ValueError, match="two policies for ConsultationReceived"):
        by_event_type([first, second])


def test_a_policy_is_named_after_its_function() -> None:
    @policy(ConsultationReceived)
    async def open_case(event: ConsultationReceived, ctx: PolicyContext) -> None:
        pass

    assert isinstance(open_case, Policy)
    assert open_case.name == "open_case"
    assert open_case.event_type is ConsultationReceived
