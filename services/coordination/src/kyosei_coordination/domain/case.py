"""The coordination case (多機関協働のケース): one open case per household, linked to
every consultation behind it.

A case is opened when intake escalates a consultation of a household that has no
open case, or directly by a coordinator. A later escalation of the same household
(any of its records, merged or not) adds that consultation to the open case. A case
whose household was not known when it opened learns it later; if that household
already has an open case then, the later case is merged into the open one
(CaseMergedInto on it, ConsultationAddedToCase on the open one for each of its
consultations) and is no longer open."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.coordination import (
    CaseLinkedToHousehold,
    CaseMainAgencyChanged,
    CaseMembersChanged,
    CaseMergedInto,
    CaseOpened,
    ConsultationAddedToCase,
)
from kyosei_events.model import DomainEvent
from kyosei_platform.application import Rejected, wrong_state

OPEN = "open"
MERGED = "merged"


@dataclass
class Case:
    case_id: str
    household_id: str | None = None
    consultation_id: str | None = None  # the one it was opened for (None: opened directly)
    consultation_ids: list[str] = field(default_factory=list)
    escalated_by: str | None = None
    opened_by: str | None = None
    main_agency: str | None = None
    member_ids: list[str] = field(default_factory=list)
    concerns: list[Concern] = field(default_factory=list)
    opened_at: datetime | None = None
    status: str = OPEN
    merged_into: str | None = None
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def is_open(self) -> bool:
        return self.exists and self.status == OPEN

    def concerns_agency(self, agency_id: str) -> bool:
        """Whether ``agency_id`` escalated a consultation of it or coordinates it."""
        return agency_id in (self.escalated_by, self.main_agency)

    def evolve(self, event: DomainEvent) -> None:
        match event:
            case CaseOpened():
                self.household_id = event.household_id
                self.consultation_id = event.consultation_id
                self.consultation_ids = [event.consultation_id] if event.consultation_id else []
                self.escalated_by = event.escalated_by
                self.opened_by = event.opened_by
                self.main_agency = event.main_agency or event.escalated_by
                self.member_ids = list(event.member_ids)
                self.concerns = list(event.concerns)
                self.opened_at = event.opened_at
            case CaseLinkedToHousehold():
                self.household_id = event.household_id
            case ConsultationAddedToCase():
                if event.consultation_id not in self.consultation_ids:
                    self.consultation_ids.append(event.consultation_id)
                self.concerns += [c for c in event.concerns if c not in self.concerns]
            case CaseMergedInto():
                self.status = MERGED
                self.merged_into = event.into_case_id
            case CaseMainAgencyChanged():
                self.main_agency = event.main_agency
            case CaseMembersChanged():
                self.member_ids = list(event.member_ids)
        self.version += 1


def open_case(
    state: Case,
    *,
    household_id: str | None,
    consultation_id: str | None,
    escalated_by: str | None,
    opened_by: str | None = None,
    main_agency: str,
    member_ids: list[str] | None = None,
    concerns: list[Concern],
    reason: str | None = None,
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
            opened_by=opened_by,
            main_agency=main_agency,
            member_ids=member_ids or [],
            concerns=concerns,
            reason=reason,
            opened_at=now,
        )
    ]


def add_consultation(
    state: Case,
    *,
    consultation_id: str,
    household_id: str | None,
    escalated_by: str,
    concerns: list[Concern],
    now: datetime,
) -> list[DomainEvent]:
    """A later consultation of the household joins its open case (nothing when it is
    already linked: a redelivery)."""
    if consultation_id in state.consultation_ids:
        return []
    return [
        ConsultationAddedToCase(
            case_id=state.case_id,
            consultation_id=consultation_id,
            household_id=household_id,
            escalated_by=escalated_by,
            concerns=concerns,
            added_at=now,
        )
    ]


def link_household(state: Case, *, household_id: str, now: datetime) -> list[DomainEvent]:
    """The case learns its household when the consultation behind it is linked to one.

    Nothing is recorded for a consultation that has no case (it was not escalated), nor
    when the case already knows a household (intake links a consultation only once;
    a later merge of households is followed through the household directory)."""
    if not state.exists or state.household_id is not None or state.consultation_id is None:
        return []
    return [
        CaseLinkedToHousehold(
            case_id=state.case_id,
            consultation_id=state.consultation_id,
            household_id=household_id,
            linked_at=now,
        )
    ]


def merge_into(
    state: Case, open_case: Case, *, household_id: str, now: datetime
) -> tuple[list[DomainEvent], list[DomainEvent]]:
    """The later case ``state`` goes into the household's open case: what each records."""
    if not state.is_open or not open_case.is_open or state.case_id == open_case.case_id:
        return [], []
    merged: list[DomainEvent] = [
        CaseMergedInto(
            case_id=state.case_id,
            into_case_id=open_case.case_id,
            household_id=household_id,
            merged_at=now,
        )
    ]
    added: list[DomainEvent] = []
    for consultation_id in state.consultation_ids:
        if consultation_id not in open_case.consultation_ids:
            added.append(
                ConsultationAddedToCase(
                    case_id=open_case.case_id,
                    consultation_id=consultation_id,
                    household_id=household_id,
                    escalated_by=state.escalated_by or state.main_agency or "",
                    concerns=state.concerns,
                    added_at=now,
                )
            )
    return merged, added


def _must_be_open(state: Case) -> None:
    if not state.is_open:
        raise wrong_state(
            "case_not_open",
            f"case {state.case_id} was merged into {state.merged_into}",
            f"ケース{state.case_id}は{state.merged_into}に統合されています",
            "change the case it was merged into",
            "統合先のケースを変更してください",
        )


def change_main_agency(
    state: Case, *, main_agency: str, reason: str | None, now: datetime
) -> list[DomainEvent]:
    """主担当機関変更 (nothing when it is already the main agency)."""
    _must_be_open(state)
    if main_agency == state.main_agency:
        return []
    return [
        CaseMainAgencyChanged(
            case_id=state.case_id,
            main_agency=main_agency,
            previous_agency=state.main_agency or "",
            reason=reason,
            changed_at=now,
        )
    ]


def change_members(state: Case, *, member_ids: list[str], now: datetime) -> list[DomainEvent]:
    """対象者変更 (nothing when they are the same members)."""
    _must_be_open(state)
    if sorted(member_ids) == sorted(state.member_ids):
        return []
    return [CaseMembersChanged(case_id=state.case_id, member_ids=member_ids, changed_at=now)]


def members_outside(household_member_ids: set[str], member_ids: list[str]) -> Rejected | None:
    """Refusal when a named member is not of the household (422 naming member_ids)."""
    outside = [m for m in member_ids if m not in household_member_ids]
    if not outside:
        return None
    return Rejected(
        "member_not_in_household",
        f"not members of the case's household: {', '.join(outside)}",
        f"世帯の構成員ではありません: {', '.join(outside)}",
        status=422,
        field="member_ids",
    )
