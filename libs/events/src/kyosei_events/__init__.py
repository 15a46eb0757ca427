"""kyosei_events: the event contract (catalogue, envelope, schemas) and the backbone
(event store, hash chains, personal-data sealing, outbox relay, event policies and the
idempotent consumer that runs them)."""

from . import catalogue
from .consumer import IdempotentConsumer, Outcome
from .crypto import KeyErased, KeyVault, SealBroken
from .envelope import Envelope, EnvelopeError
from .model import DomainEvent, Personal, UnknownEventType
from .model import catalogue as event_catalogue
from .policy import Policy, PolicyContext, Unprocessable, policy
from .records import (
    START,
    ConcurrencyError,
    CorruptEvent,
    DecodedEvent,
    EventTooLarge,
    LogCursor,
    Metadata,
    NewEvent,
    RecordedEvent,
)
from .relay import OutboxRelay
from .store import EventStore, UnitOfWork
from .topics import consumer_group, dead_letter_topic, events_topic
from .verification import BrokenLink, ChainReport
from .wakeup import Wakeup

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
    "EventTooLarge",
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
    "SealBroken",
    "UnitOfWork",
    "UnknownEventType",
    "Unprocessable",
    "Wakeup",
    "catalogue",
    "consumer_group",
    "dead_letter_topic",
    "event_catalogue",
    "events_topic",
    "policy",
]
