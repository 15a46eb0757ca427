"""Idempotent consumers and the dead-letter topic on the embedded broker: messages are
published over the Kafka protocol and consumed by the consumer's FastStream subscriber,
as in a running service. The producing service's store is SQLite; the consuming
service's store runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import REGISTRY
from sqlalchemy import CheckConstraint, Column, MetaData, String, Table, func, select
from sqlalchemy import exc as sa_exc

from kyosei_events import (
    Envelope,
    EventStore,
    IdempotentConsumer,
    PolicyContext,
    RecordedEvent,
    Unprocessable,
    dead_letter_topic,
    policy,
)
from kyosei_events.catalogue.coordination import CaseOpened
from kyosei_events.catalogue.intake import ConsultationReceived
from kyosei_platform.bus import kafka_broker
from tests.backbone_support import (
    JAPANESE_SUMMARY,
    case_opened,
    consultation,
    header,
    headers_for,
    new,
    outcomes,
    read_topic,
)

SOURCE = "urn:kyosei:service:intake"

read_model = MetaData()
handled = Table(
    "handled_consultations",
    read_model,
    Column("consultation_id", String(64), primary_key=True),
    Column("summary", String(2000)),
    # PostgreSQL refuses a longer summary (a DataError); SQLite needs to be told.
    CheckConstraint("length(summary) <= 2000", name="summary_length"),
)


@pytest.fixture
async def consumer_store(store: EventStore) -> EventStore:
    async with store.engine.begin() as conn:
        await conn.run_sync(read_model.create_all)
    return store


class Handler:
    """Opens a case for each consultation: a read-model row and an appended event."""

    __name__ = "open_case"

    def __init__(self, *, fail_times: int = 0, failure: Exception | None = None) -> None:
        self.calls = 0
        self.fail_times = fail_times
        self.failure = failure or ConnectionError("database went away")

    async def __call__(self, e: ConsultationReceived, ctx: PolicyContext) -> None:
        self.calls += 1
        await ctx.uow.conn.execute(
            handled.insert().values(consultation_id=e.consultation_id, summary=e.summary)
        )
        if self.calls <= self.fail_times:
            raise self.failure  # after the write: it must roll back
        if e.agency_id == "agency-reject":
            raise Unprocessable("no coordination office for agency-reject")
        if e.agency_id == "agency-bug":
            raise KeyError("agency-bug")  # a bug in the policy: no retry makes it work
        case = CaseOpened(
            case_id=f"case-{e.consultation_id}",
            household_id=e.household_id,
            consultation_id=e.consultation_id,
            escalated_by=e.agency_id,
            concerns=e.concerns,
            opened_at=e.received_at,
        )
        await ctx.uow.append(
            f"case-{e.consultation_id}",
            # As coordination does: the case is about the event's subject.
            [new(case, ctx.envelope.subject, meta=ctx.caused_metadata(agency_id="coord"))],
            0,
        )


@asynccontextmanager
async def consuming(
    store: EventStore,
    bootstrap: list[str],
    topic: str,
    handler: Handler,
    *,
    name: str | None = None,
    **kw: Any,
) -> AsyncIterator[IdempotentConsumer]:
    """A consumer subscribed to ``topic`` on its own broker, as a service runs it."""
    broker = kafka_broker(bootstrap, service="coordination")
    consumer = IdempotentConsumer(
        name or f"coordination-{uuid.uuid4().hex[:8]}",
        store,
        [policy(ConsultationReceived)(handler)],
        broker,
        **({"base_backoff": 0.01} | kw),
    )
    consumer.subscribe(topic)
    await broker.start()
    try:
        yield consumer
    finally:
        await broker.stop()


async def seen(consumer: IdempotentConsumer, count: int, within: float = 30.0) -> dict[str, int]:
    """The consumer's outcomes, once it has seen ``count`` messages in all."""
    deadline = asyncio.get_running_loop().time() + within
    while sum((found := outcomes(consumer.name)).values()) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{consumer.name} saw only {found} after {within}s")
        await asyncio.sleep(0.05)
    return found


async def publish(producer: Any, topic: str, messages: list[tuple[Any, bytes | None]]) -> None:
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
    handler = Handler()
    async with consuming(consumer_store, kafka_bootstrap, topic, handler) as consumer:
        await publish(kafka_producer, topic, [message_of(rec), message_of(rec)])
        assert await seen(consumer, 2) == {"processed": 1, "duplicate": 1}
    # After a restart (a new consumer object with the same name), still a duplicate.
    async with consuming(consumer_store, kafka_bootstrap, topic, handler, name=consumer.name):
        await publish(kafka_producer, topic, [message_of(rec)])
        assert await seen(consumer, 3) == {"processed": 1, "duplicate": 2}

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
    not_utf8 = [(k, b"\xff\xfe" if k == "ce_subject" else v) for k, v in message_of(good_a)[0]]

    messages: list[tuple[Any, bytes | None]] = [
        (no_id, good_a.payload.encode()),  # 0 bad headers
        message_of(good_a),  # 1 good
        (headers_for(for_json.envelope(SOURCE), not_json), not_json.encode()),  # 2
        (headers_for(for_schema.envelope(SOURCE), incomplete), incomplete.encode()),  # 3
        message_of(other_type),  # 4 not handled
        (unknown.to_headers(), other_type.payload.encode()),  # 5 not handled
        (headers_for(future, for_schema.payload), for_schema.payload.encode()),  # 6
        (for_hash.envelope(SOURCE).to_headers(), tampered),  # 7 hash mismatch
        message_of(reject),  # 8 Unprocessable
        (message_of(good_e)[0], None),  # 9 a tombstone
        (not_utf8, good_e.payload.encode()),  # 10 a header that is not UTF-8
        message_of(good_e),  # 11 good
    ]
    handler = Handler()
    async with consuming(consumer_store, kafka_bootstrap, topic, handler) as consumer:
        await publish(kafka_producer, topic, messages)
        assert await seen(consumer, 12) == {"dead_lettered": 8, "processed": 2, "ignored": 2}
        records = await read_topic(kafka_bootstrap, topic)
        assert [r.offset for r in records] == list(range(12))

        dead = await read_topic(kafka_bootstrap, dead_letter_topic(consumer.name))
        by_offset = {int(header(r, "dlq_offset") or -1): r for r in dead}
        assert sorted(by_offset) == [0, 2, 3, 6, 7, 8, 9, 10]
        reasons = {offset: header(r, "dlq_reason") or "" for offset, r in by_offset.items()}
        assert "bad envelope: missing header ce_id" in reasons[0]
        assert "JSONDecodeError" in reasons[2]
        assert "CorruptEvent" in reasons[3] and "agency_id" in reasons[3]
        latest = f"v{ConsultationReceived.schema_version}"
        assert "UnknownEventType" in reasons[6] and latest in reasons[6]
        assert "ce_hash" in reasons[7]
        assert reasons[8] == "no coordination office for agency-reject"
        assert reasons[9].startswith("tombstone")
        assert reasons[10] == "bad envelope: header ce_subject is not UTF-8"
        for offset, r in by_offset.items():
            assert header(r, "dlq_consumer") == consumer.name
            assert header(r, "dlq_topic") == topic
            assert header(r, "dlq_partition") == "0"
            assert r.value == records[offset].value  # the message as it was, for inspection
            assert r.key == b"hh-1"
        assert header(by_offset[8], "ce_id") == reject.event_id

        # The good messages around the bad ones were processed; the rejected one left
        # nothing.
        assert {r[0] for r in await rows(consumer_store)} == {
            json.loads(good_a.payload)["consultation_id"],
            json.loads(good_e.payload)["consultation_id"],
        }
        assert await count_events(consumer_store) == 2

        # A redelivered rejected message is not dead-lettered a second time.
        await publish(kafka_producer, topic, [message_of(reject)])
        assert (await seen(consumer, 13))["duplicate"] == 1
        assert len(await read_topic(kafka_bootstrap, dead_letter_topic(consumer.name))) == 8


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
    async with consuming(consumer_store, kafka_bootstrap, topic, Handler()) as consumer:
        await publish(
            kafka_producer,
            topic,
            [
                (headers, value.replace(b"agency-a", b"agency-z")),
                (headers, value),
            ],
        )
        assert await seen(consumer, 2) == {"dead_lettered": 1, "processed": 1}
    assert len(await rows(consumer_store)) == 1


async def test_a_transient_failure_is_retried_and_then_succeeds(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    (rec,) = await source.append("consultation-1", [new(consultation("hh-1"))], 0)
    handler = Handler(fail_times=2)
    async with consuming(
        consumer_store, kafka_bootstrap, topic, handler, max_attempts=5
    ) as consumer:
        await publish(kafka_producer, topic, [message_of(rec)])
        # Each failure nacks the message: Kafka delivers it again.
        assert await seen(consumer, 1) == {"processed": 1}
    assert handler.calls == 3
    assert len(await rows(consumer_store)) == 1  # the failed attempts left nothing
    assert await count_events(consumer_store) == 1
    assert await read_topic(kafka_bootstrap, consumer.dead_letter_topic, wait=0.3) == []


async def test_a_database_outage_longer_than_max_attempts_delays_and_drops_nothing(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    """The database is "down" for 12 attempts, far more than max_attempts (3) and
    longer than max_attempts × backoff: the message waits, is processed when the
    database is back, and nothing reaches the dead-letter topic. The next message
    waits behind it and is processed too."""
    (rec,) = await source.append("consultation-1", [new(consultation("hh-1"))], 0)
    (second,) = await source.append("consultation-2", [new(consultation("hh-1"))], 0)
    down = sa_exc.OperationalError(
        "INSERT …", {}, ConnectionRefusedError("connection refused: is the server running?")
    )
    handler = Handler(fail_times=12, failure=down)
    name = f"coordination-{uuid.uuid4().hex[:8]}"
    async with consuming(
        consumer_store,
        kafka_bootstrap,
        topic,
        handler,
        name=name,
        max_attempts=3,
        base_backoff=0.01,
        max_backoff=0.04,
    ) as consumer:
        await publish(kafka_producer, topic, [message_of(rec), message_of(second)])
        deadline = time.monotonic() + 30
        while handler.calls < 6:  # mid-outage: paused, nothing dead-lettered
            assert time.monotonic() < deadline, handler.calls
            await asyncio.sleep(0.01)
        assert sample("kyosei_consumer_paused", name) == 1
        assert outcomes(name) == {}
        assert await seen(consumer, 2) == {"processed": 2}
        assert sample("kyosei_consumer_paused", name) == 0
    assert handler.calls == 14
    assert sample("kyosei_consumer_retries_total", name) == 12
    assert await read_topic(kafka_bootstrap, consumer.dead_letter_topic, wait=0.3) == []
    assert {r[0] for r in await rows(consumer_store)} == {
        json.loads(r.payload)["consultation_id"] for r in (rec, second)
    }
    assert await count_events(consumer_store) == 2


def sample(metric: str, consumer: str) -> float | None:
    return REGISTRY.get_sample_value(metric, {"consumer": consumer})


async def test_a_payload_that_cannot_be_opened_yet_is_retried(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key vault not answering is transient, like a failing policy: the message is
    delivered again, not dead-lettered, for longer than max_attempts."""
    (rec,) = await source.append("consultation-1", [new(consultation("hh-1"))], 0)
    vault_open = consumer_store.vault.open
    failures = [ConnectionError("key vault went away")] * 6

    async def flaky_open(*args: Any, **kw: Any) -> Any:
        if failures:
            raise failures.pop()
        return await vault_open(*args, **kw)

    monkeypatch.setattr(consumer_store.vault, "open", flaky_open)
    handler = Handler()
    async with consuming(
        consumer_store, kafka_bootstrap, topic, handler, max_attempts=3, max_backoff=0.02
    ) as consumer:
        await publish(kafka_producer, topic, [message_of(rec)])
        assert await seen(consumer, 1) == {"processed": 1}
    assert failures == []
    assert handler.calls == 1
    assert await read_topic(kafka_bootstrap, consumer.dead_letter_topic, wait=0.3) == []


# -- poison messages --------------------------------------------------------------------

PRODUCER_LIMIT = 1024 * 1024  # aiokafka's max_request_size, the services' and the test's


@dataclass(frozen=True)
class Poison:
    """A message that can never be processed, and what its dead-letter reason says."""

    kind: str
    headers: list[tuple[str, bytes]]
    value: bytes | None
    reason: str


def _with(payload: str, **fields: Any) -> str:
    return json.dumps(json.loads(payload) | fields, ensure_ascii=False)


def _near_the_limit(env: Envelope) -> tuple[list[tuple[str, bytes]], bytes]:
    """Invalid JSON (an unterminated string) whose message just fits the producer's
    limit, so that its dead-letter copy, with the dlq_ headers added, does not."""
    start = '{"summary": "'
    headers = headers_for(env, start)
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(b"hh-1", start.encode(), headers)
    text = start + "x" * (PRODUCER_LIMIT - size - 64)
    headers = headers_for(env, text)
    assert (
        PRODUCER_LIMIT - 200
        < DefaultRecordBatchBuilder.estimate_size_in_bytes(b"hh-1", text.encode(), headers)
        <= PRODUCER_LIMIT
    )
    return headers, text.encode()


async def poison_messages(source: EventStore) -> list[Poison]:
    """Every kind of message a consumer can never process, each built on an event of its
    own (a dead-lettered authentic copy marks its ce_id processed)."""
    bases = await source.append(
        "consultation-poison",
        [new(consultation("hh-1", agency_id=f"agency-p{i}")) for i in range(22)],
        0,
    )
    (other_household,) = await source.append("consultation-hh-2", [new(consultation("hh-2"))], 0)
    b = iter(bases)

    def base() -> tuple[Envelope, str]:
        rec = next(b)
        return rec.envelope(SOURCE), rec.payload

    def forged(env: Envelope, text: str) -> list[tuple[str, bytes]]:
        return headers_for(env, text)

    kinds: list[Poison] = []

    def add(kind: str, headers: list[tuple[str, bytes]], value: bytes | None, reason: str) -> None:
        kinds.append(Poison(kind, headers, value, reason))

    env, text = base()
    add(
        "ce_prevhash not hexadecimal",
        replace(env, prev_hash="z" * 64).to_headers(),
        text.encode(),
        "ce_prevhash",
    )
    env, text = base()
    broken = _with(text, caller_name="kyosei-enc:v1:not*base64!")
    add("sealed field not base64", forged(env, broken), broken.encode(), "caller_name")
    env, text = base()
    _, donor = base()
    moved = _with(text, caller_name=json.loads(donor)["caller_name"])
    add("sealed under another event id", forged(env, moved), moved.encode(), "caller_name")
    env, text = base()
    foreign = _with(text, caller_name=json.loads(other_household.payload)["caller_name"])
    add(
        "sealed under another household's key",
        forged(env, foreign),
        foreign.encode(),
        "caller_name",
    )
    env, _ = base()
    add("invalid JSON", forged(env, "{not json"), b"{not json", "JSONDecodeError")
    env, text = base()
    add("tombstone", env.to_headers(), None, "tombstone")
    env, _ = base()
    deep = "[" * 100_000 + "]" * 100_000
    add("100,000-deep nesting", forged(env, deep), deep.encode(), "RecursionError")
    env, _ = base()
    add("dead-letter copy over the producer's limit", *_near_the_limit(env), "JSONDecodeError")
    env, text = base()
    add(
        "a header that is not UTF-8",
        [*env.to_headers(), ("x-agency-trace", b"\xff\xfe")],
        text.encode(),
        "header x-agency-trace is not UTF-8",
    )
    env, text = base()
    add(
        "a ce_ header that is not UTF-8",
        [(k, b"\xff" if k == "ce_agencyid" else v) for k, v in env.to_headers()],
        text.encode(),
        "header ce_agencyid is not UTF-8",
    )
    env, text = base()
    long_subject = replace(env, subject="h" * 129)
    add("ce_subject over 128 characters", forged(long_subject, text), text.encode(), "ce_subject")
    env, text = base()
    add(
        "ce_id over 128 characters",
        forged(replace(env, id="i" * 129), text),
        text.encode(),
        "ce_id",
    )
    env, text = base()
    add(
        "no ce_id",
        [(k, v) for k, v in env.to_headers() if k != "ce_id"],
        text.encode(),
        "missing header ce_id",
    )
    env, text = base()
    add(
        "ce_streamversion not an integer",
        [(k, b"one" if k == "ce_streamversion" else v) for k, v in env.to_headers()],
        text.encode(),
        "ce_streamversion",
    )
    env, text = base()
    add("payload not UTF-8", env.to_headers(), b"\xff" + text.encode(), "UnicodeDecodeError")
    env, _ = base()
    add("JSON not an object", forged(env, "[]"), b"[]", "not a JSON object")
    env, text = base()
    incomplete = json.dumps({k: v for k, v in json.loads(text).items() if k != "agency_id"})
    add("payload missing a field", forged(env, incomplete), incomplete.encode(), "agency_id")
    env, text = base()
    add(
        "unknown schema version",
        forged(replace(env, schema_version=99), text),
        text.encode(),
        "UnknownEventType",
    )
    env, text = base()
    add("hash mismatch", env.to_headers(), text.replace("agency-p", "agency-x").encode(), "ce_hash")
    env, text = base()
    rejected = _with(text, agency_id="agency-reject")
    add("refused by the policy", forged(env, rejected), rejected.encode(), "agency-reject")
    env, text = base()
    buggy = _with(text, agency_id="agency-bug")
    add("a bug in the policy", forged(env, buggy), buggy.encode(), "KeyError")
    (too_long,) = await source.append(
        "consultation-long", [new(consultation("hh-1", summary="長" * 2001))], 0
    )
    add(
        "a value too long for the policy's read model (a permanent database error)",
        *message_of(too_long),
        "open_case: ",
    )
    return kinds


async def group_lag(bootstrap: list[str], group: str, topic: str) -> int:
    """Messages on ``topic`` the consumer group has not committed (end offsets minus
    committed offsets, asked of the group coordinator without joining the group)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        partitions = await reader._client._wait_on_metadata(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        reader.assign(tps)
        ends = await reader.end_offsets(tps)
        return sum([end - (await reader.committed(tp) or 0) for tp, end in ends.items()])
    finally:
        await reader.stop()


async def test_poison_messages_never_block_their_partition(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    """Each kind of message that can never be processed, followed on the same partition
    by a good one: every bad one is dead-lettered at once with its reason, every good
    one is processed, and the group's committed offset reaches the end of the topic.
    The consumer retries as in production (10 attempts, backoff from 0.5 s)."""
    poison = await poison_messages(source)
    goods = await source.append(
        "consultation-good",
        [new(consultation("hh-1", agency_id=f"agency-g{i}")) for i in range(len(poison))],
        0,
    )
    messages: list[tuple[Any, bytes | None]] = []
    for bad, good in zip(poison, goods, strict=True):
        messages += [(bad.headers, bad.value), message_of(good)]

    handler = Handler()
    started = time.monotonic()
    async with consuming(
        consumer_store, kafka_bootstrap, topic, handler, base_backoff=0.5, max_attempts=10
    ) as consumer:
        await publish(kafka_producer, topic, messages)
        assert await seen(consumer, len(messages), within=30) == {
            "dead_lettered": len(poison),
            "processed": len(goods),
        }
        while (lag := await group_lag(kafka_bootstrap, consumer.name, topic)) != 0:
            assert time.monotonic() - started < 40, f"lag stays at {lag}"
            await asyncio.sleep(0.1)

        dead = await read_topic(
            kafka_bootstrap, consumer.dead_letter_topic, expect_at_least=len(poison)
        )
        by_offset = {int(header(r, "dlq_offset") or -1): r for r in dead}
        assert sorted(by_offset) == list(range(0, len(messages), 2))
        for i, bad in enumerate(poison):
            record = by_offset[2 * i]
            reason = header(record, "dlq_reason") or ""
            assert bad.reason in reason, (bad.kind, reason)
            assert not reason.startswith("failed"), (bad.kind, reason)  # at once, not retried
            assert header(record, "dlq_topic") == topic
            assert record.key == b"hh-1"
            if len(bad.value or b"") < PRODUCER_LIMIT - 4096:
                assert record.value == (bad.value or b"") or record.value is bad.value, bad.kind
            else:  # too large to copy: the dead letter says where the original is
                assert record.value in (None, b"")
                assert "omitted" in (header(record, "dlq_value") or "")

    assert {r[0] for r in await rows(consumer_store)} == {
        json.loads(g.payload)["consultation_id"] for g in goods
    }
    assert await count_events(consumer_store) == len(goods)


async def publish_together(
    producer: Any, topic: str, messages: list[tuple[Any, bytes | None]]
) -> None:
    """(headers, value) pairs in one record batch to partition 0, as a relay publishes
    what it has read at once: Kafka hands them to a consumer in one fetch."""
    batch = producer.create_batch()
    for headers, value in messages:
        assert batch.append(key=b"hh-1", value=value, timestamp=None, headers=list(headers))
    batch.close()
    await (await producer.send_batch(batch, topic, partition=0))


def batched(consumer: IdempotentConsumer) -> tuple[int, int]:
    """How many batches ``consumer`` handled in one unit of work, and their messages."""
    labels = {"consumer": consumer.name}
    count = REGISTRY.get_sample_value("kyosei_consumer_batch_messages_count", labels) or 0
    total = REGISTRY.get_sample_value("kyosei_consumer_batch_messages_sum", labels) or 0
    return int(count), int(total)


async def case_log(store: EventStore) -> list[tuple[int, str]]:
    """The consumer store's events in log order: (tx_id, stream)."""
    from kyosei_events.tables import events

    async with store.engine.connect() as conn:
        result = await conn.execute(
            select(events.c.tx_id, events.c.stream_id).order_by(events.c.tx_id, events.c.position)
        )
        return [(int(t), str(s)) for t, s in result]


async def test_what_one_fetch_brings_is_handled_in_one_transaction_in_order(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    """Six consultations, each followed by an event no policy here handles, and a
    redelivered copy, waiting before the consumer starts, come in one fetch: one unit of
    work for all of them, effects in the order sent, the copy a duplicate, the others
    ignored."""
    recs = [
        (await source.append(f"consultation-{i}", [new(consultation("hh-1"))], 0))[0]
        for i in range(6)
    ]
    others = [(await source.append(f"case-{i}", [new(case_opened())], 0))[0] for i in range(6)]
    messages = [message_of(m) for pair in zip(recs, others, strict=True) for m in pair]
    await publish_together(kafka_producer, topic, [*messages, message_of(recs[0])])
    handler = Handler()
    async with consuming(consumer_store, kafka_bootstrap, topic, handler) as consumer:
        assert await seen(consumer, 13) == {"processed": 6, "duplicate": 1, "ignored": 6}
        assert batched(consumer) == (1, 7)
    assert handler.calls == 6
    logged = await case_log(consumer_store)
    ids = [json.loads(r.payload)["consultation_id"] for r in recs]
    assert [stream for _, stream in logged] == [f"case-{i}" for i in ids]
    if consumer_store.dialect == "postgresql":
        assert len({tx for tx, _ in logged}) == 1  # one transaction


class FailsOn(Handler):
    """Fails with ``failure`` the first ``times`` times it handles ``consultation_id``."""

    def __init__(self, consultation_id: str, times: int, failure: Exception) -> None:
        super().__init__()
        self.target, self.times, self.failure = consultation_id, times, failure
        self.per_id: dict[str, int] = {}

    async def __call__(self, e: ConsultationReceived, ctx: PolicyContext) -> None:
        self.per_id[e.consultation_id] = self.per_id.get(e.consultation_id, 0) + 1
        if e.consultation_id == self.target and self.per_id[e.consultation_id] <= self.times:
            await ctx.uow.conn.execute(
                handled.insert().values(consultation_id=e.consultation_id, summary="partial")
            )
            raise self.failure
        await super().__call__(e, ctx)


async def test_a_transient_failure_in_a_batch_redelivers_from_its_message_only(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    """The third of five messages fails twice with a dropped connection: the batch's
    transaction rolls back, the first two are handled one at a time and committed, the
    third pauses the consumer and is delivered again, with the two after it. Nothing
    is handled twice, and the case log keeps the order sent."""
    recs = [
        (await source.append(f"consultation-{i}", [new(consultation("hh-1"))], 0))[0]
        for i in range(5)
    ]
    ids = [json.loads(r.payload)["consultation_id"] for r in recs]
    await publish_together(kafka_producer, topic, [message_of(r) for r in recs])
    handler = FailsOn(ids[2], 2, ConnectionError("database went away"))
    async with consuming(consumer_store, kafka_bootstrap, topic, handler) as consumer:
        assert await seen(consumer, 5) == {"processed": 5}  # no duplicates: not rewound
        deadline = time.monotonic() + 30
        while (lag := await group_lag(kafka_bootstrap, consumer.name, topic)) != 0:
            assert time.monotonic() < deadline, f"lag stays at {lag}"
            await asyncio.sleep(0.05)
    retried = REGISTRY.get_sample_value(
        "kyosei_consumer_retries_total", {"consumer": consumer.name}
    )
    assert retried == 1  # the batch's failure is not one: handled again on its own
    assert handler.per_id[ids[0]] == 2 and handler.per_id[ids[1]] == 2  # batch, then alone
    assert handler.per_id[ids[2]] == 3  # batch, alone (nacked), then again
    assert sorted(r[0] for r in await rows(consumer_store)) == sorted(ids)
    assert {r[1] for r in await rows(consumer_store)} == {JAPANESE_SUMMARY}
    assert [stream for _, stream in await case_log(consumer_store)] == [f"case-{i}" for i in ids]


async def test_a_message_that_fails_for_good_in_a_batch_is_dead_lettered_alone(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
) -> None:
    """A policy that refuses the second of four messages: the batch rolls back, the
    others are processed, that one alone is dead-lettered, with the policy's reason."""
    recs = [
        (await source.append(f"consultation-{i}", [new(consultation("hh-1", agency_id=a))], 0))[0]
        for i, a in enumerate(["agency-a", "agency-reject", "agency-b", "agency-c"])
    ]
    await publish_together(kafka_producer, topic, [message_of(r) for r in recs])
    handler = Handler()
    async with consuming(consumer_store, kafka_bootstrap, topic, handler) as consumer:
        assert await seen(consumer, 4) == {"processed": 3, "dead_lettered": 1}
        (dead,) = await read_topic(kafka_bootstrap, consumer.dead_letter_topic)
    assert header(dead, "dlq_offset") == "1"
    assert "no coordination office" in (header(dead, "dlq_reason") or "")
    kept = {json.loads(recs[i].payload)["consultation_id"] for i in (0, 2, 3)}
    assert {r[0] for r in await rows(consumer_store)} == kept
    assert await count_events(consumer_store) == 3
    assert batched(consumer) == (0, 0)  # the batch that failed is not counted


@pytest.mark.parametrize("vault_answers", [True, False], ids=["vault", "prefetch-fails"])
async def test_the_keys_of_a_fetch_are_read_together(
    source: EventStore,
    consumer_store: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    topic: str,
    vault_answers: bool,
) -> None:
    """Consultations about five households the consumer holds no key of, in one fetch:
    their keys are asked for in one call before the messages are opened; when that call
    fails, each message opens with its own key read, and nothing is lost."""
    households = [f"hh-keys-{i}" for i in range(5)]
    recs = [
        (await source.append(f"consultation-{h}", [new(consultation(h), h)], 0))[0]
        for h in households
    ]
    vault = consumer_store.vault
    for h in households:
        vault.forget_cached(h)  # as in another process: none of them in memory
    asked: list[list[str]] = []
    prefetch = vault.prefetch

    async def recorded(ids: Any) -> int:
        asked.append(list(ids))
        if not vault_answers:
            raise ConnectionError("key vault went away")
        return await prefetch(ids)

    vault.prefetch = recorded  # type: ignore[method-assign]
    await publish_together(kafka_producer, topic, [message_of(r) for r in recs])
    handler = Handler()
    async with consuming(consumer_store, kafka_bootstrap, topic, handler) as consumer:
        assert await seen(consumer, 5) == {"processed": 5}
    assert asked == [households]
    assert sorted(summary for _, summary in await rows(consumer_store)) == [JAPANESE_SUMMARY] * 5
