"""kyosei_events: the event contract (catalogue, envelope, schemas) and the backbone
(event store, hash chains, personal-data sealing, outbox relay, event policies and the
idempotent consumer that runs them)."""

from . import catalogue
from .chain import BrokenLink, ChainReport
from .consumer import IdempotentConsumer, Outcome
from .crypto import KeyErased, KeyVault
from .envelope import Envelope, EnvelopeError
from .model import DomainEvent, Personal, UnknownEventType
from .model import catalogue as event_catalogue
from .policy import Policy, PolicyContext, Unprocessable, policy
from .relay import OutboxRelay
from .store import (
    START,
    ConcurrencyError,
    CorruptEvent,
    DecodedEvent,
    EventStore,
    LogCursor,
    Metadata,
    NewEvent,
    RecordedEvent,
    UnitOfWork,
)
from .topics import dead_letter_topic, events_topic

__all__ = [
    "START",
    "BrokenLink",
    "ChainReport",
    "ConcurrencyError",
    "CorruptEvent",
    "DecodedEvent",
    "DomainEvent",
    "Envelope",
    "EnvelopeError",
    "EventStore",
    "IdempotentConsumer",
    "KeyErased",
    "KeyVault",
    "LogCursor",
    "Metadata",
    "NewEvent",
    "OutboxRelay",
    "Outcome",
    "Personal",
    "Policy",
    "PolicyContext",
    "RecordedEvent",
    "UnitOfWork",
    "UnknownEventType",
    "Unprocessable",
    "catalogue",
    "dead_letter_topic",
    "event_catalogue",
    "events_topic",
    "policy",
]
