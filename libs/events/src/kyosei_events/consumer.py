"""Idempotent consumers with a dead-letter topic: the one place around every policy.

Each service has one FastStream subscriber for the topics its policies need. Its
parser and decoder are kyosei's own, bytes in and a typed event out: FastStream never
decodes a body by its content-type, so a message it could not have decoded (invalid
JSON, a tombstone, a header that is not UTF-8) reaches :meth:`IdempotentConsumer.handle`
and is dead-lettered instead of failing in the framework.

A consumer records each message id it has processed in the same transaction as the
policy's effect (its appends and read-model writes), so a redelivered message has no
second effect. An event type no policy handles is ignored.

Only a recognised transient infrastructure failure (:func:`is_transient`: the
database, the key vault or Kafka unreachable, a timeout, a deadlock) is retried, and
without limit: the message is nacked after a backoff (doubling, capped at
``max_backoff``), so Kafka delivers it again, and the consumer stays paused on it
until the failure passes. A transient failure says nothing about the message, so it
never sends one to the dead-letter topic: an outage of any length delays messages and
drops none. Each attempt logs ``consumer_retry`` (a warning) and counts in
``kyosei_consumer_retries_total``; ``kyosei_consumer_paused`` is 1 while the consumer
waits on one. Anything else means the message can never be processed (a bad envelope, a
field longer than the store's column, unknown or invalid payload, a tombstone, a hash
that does not match, a sealed field that does not open, JSON nested too deep, a policy
that raises :class:`Unprocessable` or fails any other way): it is published at once to
the consumer's dead-letter topic with the reason, and the consumer goes on. A dead-letter
copy always fits the producer's size limit: when the message is too large its value
(and if need be its headers) is left out, and the copy says where the original is
(``dlq_topic``, ``dlq_partition``, ``dlq_offset``). A dead letter that cannot be sent
is logged and retried with backoff, and the message is delivered again only after that.

The subscriber takes what Kafka has fetched as a batch (at most ``max_batch`` messages)
and runs consecutive messages a policy handles in one unit of work, each with its
processed mark (events of types no policy here handles, in between, are ignored as
ever): one transaction, one commit and one relay wake-up for the batch, so the
more there is to catch up on, the less each message costs. Messages are still handled in
the order they came. When anything in that transaction fails, it is rolled back and the
same messages are handled again one at a time, each in a unit of work of its own, as
described below: a transient failure pauses the consumer on the message it belongs to and
a message that can never be processed is dead-lettered, without holding back the others.

Offsets are committed after the message is processed (or dead-lettered), in the
background: the consumer goes on to the next message without waiting for Kafka's
answer, and the commits of messages processed meanwhile go out as one, at most one
every ``commit_interval`` seconds. Only offsets of messages done with are committed, so
a crash or a rebalance delivers again at most what was processed since the last
commit, and the processed marks make those duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import itertools
import socket
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

import structlog
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from faststream import AckPolicy
from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import exc as sa_exc

from . import topics
from .codec import decode_payload
from .crypto import MasterKeyMismatch
from .envelope import Envelope, EnvelopeError
from .model import DomainEvent, event_class
from .policy import Policy, PolicyContext, Unprocessable, by_event_type
from .records import ConcurrencyError
from .store import EventStore

log = structlog.get_logger(__name__)

# How long the subscriber waits for fetched messages before it looks again (it stops
# waiting as soon as there are any).
IDLE_WAIT_MS = 500

# FastStream's Prometheus middleware counts and times every message; what it cannot
# know is what became of it here.
CONSUMED = Counter(
    "kyosei_consumer_messages_total",
    "Messages seen by consumers, by outcome",
    ["consumer", "outcome"],
)
RETRIES = Counter(
    "kyosei_consumer_retries_total",
    "Deliveries retried after a transient failure (database, key vault or Kafka "
    "unreachable, a timeout)",
    ["consumer"],
)
CONSUMED_EVENTS = Counter(
    "kyosei_consumer_events_total",
    "Messages seen by consumers, by event type (unknown: no readable envelope) and outcome",
    ["consumer", "event_type", "outcome"],
)
LAG = Gauge(
    "kyosei_consumer_lag",
    "Messages of an assigned partition not yet consumed: its end offset minus the "
    "consumer's position",
    ["consumer", "topic", "partition"],
)
BATCHED = Histogram(
    "kyosei_consumer_batch_messages",
    "Messages handled together in one unit of work (consecutive messages of one fetch "
    "that policies handle)",
    ["consumer"],
    buckets=(2, 4, 8, 16, 32, 64, 128, 256),
)
PAUSED = Gauge(
    "kyosei_consumer_paused",
    "1 while the consumer retries a message after a transient failure, else 0",
    ["consumer"],
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
    event_type: str = "unknown"  # the envelope's, once it names a type handled here


@dataclass(frozen=True)
class Unopened:
    """A message whose payload could not be opened this time (the key vault did not
    answer): retried like a failing policy."""

    envelope: Envelope
    error: Exception


Decoded = Readable | Unhandled | Unreadable | Unopened
# What a batch handles in one unit of work: events for a policy here, and those of types
# no policy handles among them, which need nothing but to be counted.
_Together = Readable | Unhandled


@dataclass(frozen=True)
class Delivery:
    """One message as the subscriber hands it on: what it decoded to, and the message."""

    decoded: Decoded
    message: KafkaMessage


@dataclass
class Batch:
    """The messages of one fetch, in the order Kafka delivered them, as the subscriber
    hands them on. ``done``: how many of them, from the first, have been done with
    (processed, dropped as duplicates, ignored or dead-lettered); a nack rewinds to the
    first one that has not."""

    deliveries: tuple[Delivery, ...]
    done: int = 0


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
        max_backoff: float = 30.0,
        max_message_bytes: int | None = None,
        fetch_max_wait_ms: int = 500,
        commit_interval: float = 0.0,
        max_batch: int = 100,
        tracer_provider: Any = None,
    ) -> None:
        """``name`` is the consumer group (and what processed messages are recorded
        under); a service's consumer is ``topics.consumer_group(service, prefix)`` with
        ``dead_letter_topic=topics.dead_letter_topic(service, prefix)``. Without one,
        dead letters go to ``topics.dead_letter_topic(name)``. ``max_message_bytes``: the
        largest message the broker's producer sends (its ``max_request_size``, read from
        the broker when not given). A transient failure is retried without limit, after
        ``base_backoff`` doubled on each attempt up to ``max_backoff`` seconds;
        ``max_attempts`` bounds only the attempts to send one dead letter before the
        message is delivered again. ``fetch_max_wait_ms``: how long the broker may hold a
        fetch open while it has nothing new (aiokafka's, 500 by default).
        ``commit_interval``: seconds between the background commits of processed
        offsets at most (0: one as soon as the previous one is answered). ``max_batch``:
        the most messages handled as one batch (1: one at a time). ``tracer_provider``
        (OpenTelemetry's, when tracing is on): each message's processing is a span of its
        own in the trace its headers carry, as well as part of the batch's span."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self.name = name
        self.store = store
        self.policies = by_event_type(policies)
        self.broker = broker
        self.dead_letter_topic = dead_letter_topic or topics.dead_letter_topic(name)
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.max_message_bytes = max_message_bytes or _max_request_size(broker)
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.commit_interval = commit_interval
        self.max_batch = max_batch
        self._tracer: Any = None
        if tracer_provider is not None:
            from opentelemetry.trace import SpanKind
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )

            self._tracer = tracer_provider.get_tracer("kyosei.consumer")
            self._trace_context = TraceContextTextMapPropagator()
            self._consumer_kind = SpanKind.CONSUMER
        self._committer: _Committer | None = None
        self._attempts: dict[tuple[str, int, int], int] = {}
        self._subscriber: Any = None
        self._lagging: set[tuple[str, str]] = set()
        PAUSED.labels(name).set(0)

    def subscribe(self, *topics: str) -> None:
        """Consume ``topics`` on the broker, as the consumer group ``name``."""
        subscriber = self.broker.subscriber(
            # The cluster creates topics (with its partition count) on first use;
            # FastStream would create them with one partition.
            *(Topic(t, declare=False) for t in topics),
            group_id=self.name,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            batch=True,
            max_records=self.max_batch,
            batch_timeout_ms=IDLE_WAIT_MS,
            # A transient failure nacks (handle raises NackMessage) and so does a
            # dead letter that could not be sent; handle raises nothing else. The nack
            # rewinds to the first message of the batch not done with (_BatchAcknowledging).
            ack_policy=AckPolicy.NACK_ON_ERROR,
            parser=self.parse_batch,
            decoder=self._delivered,
            no_reply=True,
            title=f"{self.name}:policies",
            description=", ".join(sorted(self.policies)),
        )
        subscriber(self._handle_delivery)
        # FastStream's batch subscriber pauses as long again after a wait that brought
        # nothing, and a message arriving meanwhile waits for the pause to end: without
        # it, the wait itself returns as soon as something is fetched.
        subscriber.get_msg = self._fetched  # type: ignore[method-assign]
        self._subscriber = subscriber

    async def _fetched(self, consumer: Any) -> tuple[ConsumerRecord[bytes, bytes], ...]:
        """The subscriber's next batch: what has been fetched, at most ``max_batch``
        messages, as soon as there is any; empty after IDLE_WAIT_MS without any."""
        fetched = await consumer.getmany(timeout_ms=IDLE_WAIT_MS, max_records=self.max_batch)
        return tuple(itertools.chain.from_iterable(fetched.values()))

    async def _delivered(self, message: KafkaMessage) -> Batch:
        """The subscriber's decoder: :meth:`decode` of each message of the batch, with
        the message it came from."""
        records = message.raw_message
        assert isinstance(records, (tuple, list)), "the subscriber reads batches"
        await self._prefetch_keys(records)
        deliveries = []
        for record, headers in zip(records, message.batch_headers, strict=True):
            one = KafkaMessage(
                body=record.value or b"",
                headers=headers,
                reply_to=headers.get("reply_to", ""),
                content_type=headers.get("content-type"),
                message_id=f"{record.offset}-{record.timestamp}",
                correlation_id=headers.get("correlation_id"),
                raw_message=record,
                consumer=message.consumer,  # acknowledged with the batch
            )
            deliveries.append(Delivery(await self.decode(one), one))
        batch = Batch(tuple(deliveries))
        if isinstance(message.consumer, _BatchAcknowledging):
            message.consumer.batch = batch
        return batch

    async def _prefetch_keys(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """The household keys the batch's events for a policy here need to open their
        personal fields, read in one statement (KeyVault.prefetch) before they are
        decoded one by one. Anything wrong here (a bad envelope, the vault unreachable)
        is left for each message's own decode to find and answer."""
        subjects = []
        for record in records:
            try:
                env = Envelope.from_headers(record.headers or ())
            except Exception:
                continue
            if env.event_type in self.policies and event_class(env.event_type).personal_fields():
                subjects.append(env.subject)
        if len(subjects) > 1:
            try:
                await self.store.vault.prefetch(subjects)
            except Exception:
                log.debug("consumer_key_prefetch_failed", consumer=self.name, exc_info=True)

    async def _handle_delivery(self, batch: Batch) -> None:
        """The subscriber's handler: :meth:`handle_batch`. The messages come as the
        decoded value, not as a context parameter, which FastDepends would resolve in a
        worker thread (and a task group) for every batch."""
        await self.handle_batch(batch)

    async def lag(self, wait: float = 2.0) -> dict[tuple[str, int], int]:
        """Each assigned partition's lag (its end offset minus this consumer's position),
        also set as ``kyosei_consumer_lag``; empty before the consumer has started or
        while it has no partitions. A partition whose offsets do not answer within
        ``wait`` seconds is left out this time."""
        consumer = None if self._subscriber is None else self._subscriber.consumer
        lags: dict[tuple[str, int], int] = {}
        if consumer is not None:
            assigned = sorted(consumer.assignment())
            ends = {tp: consumer.highwater(tp) for tp in assigned}
            unknown = [tp for tp, end in ends.items() if end is None]
            if unknown:
                try:
                    # asyncio.timeout keeps a cancellation (wait_for on 3.11 can drop it).
                    async with asyncio.timeout(wait):
                        ends |= await consumer.end_offsets(unknown)
                except Exception as exc:
                    log.debug("consumer_lag_unknown", consumer=self.name, error=_describe(exc))
            for tp in assigned:
                end = ends.get(tp)
                if end is None:
                    continue
                try:
                    async with asyncio.timeout(wait):
                        position = await consumer.position(tp)
                except Exception as exc:
                    log.debug("consumer_lag_unknown", consumer=self.name, error=_describe(exc))
                    continue
                lags[(tp.topic, tp.partition)] = max(int(end) - int(position), 0)
        labels = {(topic, str(partition)) for topic, partition in lags}
        for gone in self._lagging - labels:
            # No longer assigned here: another member of the group reports it.
            LAG.remove(self.name, *gone)
        for (topic, partition), behind in lags.items():
            LAG.labels(self.name, topic, str(partition)).set(behind)
        self._lagging = labels
        return lags

    async def parse_batch(
        self,
        records: tuple[ConsumerRecord[bytes, bytes], ...],
        parse: Callable[[tuple[ConsumerRecord[bytes, bytes], ...]], Awaitable[KafkaMessage]],
    ) -> KafkaMessage:
        """FastStream's batch parser, except that a header value that is not UTF-8 does
        not fail it: the envelope check names that header and the message is
        dead-lettered."""
        if all(_is_utf8(v) for record in records for _, v in record.headers or ()):
            message = await parse(records)
        else:
            message = await parse(tuple(_text_headers(record) for record in records))
            message.raw_message = records  # the records as they arrived
        consumer = getattr(message, "consumer", None)
        if consumer is not None and hasattr(consumer, "assignment"):
            # Acknowledging it commits its offsets in the background (_Committer).
            message.consumer = _BatchAcknowledging(self._committer_of(consumer), records)
        return message

    def _committer_of(self, consumer: Any) -> _Committer:
        if self._committer is None or self._committer.consumer is not consumer:
            self._committer = _Committer(self.name, consumer, self.commit_interval)
        return self._committer

    async def flush(self) -> None:
        """Commit what has been processed and not committed yet (before stopping)."""
        if self._committer is not None:
            await self._committer.flush()

    async def decode(self, message: KafkaMessage) -> Decoded:
        """The message as a typed event of a policy here, or why it is not one.

        Never raises: whatever goes wrong is an :class:`Unreadable` (for good) or, when
        it is a transient failure (:func:`is_transient`), an :class:`Unopened`."""
        try:
            record = _record(message)
            env = Envelope.from_headers(record.headers or ())
        except EnvelopeError as exc:
            return Unreadable(f"bad envelope: {exc}")
        except Exception as exc:
            return Unreadable(f"bad envelope: {_describe(exc)}")
        policy = self.policies.get(env.event_type)
        if policy is None:
            return Unhandled(env)
        if record.value is None:
            return Unreadable("tombstone: the message has no value", event_type=env.event_type)
        try:
            text = record.value.decode("utf-8")
            if env.link_hash(text) != env.hash:
                # The envelope carries the chain link: a payload altered on the way
                # is refused.
                raise _HashMismatch("payload or headers do not match ce_hash")
        except Exception as exc:
            # A copy that fails the hash check is not the event its ce_id names: it must
            # not mark that id processed, or the genuine copy would then be dropped.
            return Unreadable(_describe(exc), event_type=env.event_type)
        try:
            event, _ = await decode_payload(
                self.store.vault,
                event_type=env.event_type,
                schema_version=env.schema_version,
                subject=env.subject,
                event_id=env.id,
                payload=text,
            )
        except Exception as exc:
            if is_transient(exc):
                return Unopened(env, exc)
            # Invalid JSON or JSON nested too deep (RecursionError), an unknown
            # schema version, an invalid payload, a sealed field that does not open.
            return Unreadable(_describe(exc), env.id, env.event_type)
        return Readable(env, event, policy)

    async def handle_batch(self, batch: Batch) -> list[Outcome]:
        """What becomes of the messages of a batch, in order: consecutive events (of
        types a policy here handles, or ignored) in one unit of work when two or more of
        them are for a policy (:meth:`_run_together`); the rest, and those when that
        fails, one at a time (:meth:`handle`). ``batch.done`` counts
        the messages done with, so that a nack (a transient failure: NackMessage)
        rewinds to the first that is not."""
        deliveries = batch.deliveries
        outcomes: list[Outcome] = []
        start = batch.done
        while start < len(deliveries):
            end = start + 1
            if isinstance(deliveries[start].decoded, _Together):
                while end < len(deliveries) and isinstance(deliveries[end].decoded, _Together):
                    end += 1
            group = deliveries[start:end]
            readable = sum(isinstance(d.decoded, Readable) for d in group)
            together = await self._run_together(group) if readable > 1 else None
            if together is not None:
                outcomes.extend(together)
                batch.done = end
            else:
                for delivery in group:
                    outcomes.append(await self.handle(delivery.decoded, delivery.message))
                    batch.done += 1
            start = end
        return outcomes

    async def _run_together(self, group: Sequence[Delivery]) -> list[Outcome] | None:
        """The policies' effects and processed marks of the messages of ``group`` a
        policy handles, in one unit of work (the others, of types no policy handles, are
        ignored); None, with nothing of it committed, when anything in it failed."""
        done: list[tuple[Delivery, Outcome]] = []
        try:
            async with self.store.unit_of_work() as uow:
                for delivery in group:
                    readable = delivery.decoded
                    if isinstance(readable, Unhandled):
                        done.append((delivery, Outcome.IGNORED))
                        continue
                    assert isinstance(readable, Readable)
                    env, policy = readable.envelope, readable.policy
                    with (
                        self._span(delivery.message, env),
                        structlog.contextvars.bound_contextvars(
                            correlation_id=env.effective_correlation_id, policy=policy.name
                        ),
                    ):
                        if await uow.mark_processed(self.name, env.id):
                            await policy.handler(readable.event, PolicyContext(uow, env))
                            done.append((delivery, Outcome.PROCESSED))
                        else:
                            done.append((delivery, Outcome.DUPLICATE))
        except Exception as exc:
            # Which message failed, and whether it ever can succeed, is for the
            # one-at-a-time path to find out.
            log.info(
                "consumer_batch_split",
                consumer=self.name,
                messages=len(group),
                failed_at=len(done),
                error=_describe(exc),
            )
            return None
        BATCHED.labels(self.name).observe(sum(o is not Outcome.IGNORED for _, o in done))
        return [
            self._counted(d.message, outcome, cast(_Together, d.decoded).envelope.event_type)
            for d, outcome in done
        ]

    async def handle(self, decoded: Decoded, message: KafkaMessage) -> Outcome:
        """What becomes of one message."""
        match decoded:
            case Readable():
                return await self._run(decoded, message)
            case Unhandled(env):
                return self._counted(message, Outcome.IGNORED, env.event_type)
            case Unreadable(reason, event_id, event_type):
                return await self._dead_letter(message, reason, event_id, event_type)
            case Unopened(env, error):
                return await self._retry_later(message, env, error)

    async def _run(self, readable: Readable, message: KafkaMessage) -> Outcome:
        """The policy's effect and the processed mark, in one unit of work."""
        env, policy = readable.envelope, readable.policy
        try:
            with (
                self._span(message, env),
                structlog.contextvars.bound_contextvars(
                    correlation_id=env.effective_correlation_id, policy=policy.name
                ),
            ):
                async with self.store.unit_of_work() as uow:
                    if not await uow.mark_processed(self.name, env.id):
                        return self._counted(message, Outcome.DUPLICATE, env.event_type)
                    await policy.handler(readable.event, PolicyContext(uow, env))
        except Unprocessable as exc:
            return await self._dead_letter(message, str(exc), env.id, env.event_type)
        except Exception as exc:
            if is_transient(exc):
                return await self._retry_later(message, env, exc)
            # A permanent database error (a value too long for its column, a
            # constraint) or a bug in the policy: no retry will make it work.
            return await self._dead_letter(
                message, f"{policy.name}: {_describe(exc)}", env.id, env.event_type
            )
        return self._counted(message, Outcome.PROCESSED, env.event_type)

    def _span(self, message: KafkaMessage, env: Envelope) -> AbstractContextManager[Any]:
        """When tracing is on, a span for the processing of one message, in the trace
        its headers carry (the relay's publish), so that a message's way from the
        command that recorded it to its effect here is one trace, batch or not."""
        if self._tracer is None:
            return contextlib.nullcontext()
        record = _record(message)
        return cast(
            AbstractContextManager[Any],
            self._tracer.start_as_current_span(
                f"{record.topic} process",
                context=self._trace_context.extract(message.headers),
                kind=self._consumer_kind,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation": "process",
                    "messaging.destination.name": record.topic,
                    "messaging.message.id": env.id,
                    "messaging.kafka.destination.partition": record.partition,
                    "messaging.kafka.message.offset": record.offset,
                    "messaging.consumer.group.name": self.name,
                    "cloudevents.event_id": env.id,
                    "cloudevents.event_type": env.event_type,
                },
            ),
        )

    def _counted(
        self, message: KafkaMessage, outcome: Outcome, event_type: str = "unknown"
    ) -> Outcome:
        """Count what became of the message. ``event_type``: the envelope's (not for a
        message without a readable envelope, whose ce_type could be anything)."""
        record = _record(message)
        if self._attempts.pop((record.topic, record.partition, record.offset), None):
            log.info(
                "consumer_resumed",
                consumer=self.name,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                outcome=str(outcome),
            )
        PAUSED.labels(self.name).set(1 if self._attempts else 0)
        CONSUMED.labels(self.name, outcome).inc()
        CONSUMED_EVENTS.labels(self.name, event_type, outcome).inc()
        return outcome

    def _backoff(self, attempts: int) -> float:
        # 2 ** attempts grows without bound over a long outage: cap the exponent too.
        return float(min(self.base_backoff * 2 ** min(attempts - 1, 32), self.max_backoff))

    async def _retry_later(self, message: KafkaMessage, env: Envelope, error: Exception) -> Outcome:
        """Deliver the message again after a backoff, however long the failure lasts:
        a transient failure is the infrastructure's, never the message's, so it is
        never a reason to dead-letter it."""
        record = _record(message)
        position = (record.topic, record.partition, record.offset)
        attempts = self._attempts.get(position, 0) + 1
        self._attempts[position] = attempts
        backoff = self._backoff(attempts)
        PAUSED.labels(self.name).set(1)
        RETRIES.labels(self.name).inc()
        log.warning(
            "consumer_retry",
            consumer=self.name,
            event_id=env.id,
            correlation_id=env.effective_correlation_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            attempt=attempts,
            retry_in=backoff,
            error=_describe(error),
            # The traceback once; every later line says only what failed.
            exc_info=error if attempts == 1 else None,
        )
        await asyncio.sleep(backoff)
        # FastStream seeks back to this message: Kafka delivers it again.
        raise NackMessage()

    async def _dead_letter(
        self,
        message: KafkaMessage,
        reason: str,
        event_id: str | None = None,
        event_type: str = "unknown",
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
        value, headers = self._fitting(record, kept, extra)
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.broker.publish(
                    value,
                    self.dead_letter_topic,
                    key=record.key,
                    headers=headers,
                    correlation_id=message.correlation_id,
                )
                break
            except MessageSizeTooLargeError as exc:
                if value is None and not kept.keys() & headers.keys():
                    error: Exception = exc
                else:
                    # The dead-letter topic takes less than the producer sends: the
                    # reference alone.
                    value, headers = None, extra | _omitted(record, "the broker refused it")
                    continue
            except Exception as exc:
                error = exc
            log.error(
                "dead_letter_failed",
                consumer=self.name,
                reason=reason,
                attempt=attempt,
                exc_info=error,
                **where,
            )
            await asyncio.sleep(self._backoff(attempt))
        else:
            # Kafka will deliver the message again, and it is dead-lettered again.
            raise NackMessage()
        if event_id is not None:
            # So that a redelivery of the same message is not dead-lettered twice. The
            # copy is out: if this fails, a redelivery would make a second copy, no worse.
            try:
                async with self.store.unit_of_work() as uow:
                    await uow.mark_processed(self.name, event_id)
            except Exception as exc:
                log.warning(
                    "dead_letter_not_marked", consumer=self.name, event_id=event_id, exc_info=exc
                )
        log.error("dead_lettered", consumer=self.name, reason=reason, **where)
        return self._counted(message, Outcome.DEAD_LETTERED, event_type)

    def _fitting(
        self, record: ConsumerRecord[bytes, bytes], kept: dict[str, str], extra: dict[str, str]
    ) -> tuple[bytes | None, dict[str, str]]:
        """The dead-letter copy's value and headers, within the producer's limit: the
        message as it arrived; else without its value; else with its headers cut short
        too; else the reference (dlq_ headers) alone."""
        limit = self.max_message_bytes - _PUBLISH_OVERHEAD
        key, value = record.key, record.value
        if _size(key, value, kept | extra) <= limit:
            return value, kept | extra
        omitted = _omitted(record, f"the copy would exceed {self.max_message_bytes} bytes")
        if _size(key, None, kept | extra | omitted) <= limit:
            return None, kept | extra | omitted
        short = {k[:256]: v[:256] for k, v in kept.items()}
        if _size(key, None, short | extra | omitted) <= limit:
            return None, short | extra | omitted
        return None, extra | omitted


class _Committer:
    """The background commits of one aiokafka consumer: the offset after each message
    done with, per partition, committed as one request while none is in flight, at
    most one every ``interval`` seconds. A commit that fails (the group rebalanced, the
    broker is away) is logged and not retried: the messages since the last commit are
    delivered again, and recognised as duplicates."""

    def __init__(self, name: str, consumer: Any, interval: float) -> None:
        self.name = name
        self.consumer = consumer
        self.interval = interval
        self._due: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None

    def done_with(self, *records: ConsumerRecord[bytes, bytes]) -> None:
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._due[tp] = max(self._due.get(tp, 0), record.offset + 1)
        if self._due and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(
                self._commit(), name=f"commit:{self.name}"
            )

    async def _commit(self) -> None:
        while self._due:
            due, self._due = self._due, {}
            try:
                await self.consumer.commit(due)
            except Exception as exc:
                log.warning("consumer_commit_failed", consumer=self.name, error=_describe(exc))
            if self.interval:
                await asyncio.sleep(self.interval)

    async def flush(self) -> None:
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._due:
            await self._commit()


class _BatchAcknowledging:
    """What FastStream's batch message acknowledges through (its ``consumer``):
    ``commit`` (an ack: the whole batch was done with) hands the offsets of its messages
    to the :class:`_Committer` and returns at once. ``seek`` (a nack, called once for
    each partition of the batch) hands over the offsets of the messages done with
    (``batch.done``) and rewinds the partition to its first message not done with, so
    that only that one and those after it are delivered again."""

    def __init__(
        self, committer: _Committer, records: tuple[ConsumerRecord[bytes, bytes], ...]
    ) -> None:
        self._committer = committer
        self._records = records
        self.batch: Batch | None = None  # set by the decoder

    async def commit(self) -> None:
        self._committer.done_with(*self._records)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        done = 0 if self.batch is None else self.batch.done
        self._committer.done_with(*self._records[:done])
        rest = [
            r.offset
            for r in self._records[done:]
            if r.topic == partition.topic and r.partition == partition.partition
        ]
        if rest:
            self._committer.consumer.seek(partition, min(rest))


def _text_headers(record: ConsumerRecord[bytes, bytes]) -> ConsumerRecord[bytes, bytes]:
    """The record with each header value that is not UTF-8 decoded with U+FFFD."""
    headers = list(record.headers or ())
    if all(_is_utf8(v) for _, v in headers):
        return record
    text = [(k, v.decode("utf-8", "replace").encode()) for k, v in headers]
    return dataclasses.replace(record, headers=text)


# What FastStream adds to a published message (its correlation_id and content-type
# headers), with room to spare.
_PUBLISH_OVERHEAD = 1024


def _size(key: bytes | None, value: bytes | None, headers: dict[str, str]) -> int:
    """The message's size as the producer counts it against ``max_request_size``."""
    encoded = [(k, v.encode()) for k, v in headers.items()]
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, encoded))


def _omitted(record: ConsumerRecord[bytes, bytes], why: str) -> dict[str, str]:
    size = len(record.value or b"")
    return {
        "dlq_value": f"omitted ({size} bytes, {why}): read the original at "
        f"{record.topic} partition {record.partition} offset {record.offset}"
    }


def _max_request_size(broker: KafkaBroker) -> int:
    options = getattr(broker, "_connection_kwargs", None) or {}
    return int(options.get("max_request_size") or 1024 * 1024)


# errno values of a network that is down or unreachable (socket errors that are not
# ConnectionError or TimeoutError subclasses).
_NETWORK_ERRNOS = frozenset(
    {errno.ENETDOWN, errno.ENETUNREACH, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ECONNABORTED}
)
# SQLSTATE classes and codes of failures that pass: connection exceptions, transaction
# rollbacks (serialization failure, deadlock), insufficient resources, operator
# intervention (shutdown, statement timeout), system errors, a lock not available.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")
_TRANSIENT_SQLSTATES = frozenset({"55P03"})


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a recognised transient infrastructure failure, worth retrying:
    a connection refused or reset, a timeout, the database driver's OperationalError or
    InterfaceError (or a PostgreSQL error of a transient SQLSTATE), the key vault
    unreachable, Kafka unavailable, a concurrent append. Anything else is a property of
    the message (or a bug) and retrying cannot help. The explicit cause (``raise … from``)
    counts too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient(current):
            return True
        current = current.__cause__
    return False


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return True
    if isinstance(exc, (ConcurrencyError, MasterKeyMismatch)):
        # Someone appended first: a retry reloads. A master key that does not open the
        # vault's keys is the deployment's fault, not the message's.
        return True
    if isinstance(exc, KafkaError):
        return bool(exc.retriable) or type(exc).__name__ in {
            "KafkaTimeoutError",
            "KafkaUnavailableError",
        }
    if isinstance(
        exc,
        (
            sa_exc.OperationalError,
            sa_exc.InterfaceError,
            sa_exc.DisconnectionError,
            sa_exc.TimeoutError,
        ),
    ):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    return state is not None and (
        state in _TRANSIENT_SQLSTATES or state.startswith(_TRANSIENT_SQLSTATE_CLASSES)
    )


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def _describe(exc: BaseException) -> str:
    """The exception as a dead-letter reason: its type and message, kept short (a
    RecursionError or a driver's error can be long)."""
    name = type(exc).__name__
    if isinstance(exc, RecursionError):
        return f"{name}: JSON nested too deep ({exc})"
    text = str(exc)
    return f"{name}: {text[:1500]}" if text else name


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
