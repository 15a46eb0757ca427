"""Idempotent consumers with a dead-letter topic: the one place around every policy.

Each service has one FastStream subscriber for the topics its policies need. Its
parser and decoder are kyosei's own, bytes in and a typed event out: FastStream never
decodes a body by its content-type, so a message it could not have decoded (invalid
JSON, a tombstone, a header that is not UTF-8) reaches :meth:`IdempotentConsumer.handle`
and is dead-lettered instead of failing in the framework.

A consumer records each message id it has processed in the same transaction as the
policy's effect (its appends and read-model writes), so a redelivered message has no
second effect. An event type no policy handles is ignored. A message that can never
be processed (bad envelope, unknown or invalid payload, a tombstone, a hash that does
not match, or a policy that raises :class:`Unprocessable`) is published to the
consumer's dead-letter topic with the reason, and the consumer goes on. Anything else is taken
as transient (database or broker down): the message is nacked after a backoff, so
Kafka delivers it again, and after ``max_attempts`` it is dead-lettered with the last
error so that it is never silently dropped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter
from pydantic import ValidationError

from . import topics
from .codec import decode_payload
from .envelope import Envelope, EnvelopeError
from .model import DomainEvent, UnknownEventType
from .policy import Policy, PolicyContext, Unprocessable, by_event_type
from .records import CorruptEvent
from .store import EventStore

log = structlog.get_logger(__name__)

# FastStream's Prometheus middleware counts and times every message; what it cannot
# know is what became of it here.
CONSUMED = Counter(
    "kyosei_consumer_messages_total",
    "Messages seen by consumers, by outcome",
    ["consumer", "outcome"],
)


class Outcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Readable:
    """An event a policy here handles, its hash checked and its payload typed."""

    envelope: Envelope
    event: DomainEvent
    policy: Policy[Any]


@dataclass(frozen=True)
class Unhandled:
    """An event of a type no policy of this service handles."""

    envelope: Envelope


@dataclass(frozen=True)
class Unreadable:
    """A message that can never be processed. ``event_id`` is the ce_id to record as
    processed, set only when the copy is authentic (see :meth:`IdempotentConsumer.decode`)."""

    reason: str
    event_id: str | None = None


@dataclass(frozen=True)
class Unopened:
    """A message whose payload could not be opened this time (the key vault did not
    answer): retried like a failing policy."""

    envelope: Envelope
    error: Exception


Decoded = Readable | Unhandled | Unreadable | Unopened


class IdempotentConsumer:
    """The policies of one service, behind one subscriber on the service's broker."""

    def __init__(
        self,
        name: str,
        store: EventStore,
        policies: Sequence[Policy[Any]],
        broker: KafkaBroker,
        *,
        dead_letter_topic: str | None = None,
        max_attempts: int = 10,
        base_backoff: float = 0.5,
    ) -> None:
        """``name`` is the consumer group (and what processed messages are recorded
        under); a service's consumer is ``topics.consumer_group(service, prefix)`` with
        ``dead_letter_topic=topics.dead_letter_topic(service, prefix)``. Without one,
        dead letters go to ``topics.dead_letter_topic(name)``."""
        self.name = name
        self.store = store
        self.policies = by_event_type(policies)
        self.broker = broker
        self.dead_letter_topic = dead_letter_topic or topics.dead_letter_topic(name)
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self._attempts: dict[tuple[str, int, int], int] = {}

    def subscribe(self, *topics: str) -> None:
        """Consume ``topics`` on the broker, as the consumer group ``name``."""
        subscriber = self.broker.subscriber(
            # The cluster creates topics (with its partition count) on first use;
            # FastStream would create them with one partition.
            *(Topic(t, declare=False) for t in topics),
            group_id=self.name,
            auto_offset_reset="earliest",
            # A transient failure nacks (handle raises NackMessage); anything
            # unexpected is redelivered too rather than skipped.
            ack_policy=AckPolicy.NACK_ON_ERROR,
            parser=self.parse,
            decoder=self.decode,
            no_reply=True,
            title=f"{self.name}:policies",
            description=", ".join(sorted(self.policies)),
        )
        subscriber(self.handle)

    async def parse(
        self,
        record: ConsumerRecord[bytes, bytes],
        parse: Callable[[ConsumerRecord[bytes, bytes]], Awaitable[KafkaMessage]],
    ) -> KafkaMessage:
        """FastStream's parser, except that a header value that is not UTF-8 does not
        fail it: the envelope check names that header and the message is dead-lettered."""
        headers = list(record.headers or ())
        if all(_is_utf8(v) for _, v in headers):
            return await parse(record)
        text = [(k, v.decode("utf-8", "replace").encode()) for k, v in headers]
        message = await parse(dataclasses.replace(record, headers=text))
        message.raw_message = record  # the record as it arrived
        return message

    async def decode(self, message: KafkaMessage) -> Decoded:
        """The message as a typed event of a policy here, or why it is not one."""
        record = _record(message)
        try:
            env = Envelope.from_headers(record.headers or ())
        except EnvelopeError as exc:
            return Unreadable(f"bad envelope: {exc}")
        policy = self.policies.get(env.event_type)
        if policy is None:
            return Unhandled(env)
        if record.value is None:
            return Unreadable("tombstone: the message has no value")
        try:
            text = record.value.decode("utf-8")
            if env.link_hash(text) != env.hash:
                # The envelope carries the chain link: a payload altered on the way
                # is refused.
                raise _HashMismatch("payload or headers do not match ce_hash")
            event, _ = await decode_payload(
                self.store.vault,
                event_type=env.event_type,
                schema_version=env.schema_version,
                subject=env.subject,
                event_id=env.id,
                payload=text,
            )
        except (
            UnicodeDecodeError,
            json.JSONDecodeError,
            UnknownEventType,
            CorruptEvent,
            ValidationError,
            _HashMismatch,
        ) as exc:
            # A copy that fails the hash check is not the event its ce_id names: it must
            # not mark that id processed, or the genuine copy would then be dropped.
            authentic = not isinstance(exc, (UnicodeDecodeError, _HashMismatch))
            return Unreadable(f"{type(exc).__name__}: {exc}", env.id if authentic else None)
        except Exception as exc:
            return Unopened(env, exc)
        return Readable(env, event, policy)

    async def handle(self, decoded: Decoded, message: KafkaMessage) -> Outcome:
        """What becomes of one message (FastStream's handler for the subscriber)."""
        match decoded:
            case Readable():
                return await self._run(decoded, message)
            case Unhandled():
                return self._counted(message, Outcome.IGNORED)
            case Unreadable(reason, event_id):
                return await self._dead_letter(message, reason, event_id)
            case Unopened(env, error):
                return await self._retry_later(message, env, error)

    async def _run(self, readable: Readable, message: KafkaMessage) -> Outcome:
        """The policy's effect and the processed mark, in one unit of work."""
        env, policy = readable.envelope, readable.policy
        try:
            with structlog.contextvars.bound_contextvars(
                correlation_id=env.effective_correlation_id, policy=policy.name
            ):
                async with self.store.unit_of_work() as uow:
                    if not await uow.mark_processed(self.name, env.id):
                        return self._counted(message, Outcome.DUPLICATE)
                    await policy.handler(readable.event, PolicyContext(uow, env))
        except Unprocessable as exc:
            return await self._dead_letter(message, str(exc), env.id)
        except Exception as exc:
            return await self._retry_later(message, env, exc)
        return self._counted(message, Outcome.PROCESSED)

    def _counted(self, message: KafkaMessage, outcome: Outcome) -> Outcome:
        record = _record(message)
        self._attempts.pop((record.topic, record.partition, record.offset), None)
        CONSUMED.labels(self.name, outcome).inc()
        return outcome

    async def _retry_later(self, message: KafkaMessage, env: Envelope, error: Exception) -> Outcome:
        record = _record(message)
        position = (record.topic, record.partition, record.offset)
        attempts = self._attempts.get(position, 0) + 1
        if attempts >= self.max_attempts:
            reason = f"failed {attempts} times, last: {type(error).__name__}: {error}"
            return await self._dead_letter(message, reason, env.id)
        self._attempts[position] = attempts
        log.warning(
            "consumer_retry",
            consumer=self.name,
            event_id=env.id,
            attempt=attempts,
            exc_info=error,
        )
        await asyncio.sleep(min(self.base_backoff * 2 ** (attempts - 1), 30.0))
        # FastStream seeks back to this message: Kafka delivers it again.
        raise NackMessage()

    async def _dead_letter(
        self, message: KafkaMessage, reason: str, event_id: str | None = None
    ) -> Outcome:
        record = _record(message)
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        extra = {
            "dlq_reason": reason[:2000],
            "dlq_consumer": self.name,
            "dlq_topic": record.topic,
            "dlq_partition": str(record.partition),
            "dlq_offset": str(record.offset),
            "dlq_time": datetime.now(UTC).isoformat(),
        }
        # The copy keeps the key, the value and the headers as they arrived (headers
        # are text to FastStream: a value that was not UTF-8 reads with U+FFFD).
        kept = {k: v for k, v in message.headers.items() if not k.startswith("dlq_")}
        await self.broker.publish(
            record.value,
            self.dead_letter_topic,
            key=record.key,
            headers=kept | extra,
            correlation_id=message.correlation_id,
        )
        if event_id is not None:
            # So that a redelivery of the same message is not dead-lettered twice.
            async with self.store.unit_of_work() as uow:
                await uow.mark_processed(self.name, event_id)
        log.error("dead_lettered", consumer=self.name, reason=reason, **where)
        return self._counted(message, Outcome.DEAD_LETTERED)


def _record(message: KafkaMessage) -> ConsumerRecord[bytes, bytes]:
    record = message.raw_message
    assert not isinstance(record, tuple), "the subscriber reads one record at a time"
    return record


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _HashMismatch(ValueError):
    pass
