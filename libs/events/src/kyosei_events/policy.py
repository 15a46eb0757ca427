"""Event policies: a typed function per consumed event type (declaration only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .consumer import Unprocessable
from .envelope import Envelope
from .model import DomainEvent
from .records import Metadata
from .store import UnitOfWork

E = TypeVar("E", bound=DomainEvent)


@dataclass(frozen=True)
class PolicyContext:
    uow: UnitOfWork
    envelope: Envelope

    def caused_metadata(
        self, agency_id: str | None = None, staff_id: str | None = None
    ) -> Metadata:
        return Metadata(
            correlation_id=self.envelope.correlation_id or self.envelope.id,
            causation_id=self.envelope.id,
            agency_id=agency_id or self.envelope.agency_id,
            staff_id=staff_id,
        )


@dataclass(frozen=True)
class Policy(Generic[E]):
    event_type: type[E]
    handler: Callable[[E, PolicyContext], Awaitable[None]]

    @property
    def name(self) -> str:
        return self.handler.__name__


def policy(
    event_type: type[E],
) -> Callable[[Callable[[E, PolicyContext], Awaitable[None]]], Policy[E]]:
    def wrap(fn: Callable[[E, PolicyContext], Awaitable[None]]) -> Policy[E]:
        return Policy(event_type, fn)

    return wrap


__all__ = ["Any", "Policy", "PolicyContext", "Unprocessable", "policy"]
