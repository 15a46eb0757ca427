"""Event policies on the service's broker, in memory (FastStream's TestKafkaBroker): the
policy gets its typed event, a duplicate has no second effect, a type no policy
handles is ignored, and what can never be processed is dead-lettered with the reason.
The same guarantees over the real Kafka protocol: tests/integration/test_consumer.py."""

from __future__ import annotations

import binascii
import dataclasses
import errno
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiokafka import errors as kafka_errors
from cryptography.exceptions import InvalidTag
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy import exc as sa_exc

from kyosei_events import (
    ConcurrencyError,
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
from kyosei_events.consumer import is_transient
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


async def test_a_dead_letter_that_cannot_be_sent_is_logged_and_retried(
    bus: tuple[Bus, Seen], source: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    b, _ = bus
    b.consumer.base_backoff = 0.001
    (rec,) = await source.append("consultation-1", [new(consultation("hh-1"))], 0)
    publish = b.broker.publish
    failures = [kafka_errors.KafkaConnectionError("kafka went away")] * 2

    async def flaky(message: Any, topic: str, **kw: Any) -> Any:
        if topic == b.consumer.dead_letter_topic and failures:
            raise failures.pop()
        return await publish(message, topic, **kw)

    monkeypatch.setattr(b.broker, "publish", flaky)
    with structlog.testing.capture_logs() as logs:
        await b.send(None, rec.envelope(SOURCE).header_map())  # a tombstone

    assert failures == []
    assert b.reasons() == ["tombstone: the message has no value"]
    assert b.outcomes() == {"dead_lettered": 1}
    failed = [e for e in logs if e["event"] == "dead_letter_failed"]
    assert [e["attempt"] for e in failed] == [1, 2]
    assert all(e["log_level"] == "error" for e in failed)


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


# -- what is retried and what is dead-lettered at once ----------------------------------


def _db_error(kind: type[Exception], sqlstate: str) -> Exception:
    class DriverError(Exception):
        pass

    orig = DriverError("driver")
    orig.sqlstate = sqlstate  # type: ignore[attr-defined]
    return kind("INSERT …", {}, orig)


def _caused_by(cause: Exception) -> Exception:
    try:
        raise RuntimeError("wrapped") from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (ConnectionResetError(104, "reset"), True),
        (TimeoutError(), True),
        (OSError(errno.EHOSTUNREACH, "no route to host"), True),
        (_db_error(sa_exc.OperationalError, "08006"), True),
        (_db_error(sa_exc.InterfaceError, "08003"), True),
        (_db_error(sa_exc.DBAPIError, "40P01"), True),  # deadlock
        (_db_error(sa_exc.DBAPIError, "40001"), True),  # serialization failure
        (_db_error(sa_exc.DataError, "22001"), False),  # value too long for its column
        (_db_error(sa_exc.IntegrityError, "23502"), False),  # not-null violation
        (_db_error(sa_exc.ProgrammingError, "42P01"), False),
        (kafka_errors.KafkaConnectionError(), True),
        (kafka_errors.NotLeaderForPartitionError(), True),
        (kafka_errors.KafkaTimeoutError(), True),
        (kafka_errors.MessageSizeTooLargeError(), False),
        (ConcurrencyError("s", 1, 2), True),
        (_caused_by(ConnectionError("key vault went away")), True),
        (ValueError("non-hexadecimal number found in fromhex()"), False),
        (binascii.Error("Incorrect padding"), False),
        (InvalidTag(), False),
        (RecursionError("maximum recursion depth exceeded"), False),
        (KeyError("x"), False),
        (Unprocessable("no office"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_only_infrastructure_failures_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_transient_failure_waits_at_most_max_backoff_however_long_it_lasts() -> None:
    broker = kafka_broker("localhost:9092", service="coordination")
    consumer = IdempotentConsumer("backoff", _NoStore(), [], broker, base_backoff=0.5)
    waits = [consumer._backoff(n) for n in (1, 2, 3, 7, 8, 100, 100_000)]
    assert waits == [0.5, 1.0, 2.0, 30.0, 30.0, 30.0, 30.0]
    consumer.max_backoff = 5.0
    assert consumer._backoff(1_000_000) == 5.0


class _NoStore:
    vault = None
