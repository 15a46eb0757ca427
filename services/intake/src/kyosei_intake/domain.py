"""The consultation aggregate: pure decisions and state, no I/O.

A consultation is never refused (断らない相談): any window records any concern.
Its outcome is decided later (handled, referred, or escalated to 多機関協働); a
complex consultation can be escalated at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.intake import CaseEscalated, Channel, ConsultationReceived, Window
from kyosei_events.model import DomainEvent


class Status(StrEnum):
    RECEIVED = "received"
    ESCALATED = "escalated"


class AlreadyEscalated(Exception):
    """The consultation was escalated to 多機関協働 before."""


@dataclass
class Consultation:
    consultation_id: str
    agency_id: str = ""
    household_id: str | None = None
    window: Window | None = None
    channel: Channel | None = None
    concerns: list[Concern] = field(default_factory=list)
    summary: str | None = None
    caller_name: str | None = None
    complex: bool = False
    received_at: datetime | None = None
    status: Status = Status.RECEIVED
    escalation_reason: str | None = None
    version: int = 0

    def evolve(self, event: DomainEvent) -> None:
        if isinstance(event, ConsultationReceived):
            self.agency_id = event.agency_id
            self.household_id = event.household_id
            self.window, self.channel = event.window, event.channel
            self.concerns = list(event.concerns)
            self.summary, self.caller_name = event.summary, event.caller_name
            self.complex, self.received_at = event.complex, event.received_at
        elif isinstance(event, CaseEscalated):
            self.status = Status.ESCALATED
            self.escalation_reason = event.reason
        self.version += 1


def receive(
    received: ConsultationReceived, escalation_reason: str | None, now: datetime
) -> list[DomainEvent]:
    """Record a consultation; a complex one is escalated in the same step."""
    events: list[DomainEvent] = [received]
    if received.complex:
        events.append(
            CaseEscalated(
                consultation_id=received.consultation_id,
                household_id=received.household_id,
                agency_id=received.agency_id,
                concerns=received.concerns,
                reason=escalation_reason or received.summary,
                escalated_at=now,
            )
        )
    return events


def escalate(state: Consultation, reason: str, now: datetime) -> CaseEscalated:
    if state.status is Status.ESCALATED:
        raise AlreadyEscalated(state.consultation_id)
    return CaseEscalated(
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        agency_id=state.agency_id,
        concerns=state.concerns,
        reason=reason,
        escalated_at=now,
    )
