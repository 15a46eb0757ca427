"""The event store's value types and errors.

:class:`NewEvent` goes into an append, :class:`RecordedEvent` comes out of the store
as stored (personal fields still sealed), :class:`DecodedEvent` is one opened and
upcast; :class:`LogCursor` is a place in the commit-safe log.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .codec import CorruptEvent, metadata_of, record_of
from .envelope import Envelope
from .model import DomainEvent

__all__ = [
    "START",
    "ConcurrencyError",
    "CorruptEvent",
    "DecodedEvent",
    "EventTooLarge",
    "LogCursor",
    "Metadata",
    "NewEvent",
    "RecordedEvent",
]


class ConcurrencyError(Exception):
    """The stream is not at the expected version: someone else wrote first."""

    def __init__(self, stream_id: str, expected: int | None, actual: int | None = None) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        detail = f", it is at version {actual}" if actual is not None else ""
        super().__init__(
            f"stream {stream_id} was expected at version {expected}{detail}; "
            "reload it and try again"
        )


class EventTooLarge(Exception):
    """The event would be a Kafka message larger than the store accepts: it could never
    be published, so it is not stored (HTTP 413 at the API)."""

    def __init__(self, stream_id: str, event_type: str, size: int, limit: int) -> None:
        self.stream_id, self.event_type, self.size, self.limit = stream_id, event_type, size, limit
        super().__init__(
            f"{event_type} on stream {stream_id} would be a {size}-byte message, over the "
            f"{limit}-byte limit of a published event; record less in one request"
        )


# Kafka's default largest message (message.max.bytes, about 1 MB): the store's default.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
# What a published message carries besides its payload, key and CloudEvents headers,
# at most: the service's ce_source, FastStream's correlation_id header, the record's
# and the record batch's framing.
MESSAGE_OVERHEAD = 512


@dataclass(frozen=True, slots=True)
class Metadata:
    """Who did it and why: carried with every event and into the envelope."""

    correlation_id: str | None = None
    causation_id: str | None = None
    agency_id: str | None = None
    staff_id: str | None = None

    def as_dict(self) -> dict[str, str]:
        return metadata_of(self)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended. ``subject`` is the household id (the first event's
    is its stream's Kafka key)."""

    event: DomainEvent
    subject: str
    metadata: Metadata = Metadata()
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class LogCursor(NamedTuple):
    """A place in the log, in commit-safe (tx_id, position) order."""

    tx_id: int
    position: int


START = LogCursor(-1, 0)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: payload text with personal fields still sealed."""

    position: int
    tx_id: int
    stream_id: str
    version: int
    event_id: str
    event_type: str
    schema_version: int
    recorded_at: str
    subject: str
    metadata: str
    payload: str
    prev_hash: str
    hash: str
    # The Kafka key: the subject of the stream's first event (tables.py).
    partition_key: str

    @property
    def cursor(self) -> LogCursor:
        return LogCursor(self.tx_id, self.position)

    def record(self) -> dict[str, Any]:
        """The record its chain hash covers (see codec.py)."""
        return record_of(
            stream_id=self.stream_id,
            version=self.version,
            event_id=self.event_id,
            event_type=self.event_type,
            schema_version=self.schema_version,
            recorded_at=self.recorded_at,
            subject=self.subject,
            metadata=self.metadata,
            payload=self.payload,
        )

    def message_size(self) -> int:
        """Bytes of the Kafka message this event is published as (payload, key and
        headers, with an empty source), not counting :data:`MESSAGE_OVERHEAD`."""
        env = self.envelope("")
        headers = env.header_map() | {"correlation_id": env.effective_correlation_id}
        return (
            len(self.payload.encode())
            + len(env.key)
            + sum(len(k.encode()) + len(v.encode()) for k, v in headers.items())
        )

    def envelope(self, source: str) -> Envelope:
        meta = json.loads(self.metadata)
        return Envelope(
            id=self.event_id,
            source=source,
            event_type=self.event_type,
            schema_version=self.schema_version,
            time=self.recorded_at,
            subject=self.subject,
            stream_id=self.stream_id,
            stream_version=self.version,
            prev_hash=self.prev_hash,
            hash=self.hash,
            partition_key=self.partition_key,
            correlation_id=meta.get("correlation_id"),
            causation_id=meta.get("causation_id"),
            agency_id=meta.get("agency_id"),
            staff_id=meta.get("staff_id"),
        )


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """A recorded event opened, upcast to the latest version and validated."""

    recorded: RecordedEvent
    event: DomainEvent
    metadata: Metadata
    erased_fields: frozenset[str]
