"""The coordination case (多機関協働のケース): one open case per household, linked to
every consultation behind it.

A case is opened when intake escalates a consultation of a household that has no
open case, or directly by a coordinator. A later escalation of the same household
(any of its records, merged or not) adds that consultation to the open case. A case
whose household was not known when it opened learns it later; if that household
already has an open case then, the later case is merged into the open one
(CaseMergedInto on it, ConsultationAddedToCase on the open one for each of its
consultations) and is no longer open.

Life changes of a member (intake's death, departure, facility stay) flag the case for
review (CaseReviewFlagged; withdrawn when intake retracts the change). The support of
some members ends (MemberSupportEnded) while the case goes on for the others; the case
itself is closed (CaseClosed, status ``closed``) with a reason, and reopened
(CaseReopened). A closed case is no longer its household's open case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.coordination import (
    CaseClosed,
    CaseLinkedToHousehold,
    CaseMainAgencyChanged,
    CaseMembersChanged,
    CaseMergedInto,
    CaseOpened,
    CaseReopened,
    CaseReviewFlagged,
    CaseReviewFlagWithdrawn,
    ClosingReason,
    ConsultationAddedToCase,
    MemberSupportEnded,
    ReviewFlagReason,
)
from kyosei_events.model import DomainEvent
from kyosei_households import Household
from kyosei_platform.application import Rejected, invalid, wrong_state

OPEN = "open"
MERGED = "merged"
CLOSED = "closed"


@dataclass(frozen=True)
class Ended:
    """本人分の終結: one member's support ended on the case."""

    reason: ClosingReason
    ended_on: date


@dataclass(frozen=True)
class Flag:
    """A review flag raised by one life change (intake's change id)."""

    member_id: str
    reason: ReviewFlagReason
    occurred_on: date
    withdrawn: bool = False


@dataclass(frozen=True)
class Closing:
    reason: ClosingReason
    handed_to: str | None
    closed_on: date


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
    closed: Closing | None = None
    ended: dict[str, Ended] = field(default_factory=dict)
    flags: dict[str, Flag] = field(default_factory=dict)  # by intake's change id
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
            case CaseReviewFlagged():
                self.flags[event.change_id] = Flag(event.member_id, event.reason, event.occurred_on)
            case CaseReviewFlagWithdrawn():
                if (flag := self.flags.get(event.change_id)) is not None:
                    self.flags[event.change_id] = Flag(
                        flag.member_id, flag.reason, flag.occurred_on, withdrawn=True
                    )
            case MemberSupportEnded():
                for member_id in event.member_ids:
                    self.ended[member_id] = Ended(event.reason, event.ended_on)
            case CaseClosed():
                self.status = CLOSED
                self.closed = Closing(event.reason, event.handed_to, event.closed_on)
            case CaseReopened():
                self.status = OPEN
                self.closed = None
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


def must_be_open(state: Case) -> None:
    """409 case_not_open for a closed or merged case: what each state calls for."""
    if state.status == CLOSED:
        raise wrong_state(
            "case_not_open",
            f"case {state.case_id} is closed",
            f"ケース{state.case_id}は終結しています",
            "reopen it first",
            "先に再開してください",
        )
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
    must_be_open(state)
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
    must_be_open(state)
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


# -- life changes, closing and reopening ------------------------------------------------

# Relationships are to the head of the household (続柄): whose parent each one is.
_PARENT_OF = {"head": {"child"}, "spouse": {"child"}, "parent": {"head", "sibling"}}

# intake's life-change kinds (kyosei_households.LIFE_EVENTS) that flag a case.
_FLAGGED_KINDS = {
    "departed": ReviewFlagReason.MEMBER_DEPARTED,
    "facility_started": ReviewFlagReason.FACILITY_STAY,
}


def concerned_people(state: Case, household: Household) -> set[str]:
    """The people the case concerns now (its members, or the whole household), each by
    the id it is known by, less those whose support ended."""
    named = state.member_ids or list(household.member_ids)
    ended = {household.person(m) for m in state.ended}
    return {household.person(m) for m in named} - ended


def _relationship(household: Household, person: str) -> str:
    for m in household.members:
        if household.person(m.member_id) == person:
            return m.relationship
    return "unknown"


def review_reason(
    state: Case, household: Household, member_id: str, kind: str
) -> ReviewFlagReason | None:
    """Why a life change of ``member_id`` flags the case (None: it does not concern
    the case). A death is 親亡き後 (``parent_died``) when the deceased was a parent of
    another living member the case concerns; such a death flags a case about the
    child alone too."""
    person = household.person(member_id)
    concerned = concerned_people(state, household)
    if kind == "died":
        children = _PARENT_OF.get(_relationship(household, person), set())
        if any(
            other != person
            and _relationship(household, other) in children
            and not household.status(other).deceased
            for other in concerned
        ):
            return ReviewFlagReason.PARENT_DIED
        return ReviewFlagReason.MEMBER_DIED if person in concerned else None
    reason = _FLAGGED_KINDS.get(kind)
    return reason if reason is not None and person in concerned else None


def flag_review(
    state: Case,
    *,
    change_id: str,
    member_id: str,
    reason: ReviewFlagReason,
    occurred_on: date,
    now: datetime,
) -> list[DomainEvent]:
    """見直しフラグ on an open case; nothing for a change already flagged (keyed on
    intake's change id, so a redelivery records nothing)."""
    if not state.is_open or change_id in state.flags:
        return []
    return [
        CaseReviewFlagged(
            case_id=state.case_id,
            household_id=state.household_id,
            member_id=member_id,
            change_id=change_id,
            reason=reason,
            occurred_on=occurred_on,
            flagged_at=now,
        )
    ]


def withdraw_flag(state: Case, *, change_id: str, now: datetime) -> list[DomainEvent]:
    """見直しフラグ取消: the change behind the flag was retracted (nothing when there is
    no such flag, or it is withdrawn already)."""
    flag = state.flags.get(change_id)
    if flag is None or flag.withdrawn:
        return []
    return [CaseReviewFlagWithdrawn(case_id=state.case_id, change_id=change_id, withdrawn_at=now)]


def _handed_to(reason: ClosingReason, handed_to: str | None) -> None:
    if reason.hands_over and handed_to is None:
        raise invalid(
            "handed_to",
            "handed_to_required",
            f"reason {reason.value} needs handed_to: the agency it is handed to",
            f"理由「{reason.label_ja}」には引継ぎ先（handed_to）が必要です",
        )
    if not reason.hands_over and handed_to is not None:
        raise invalid(
            "handed_to",
            "handed_to_not_allowed",
            f"reason {reason.value} hands nothing over: leave handed_to out",
            f"理由「{reason.label_ja}」では引継ぎ先（handed_to）は指定できません",
        )


def _not_future(name: str, on: date, today: date) -> None:
    if on > today:
        raise invalid(
            name,
            "date_in_future",
            f"{name} {on.isoformat()} is in the future (today is {today.isoformat()})",
            f"{name}（{on.isoformat()}）が未来の日付です（本日は{today.isoformat()}）",
        )


def end_member_support(
    state: Case,
    household: Household | None,
    *,
    member_ids: list[str],
    reason: ClosingReason,
    handed_to: str | None,
    note: str | None,
    ended_on: date,
    today: date,
    ended_by: str,
    now: datetime,
) -> list[DomainEvent]:
    """本人分の終結: the members must be ones the case concerns (422 member_ids), not
    ended already (409), and someone must remain (else close the case: 422)."""
    must_be_open(state)
    _handed_to(reason, handed_to)
    _not_future("ended_on", ended_on, today)
    named = state.member_ids or (sorted(household.member_ids) if household else [])
    outside = [m for m in member_ids if m not in named]
    if outside:
        raise Rejected(
            "member_not_concerned",
            f"the case does not concern: {', '.join(outside)}",
            f"このケースの対象者ではありません: {', '.join(outside)}",
            status=422,
            field="member_ids",
        )
    done = [m for m in member_ids if m in state.ended]
    if done:
        raise wrong_state(
            "member_support_already_ended",
            f"the support of {', '.join(done)} has already ended on case {state.case_id}",
            f"{', '.join(done)}の支援はこのケースで終結済みです",
            "nothing more to do for them",
            "対応は不要です",
        )
    person = household.person if household is not None else (lambda m: m)
    remaining = {person(m) for m in named if m not in state.ended} - {person(m) for m in member_ids}
    if not remaining:
        raise Rejected(
            "last_members",
            "these are the last members the case concerns: close the case instead "
            f"(POST /cases/{state.case_id}/closing)",
            "ケースの対象者が残らなくなります。ケース全体を終結してください",
            status=422,
            field="member_ids",
        )
    return [
        MemberSupportEnded(
            case_id=state.case_id,
            household_id=state.household_id,
            member_ids=member_ids,
            reason=reason,
            handed_to=handed_to,
            note=note,
            ended_on=ended_on,
            ended_by=ended_by,
            ended_at=now,
        )
    ]


def close(
    state: Case,
    *,
    reason: ClosingReason,
    handed_to: str | None,
    note: str | None,
    closed_on: date,
    today: date,
    closed_by: str,
    now: datetime,
) -> list[DomainEvent]:
    """終結: an open case, with the reason (and to whom, when it is handed over)."""
    if state.status == CLOSED:
        raise wrong_state(
            "case_already_closed",
            f"case {state.case_id} is already closed",
            f"ケース{state.case_id}は終結済みです",
            "reopen it first if support resumes",
            "支援を再開する場合は先に再開してください",
        )
    must_be_open(state)
    _handed_to(reason, handed_to)
    _not_future("closed_on", closed_on, today)
    return [
        CaseClosed(
            case_id=state.case_id,
            household_id=state.household_id,
            reason=reason,
            handed_to=handed_to,
            note=note,
            closed_on=closed_on,
            closed_by=closed_by,
            closed_at=now,
        )
    ]


def reopen(state: Case, *, reason: str, reopened_by: str, now: datetime) -> list[DomainEvent]:
    """再開: only a closed case (409 case_not_closed)."""
    if state.status != CLOSED:
        raise wrong_state(
            "case_not_closed",
            f"case {state.case_id} is not closed (it is {state.status})",
            f"ケース{state.case_id}は終結していません",
            "nothing to reopen",
            "再開の必要はありません",
        )
    return [
        CaseReopened(
            case_id=state.case_id,
            household_id=state.household_id,
            reason=reason,
            reopened_by=reopened_by,
            reopened_at=now,
        )
    ]
