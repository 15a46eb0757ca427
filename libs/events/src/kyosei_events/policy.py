"""Event policies: what a service does when another service's event arrives.

A policy is a plain async function of the typed event and a :class:`PolicyContext`,
declared with :func:`policy`::

    @policy(CaseEscalated)
    async def open_case(event: CaseEscalated, ctx: PolicyContext) -> None:
        ...  # append to ctx.uow, with ctx.caused_metadata()

Declaring one needs no Kafka: the platform subscribes a service to the topics its
policies need, and the idempotent consumer (``kyosei_events.consumer``) decodes each
message, runs the one policy for its type in a unit of work that also records the
message as processed, retries transient failures and dead-letters the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .envelope import Envelope
from .model import DomainEvent
from .records import Metadata
from .store import UnitOfWork

E = TypeVar("E", bound=DomainEvent)


class Unprocessable(Exception):
    """Raised by a policy for a message that can never be processed (goes to the DLQ)."""


@dataclass(frozen=True)
class PolicyContext:
    """What a policy gets besides its event: the transaction it runs in and where the
    event came from."""

    uow: UnitOfWork
    envelope: Envelope

    def caused_metadata(
        self, agency_id: str | None = None, staff_id: str | None = None
    ) -> Metadata:
        """Metadata for events this event causes: same correlation, caused by it."""
        return Metadata(
            correlation_id=self.envelope.effective_correlation_id,
            causation_id=self.envelope.id,
            agency_id=agency_id or self.envelope.agency_id,
            staff_id=staff_id,
        )


@dataclass(frozen=True)
class Policy(Generic[E]):
    """The handler a service runs for each event of ``event_type`` it consumes."""

    event_type: type[E]
    handler: Callable[[E, PolicyContext], Awaitable[None]]

    @property
    def name(self) -> str:
        return self.handler.__name__

    async def __call__(self, event: E, ctx: PolicyContext) -> None:
        """Run the handler directly (as a test does, with a unit of work of its own)."""
        await self.handler(event, ctx)


def policy(
    event_type: type[E],
) -> Callable[[Callable[[E, PolicyContext], Awaitable[None]]], Policy[E]]:
    """Declare a policy::

    @policy(CaseEscalated)
    async def open_case(event: CaseEscalated, ctx: PolicyContext) -> None: ...
    """

    def declare(handler: Callable[[E, PolicyContext], Awaitable[None]]) -> Policy[E]:
        return Policy(event_type, handler)

    return declare


def by_event_type(policies: Iterable[Policy[Any]]) -> Mapping[str, Policy[Any]]:
    """The policies keyed by the event type they handle; at most one per type."""
    found: dict[str, Policy[Any]] = {}
    for p in policies:
        name = p.event_type.event_type
        if name in found:
            raise ValueError(
                f"two policies for {name}: {found[name].name} and {p.name}; "
                "a service has at most one policy per event type"
            )
        found[name] = p
    return found
