"""Idempotent consumers with a dead-letter topic.

A consumer records each message id it has processed in the same transaction as the
effect (its own appends and read-model writes), so a redelivered message has no
second effect. A message that can never be processed (bad envelope, unknown or
invalid payload, a hash that does not match, or a handler that raises
:class:`Unprocessable`) is published to the consumer's dead-letter topic with the
reason, and the consumer goes on. Anything else is taken as transient (database or
broker down): the message is retried with backoff and, after ``max_attempts``,
dead-lettered with the last error so that it is never silently dropped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog
from prometheus_client import Counter
from pydantic import ValidationError

from .codec import decode_payload
from .envelope import Envelope, EnvelopeError
from .model import DomainEvent, UnknownEventType
from .records import CorruptEvent, Metadata
from .store import EventStore, UnitOfWork
from .topics import dead_letter_topic

log = structlog.get_logger(__name__)

CONSUMED = Counter(
    "kyosei_consumer_messages_total",
    "Messages seen by consumers, by outcome",
    ["consumer", "outcome"],
)


class Unprocessable(Exception):
    """Raised by a handler for a message that can never be processed (goes to the DLQ)."""


class Outcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Delivery:
    """A consumed event: its envelope, the decoded event and where it came from."""

    envelope: Envelope
    event: DomainEvent
    topic: str
    partition: int
    offset: int

    def caused_metadata(
        self, agency_id: str | None = None, staff_id: str | None = None
    ) -> Metadata:
        """Metadata for events this delivery causes: same correlation, caused by it."""
        return Metadata(
            correlation_id=self.envelope.correlation_id or self.envelope.id,
            causation_id=self.envelope.id,
            agency_id=agency_id or self.envelope.agency_id,
            staff_id=staff_id,
        )


Handler = Callable[[Delivery, UnitOfWork], Awaitable[None]]


class IdempotentConsumer:
    def __init__(
        self,
        name: str,
        store: EventStore,
        handlers: Mapping[str, Handler],
        producer: Any,
        *,
        max_attempts: int = 10,
        base_backoff: float = 0.5,
    ) -> None:
        self.name = name
        self.store = store
        self.handlers = dict(handlers)
        self.producer = producer
        self.dead_letter_topic = dead_letter_topic(name)
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self._attempts: dict[str, int] = {}

    async def handle(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        headers: Iterable[tuple[str, bytes]],
        key: bytes | None,
        value: bytes | None,
    ) -> Outcome:
        headers = list(headers)
        where = {"topic": topic, "partition": partition, "offset": offset}
        try:
            env = Envelope.from_headers(headers)
        except EnvelopeError as exc:
            return await self._dead_letter(where, headers, key, value, f"bad envelope: {exc}")
        handler = self.handlers.get(env.event_type)
        if handler is None:
            CONSUMED.labels(self.name, Outcome.IGNORED).inc()
            return Outcome.IGNORED
        try:
            text = (value or b"").decode("utf-8")
            self._check_hash(env, text)
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
            return await self._dead_letter(
                where,
                headers,
                key,
                value,
                f"{type(exc).__name__}: {exc}",
                env.id if authentic else None,
            )
        delivery = Delivery(env, event, topic, partition, offset)
        try:
            async with self.store.unit_of_work() as uow:
                if not await uow.mark_processed(self.name, env.id):
                    CONSUMED.labels(self.name, Outcome.DUPLICATE).inc()
                    return Outcome.DUPLICATE
                await handler(delivery, uow)
        except Unprocessable as exc:
            return await self._dead_letter(where, headers, key, value, str(exc), env.id)
        except Exception as exc:
            attempts = self._attempts.get(env.id, 0) + 1
            if attempts >= self.max_attempts:
                self._attempts.pop(env.id, None)
                return await self._dead_letter(
                    where,
                    headers,
                    key,
                    value,
                    f"failed {attempts} times, last: {type(exc).__name__}: {exc}",
                    env.id,
                )
            self._attempts[env.id] = attempts
            log.warning(
                "consumer_retry",
                consumer=self.name,
                event_id=env.id,
                attempt=attempts,
                exc_info=True,
            )
            await asyncio.sleep(min(self.base_backoff * 2 ** (attempts - 1), 30.0))
            raise
        self._attempts.pop(env.id, None)
        CONSUMED.labels(self.name, Outcome.PROCESSED).inc()
        return Outcome.PROCESSED

    @staticmethod
    def _check_hash(env: Envelope, payload: str) -> None:
        # The envelope carries the chain link: a payload altered on the way is refused.
        if env.link_hash(payload) != env.hash:
            raise _HashMismatch("payload or headers do not match ce_hash")

    async def _dead_letter(
        self,
        where: dict[str, Any],
        headers: list[tuple[str, bytes]],
        key: bytes | None,
        value: bytes | None,
        reason: str,
        event_id: str | None = None,
    ) -> Outcome:
        extra = [
            ("dlq_reason", reason[:2000].encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_topic", str(where["topic"]).encode()),
            ("dlq_partition", str(where["partition"]).encode()),
            ("dlq_offset", str(where["offset"]).encode()),
            ("dlq_time", datetime.now(UTC).isoformat().encode()),
        ]
        kept = [(k, v) for k, v in headers if not k.startswith("dlq_")]
        await self.producer.send_and_wait(
            self.dead_letter_topic, value=value, key=key, headers=kept + extra
        )
        if event_id is not None:
            # So that a redelivery of the same message is not dead-lettered twice.
            async with self.store.unit_of_work() as uow:
                await uow.mark_processed(self.name, event_id)
        log.error("dead_lettered", consumer=self.name, reason=reason, **where)
        CONSUMED.labels(self.name, Outcome.DEAD_LETTERED).inc()
        return Outcome.DEAD_LETTERED


class _HashMismatch(ValueError):
    pass
