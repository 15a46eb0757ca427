"""Idempotent consumers and the dead-letter topic, with messages that crossed the
embedded broker. The producing service's store is SQLite; the consuming service's
store runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, select

from kyosei_events import (
    Delivery,
    Envelope,
    EventStore,
    IdempotentConsumer,
    KeyVault,
    Outcome,
    RecordedEvent,
    UnitOfWork,
    Unprocessable,
    dead_letter_topic,
)
from kyosei_events.catalogue.coordination import CaseOpened
from kyosei_events.catalogue.intake import ConsultationReceived
from kyosei_events.database import create_engine
from tests.backbone_support import (
    JAPANESE_SUMMARY,
    case_opened,
    consultation,
    header,
    headers_for,
    new,
    read_topic,
)

SOURCE = "urn:kyosei:service:intake"

read_model = MetaData()
handled = Table(
    "handled_consultations",
    read_model,
    Column("consultation_id", String(64), primary_key=True),
    Column("summary", String(2000)),
)


@pytest.fixture
async def source(tmp_path: Path, vault: KeyVault) -> AsyncIterator[EventStore]:
    """The producing service's store (same key vault, its own database)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'intake'}.db")
    s = EventStore(engine, vault, name="intake")
    await s.create_tables()
    yield s
    await engine.dispose()


@pytest.fixture
async def consumer_store(store: EventStore) -> EventStore:
    async with store.engine.begin() as conn:
        await conn.run_sync(read_model.create_all)
    return store


class Handler:
    """Opens a case for each consultation: a read-model row and an appended event."""

    def __init__(self, *, fail_times: int = 0) -> None:
        self.calls = 0
        self.fail_times = fail_times

    async def __call__(self, delivery: Delivery, uow: UnitOfWork) -> None:
        self.calls += 1
        e = delivery.event
        assert isinstance(e, ConsultationReceived)
        await uow.conn.execute(
            handled.insert().values(consultation_id=e.consultation_id, summary=e.summary)
        )
        if self.calls <= self.fail_times:
            raise ConnectionError("database went away")  # after the write: it must roll back
        if e.agency_id == "agency-reject":
            raise Unprocessable("no coordination office for agency-reject")
        case = CaseOpened(
            case_id=f"case-{e.consultation_id}",
            household_id=e.household_id,
            consultation_id=e.consultation_id,
            escalated_by=e.agency_id,
            concerns=e.concerns,
            opened_at=e.received_at,
        )
        await uow.append(
            f"case-{e.consultation_id}",
            [new(case, e.household_id, meta=delivery.caused_metadata(agency_id="coord"))],
            0,
        )


def consumer_for(
    store: EventStore, producer: Any, handler: Handler, **kw: Any
) -> IdempotentConsumer:
    return IdempotentConsumer(
        f"coordination-{uuid.uuid4().hex[:8]}",
        store,
        {"ConsultationReceived": handler},
        producer,
        base_backoff=0.01,
        **kw,
    )


async def deliver(consumer: IdempotentConsumer, record: Any) -> Outcome:
    return await consumer.handle(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        headers=record.headers,
        key=record.key,
        value=record.value,
    )


async def publish(producer: Any, topic: str, messages: list[tuple[Any, bytes]]) -> None:
    """(headers, value) pairs, all to partition 0 so that they are read in this order."""
    for headers, value in messages:
        await producer.send_and_wait(
            topic, value=value, key=b"hh-1", headers=list(headers), partition=0
        )


def message_of(rec: RecordedEvent) -> tuple[list[tuple[str, bytes]], bytes]:
    return rec.envelope(SOURCE).to_headers(), rec.payload.encode()


async def rows(store: EventStore) -> list[tuple[str, str]]:
    async with store.engine.connect() as conn:
        result = await conn.execute(
            select(handled.c.consultation_id, handled.c.summary).order_by(handled.c.summary)
        )
        return [tuple(r) for r in result]  # type: ignore[misc]


async def count_events(store: EventStore) -> int:
    async with store.engine.connect() as conn:
        from kyosei_events.tables import events

        return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


async def test_a_redelivered_message_has_no_second_effect(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    (rec,) = await source.append("consultation-1", [new(consultation("hh-1"))], 0)
    await publish(kafka_producer, topic, [message_of(rec)])
    (record,) = await read_topic(kafka_bootstrap, topic)

    handler = Handler()
    consumer = consumer_for(consumer_store, kafka_producer, handler)
    assert await deliver(consumer, record) is Outcome.PROCESSED
    assert await deliver(consumer, record) is Outcome.DUPLICATE
    # After a restart (a new consumer object with the same name), still a duplicate.
    restarted = IdempotentConsumer(
        consumer.name, consumer_store, {"ConsultationReceived": handler}, kafka_producer
    )
    assert await deliver(restarted, record) is Outcome.DUPLICATE

    assert handler.calls == 1
    consultation_id = json.loads(rec.payload)["consultation_id"]
    assert await rows(consumer_store) == [(consultation_id, JAPANESE_SUMMARY)]
    decoded, version = await consumer_store.load(f"case-{consultation_id}")
    assert version == 1
    assert decoded[0].metadata.causation_id == rec.event_id
    assert decoded[0].metadata.correlation_id == "corr-1"
    assert await count_events(consumer_store) == 1
    assert await read_topic(kafka_bootstrap, consumer.dead_letter_topic, wait=0.3) == []


async def test_messages_that_can_never_be_processed_go_to_the_dead_letter_topic(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    recs = await source.append(
        "consultation-1",
        [
            new(consultation("hh-1", agency_id=a))
            for a in ("agency-a", "agency-b", "agency-c", "agency-d", "agency-reject", "agency-e")
        ],
        0,
    )
    good_a, for_json, for_schema, for_hash, reject, good_e = recs
    (other_type,) = await source.append("case-1", [new(case_opened("hh-1"))], 0)

    no_id = [(k, v) for k, v in good_a.envelope(SOURCE).to_headers() if k != "ce_id"]
    not_json = "{not json"
    incomplete = json.dumps(
        {k: v for k, v in json.loads(for_schema.payload).items() if k != "agency_id"}
    )
    future = replace(for_schema.envelope(SOURCE), schema_version=99)
    unknown = replace(other_type.envelope(SOURCE), event_type="SomethingNew")
    tampered = for_hash.payload.replace("agency-d", "agency-x").encode()

    messages = [
        (no_id, good_a.payload.encode()),  # 0 bad headers
        message_of(good_a),  # 1 good
        (headers_for(for_json.envelope(SOURCE), not_json), not_json.encode()),  # 2
        (headers_for(for_schema.envelope(SOURCE), incomplete), incomplete.encode()),  # 3
        message_of(other_type),  # 4 not handled
        (unknown.to_headers(), other_type.payload.encode()),  # 5 not handled
        (headers_for(future, for_schema.payload), for_schema.payload.encode()),  # 6
        (for_hash.envelope(SOURCE).to_headers(), tampered),  # 7 hash mismatch
        message_of(reject),  # 8 Unprocessable
        message_of(good_e),  # 9 good
    ]
    await publish(kafka_producer, topic, messages)
    records = await read_topic(kafka_bootstrap, topic)
    assert [r.offset for r in records] == list(range(10))

    handler = Handler()
    consumer = consumer_for(consumer_store, kafka_producer, handler)
    outcomes = [await deliver(consumer, r) for r in records]
    D, P, I = Outcome.DEAD_LETTERED, Outcome.PROCESSED, Outcome.IGNORED  # noqa: E741
    assert outcomes == [D, P, D, D, I, I, D, D, D, P]

    dead = await read_topic(kafka_bootstrap, dead_letter_topic(consumer.name))
    by_offset = {int(header(r, "dlq_offset") or -1): r for r in dead}
    assert sorted(by_offset) == [0, 2, 3, 6, 7, 8]
    reasons = {offset: header(r, "dlq_reason") or "" for offset, r in by_offset.items()}
    assert "bad envelope: missing header ce_id" in reasons[0]
    assert "JSONDecodeError" in reasons[2]
    assert "CorruptEvent" in reasons[3] and "agency_id" in reasons[3]
    assert "UnknownEventType" in reasons[6] and "v3" in reasons[6]
    assert "ce_hash" in reasons[7]
    assert reasons[8] == "no coordination office for agency-reject"
    for offset, r in by_offset.items():
        assert header(r, "dlq_consumer") == consumer.name
        assert header(r, "dlq_topic") == topic
        assert header(r, "dlq_partition") == "0"
        assert r.value == records[offset].value  # the message as it was, for inspection
        assert r.key == b"hh-1"
    assert header(by_offset[8], "ce_id") == reject.event_id

    # The good messages around the bad ones were processed; the rejected one left nothing.
    assert {r[0] for r in await rows(consumer_store)} == {
        json.loads(good_a.payload)["consultation_id"],
        json.loads(good_e.payload)["consultation_id"],
    }
    assert await count_events(consumer_store) == 2

    # A redelivered rejected message is not dead-lettered a second time.
    assert await deliver(consumer, records[8]) is Outcome.DUPLICATE
    assert len(await read_topic(kafka_bootstrap, dead_letter_topic(consumer.name))) == 6


async def test_a_tampered_copy_does_not_stop_the_genuine_message(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    """A copy altered on the way carries the genuine event's ce_id; dead-lettering it
    must not mark that id as processed, or the genuine copy would be dropped."""
    (rec,) = await source.append("consultation-1", [new(consultation("hh-1"))], 0)
    headers, value = message_of(rec)
    await publish(
        kafka_producer,
        topic,
        [
            (headers, value.replace(b"agency-a", b"agency-z")),
            (headers, value),
        ],
    )
    tampered, genuine = await read_topic(kafka_bootstrap, topic)
    consumer = consumer_for(consumer_store, kafka_producer, Handler())
    assert await deliver(consumer, tampered) is Outcome.DEAD_LETTERED
    assert await deliver(consumer, genuine) is Outcome.PROCESSED
    assert len(await rows(consumer_store)) == 1


async def test_a_transient_failure_is_retried_and_then_succeeds(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    (rec,) = await source.append("consultation-1", [new(consultation("hh-1"))], 0)
    await publish(kafka_producer, topic, [message_of(rec)])
    (record,) = await read_topic(kafka_bootstrap, topic)
    handler = Handler(fail_times=2)
    consumer = consumer_for(consumer_store, kafka_producer, handler, max_attempts=5)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await deliver(consumer, record)  # the caller does not commit the offset
        assert await rows(consumer_store) == []  # the failed attempt left nothing
    assert await deliver(consumer, record) is Outcome.PROCESSED
    assert handler.calls == 3
    assert len(await rows(consumer_store)) == 1
    assert await count_events(consumer_store) == 1
    assert await read_topic(kafka_bootstrap, consumer.dead_letter_topic, wait=0.3) == []


async def test_a_failure_that_persists_is_dead_lettered_after_max_attempts(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    (rec,) = await source.append("consultation-1", [new(consultation("hh-1"))], 0)
    (second,) = await source.append("consultation-2", [new(consultation("hh-1"))], 0)
    await publish(kafka_producer, topic, [message_of(rec), message_of(second)])
    record, next_record = await read_topic(kafka_bootstrap, topic)
    handler = Handler(fail_times=1_000)
    consumer = consumer_for(consumer_store, kafka_producer, handler, max_attempts=3)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await deliver(consumer, record)
    assert await deliver(consumer, record) is Outcome.DEAD_LETTERED
    assert handler.calls == 3

    (dead,) = await read_topic(kafka_bootstrap, consumer.dead_letter_topic)
    reason = header(dead, "dlq_reason") or ""
    assert reason.startswith("failed 3 times")
    assert "ConnectionError: database went away" in reason
    assert (
        Envelope.from_headers([(k, v) for k, v in dead.headers if not k.startswith("dlq_")]).id
        == rec.event_id
    )
    assert await rows(consumer_store) == []
    # Redelivered after dead-lettering: not handled again.
    assert await deliver(consumer, record) is Outcome.DUPLICATE
    assert handler.calls == 3

    # The consumer goes on with the next message once the cause is gone.
    handler.fail_times = 0
    assert await deliver(consumer, next_record) is Outcome.PROCESSED
    assert len(await rows(consumer_store)) == 1
