"""The coordination case (多機関協働のケース): opened when intake escalates a
consultation, one per escalated consultation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.coordination import CaseLinkedToHousehold, CaseOpened
from kyosei_events.model import DomainEvent


@dataclass
class Case:
    case_id: str
    household_id: str | None = None
    consultation_id: str = ""
    escalated_by: str = ""
    concerns: list[Concern] = field(default_factory=list)
    opened_at: datetime | None = None
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    def evolve(self, event: DomainEvent) -> None:
        match event:
            case CaseOpened():
                self.household_id = event.household_id
                self.consultation_id = event.consultation_id
                self.escalated_by = event.escalated_by
                self.concerns = list(event.concerns)
                self.opened_at = event.opened_at
            case CaseLinkedToHousehold():
                self.household_id = event.household_id
        self.version += 1


def open_case(
    state: Case,
    *,
    household_id: str | None,
    consultation_id: str,
    escalated_by: str,
    concerns: list[Concern],
    now: datetime,
) -> list[DomainEvent]:
    """Open the case; a case that is already open takes nothing more (a second
    escalation of the same consultation)."""
    if state.exists:
        return []
    return [
        CaseOpened(
            case_id=state.case_id,
            household_id=household_id,
            consultation_id=consultation_id,
            escalated_by=escalated_by,
            concerns=concerns,
            opened_at=now,
        )
    ]


def link_household(state: Case, *, household_id: str, now: datetime) -> list[DomainEvent]:
    """The case learns its household when the consultation behind it is linked to one.

    Nothing is recorded for a consultation that has no case (it was not escalated), nor
    when the case already knows a household (intake links a consultation only once;
    a later merge of households is followed through the household directory)."""
    if not state.exists or state.household_id is not None:
        return []
    return [
        CaseLinkedToHousehold(
            case_id=state.case_id,
            consultation_id=state.consultation_id,
            household_id=household_id,
            linked_at=now,
        )
    ]
