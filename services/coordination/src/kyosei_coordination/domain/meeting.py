"""A meeting about a case (支援会議, 重層的支援会議, 地域ケア会議, ケース会議): scheduled,
held with its record finalised, corrected by new events, its items re-shared.

Who reads what a meeting recorded is decided here, once (:func:`may_read_record`):
its participant agencies (the convening office included) and auditors, nobody else.
A participant of a later consented meeting reads an earlier 支援会議's items only as
they were re-shared to that meeting, item by item.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from kyosei_events.catalogue.coordination import (
    MeetingItem,
    MeetingItemsReshared,
    MeetingKind,
    MeetingRecordCorrected,
    MeetingRecorded,
    MeetingScheduled,
    Minutes,
    SupportMeetingHeld,
)
from kyosei_events.model import DomainEvent
from kyosei_platform.application import Rejected, forbidden, invalid, not_found
from kyosei_platform.identity import Identity, Role


def may_read_record(identity: Identity, participants: Collection[str]) -> bool:
    """What a meeting recorded: its participant agencies and auditors; operators never."""
    if identity.role is Role.OPERATOR:
        return False
    return identity.role is Role.AUDITOR or identity.agency_id in participants


@dataclass
class Meeting:
    meeting_id: str
    case_id: str = ""
    household_id: str | None = None
    kind: MeetingKind = MeetingKind.CONFIDENTIAL
    convening_agency: str = ""
    participants: tuple[str, ...] = ()
    member_ids: tuple[str, ...] = ()
    scheduled_for: datetime | None = None
    held_on: date | None = None
    consent_obtained: bool = False
    minutes: Minutes | None = None
    corrections: list[MeetingRecordCorrected] = field(default_factory=list)
    reshares: list[MeetingItemsReshared] = field(default_factory=list)
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def held(self) -> bool:
        # From the fact, not the record: an erased household's record reads as None.
        return self.held_on is not None

    def items(self) -> dict[str, MeetingItem]:
        """The record's items as they read now: each correction replaces its item's text."""
        current = {i.item_id: i for i in (self.minutes.items if self.minutes else [])}
        for c in self.corrections:
            if c.item_id in current:
                current[c.item_id] = current[c.item_id].model_copy(update={"text": c.text})
        return current

    def reshared_to(self, meeting_id: str) -> list[str]:
        """The ids of the items re-shared to ``meeting_id``, in the order first shared."""
        out: list[str] = []
        for r in self.reshares:
            if r.to_meeting_id == meeting_id:
                out += [i for i in r.item_ids if i not in out]
        return out

    def evolve(self, event: DomainEvent) -> None:
        match event:
            case MeetingScheduled():
                self.case_id = event.case_id
                self.household_id = event.household_id
                self.kind = event.kind
                self.convening_agency = event.convening_agency
                self.participants = tuple(event.participant_agencies)
                self.member_ids = tuple(event.member_ids)
                self.scheduled_for = event.scheduled_for
            case SupportMeetingHeld():
                self.held_on = event.held_on
                self.consent_obtained = event.consent_obtained
            case MeetingRecorded():
                self.minutes = event.minutes
            case MeetingRecordCorrected():
                self.corrections.append(event)
            case MeetingItemsReshared():
                self.reshares.append(event)
        self.version += 1


def _participant(state: Meeting, agency_id: str) -> None:
    if agency_id not in state.participants:
        raise forbidden(
            "not_a_participant",
            f"only the meeting's participant agencies may do this; {agency_id} is not one",
            "この会議の参加機関のみが行えます",
        )


def _exists(state: Meeting) -> None:
    if not state.exists:
        raise not_found("meeting", "会議", state.meeting_id)


def schedule(
    state: Meeting,
    *,
    case_id: str,
    household_id: str | None,
    kind: MeetingKind,
    convening_agency: str,
    participant_agencies: Sequence[str],
    member_ids: Sequence[str],
    scheduled_for: datetime,
    without_consent: Collection[str],
    now: datetime,
) -> list[DomainEvent]:
    """Schedule the meeting. The listed agencies are required (a meeting with no
    participants is refused); the convening agency always takes part. A kind that
    needs consent is refused while a person concerned has not consented
    (``without_consent``: who has not, for every participant agency)."""
    if state.exists:
        raise Rejected(
            "meeting_exists",
            f"meeting {state.meeting_id} is already scheduled",
            "この会議は既に登録されています",
        )
    if not set(participant_agencies) - {convening_agency}:
        raise invalid(
            "participant_agencies",
            "meeting_without_participants",
            "a meeting needs at least one participant agency besides the convening office",
            "参加機関を1つ以上指定してください（招集機関以外）",
        )
    if kind.consent_needed and without_consent:
        raise Rejected(
            "consent_required",
            f"a {kind.value} meeting needs the consent of every person concerned for every "
            f"participant agency; missing: {', '.join(sorted(without_consent))} (a 支援会議 "
            "may be held without consent)",
            f"{kind.label_ja}には対象者全員の本人同意（全参加機関分）が必要です。"
            f"未同意: {', '.join(sorted(without_consent))}（支援会議は同意なしで開催できます）",
            field="member_ids",
        )
    participants = list(dict.fromkeys([convening_agency, *participant_agencies]))
    return [
        MeetingScheduled(
            meeting_id=state.meeting_id,
            case_id=case_id,
            household_id=household_id,
            kind=kind,
            convening_agency=convening_agency,
            participant_agencies=participants,
            member_ids=list(dict.fromkeys(member_ids)),
            scheduled_for=scheduled_for,
            scheduled_at=now,
        )
    ]


def hold(
    state: Meeting, *, agency_id: str, held_on: date, minutes: Minutes, now: datetime
) -> list[DomainEvent]:
    """Finalise the record: SupportMeetingHeld (the fact, published) and
    MeetingRecorded (the record, store-only). A held meeting's record is final."""
    _exists(state)
    _participant(state, agency_id)
    if state.held:
        raise Rejected(
            "meeting_record_final",
            f"meeting {state.meeting_id} is held and its record final; send a correction",
            "この会議の記録は確定済みです。訂正として登録してください",
        )
    for i, attendee in enumerate(minutes.attendees):
        if attendee.agency_id not in state.participants:
            raise invalid(
                f"minutes.attendees.{i}.agency_id",
                "attendee_not_participant",
                f"{attendee.agency_id} is not a participant agency of this meeting",
                "出席者の機関が参加機関に含まれていません",
            )
    seen: set[str] = set()
    for i, item in enumerate(minutes.items):
        if item.item_id in seen:
            raise invalid(
                f"minutes.items.{i}.item_id",
                "duplicate_item",
                f"item id {item.item_id} appears twice",
                "項目IDが重複しています",
            )
        seen.add(item.item_id)
    return [
        SupportMeetingHeld(
            meeting_id=state.meeting_id,
            case_id=state.case_id,
            household_id=state.household_id,
            kind=state.kind,
            held_on=held_on,
            convening_agency=state.convening_agency,
            participant_agencies=list(state.participants),
            consent_obtained=state.kind.consent_needed,
        ),
        MeetingRecorded(
            meeting_id=state.meeting_id, case_id=state.case_id, minutes=minutes, recorded_at=now
        ),
    ]


def correct(
    state: Meeting,
    *,
    agency_id: str,
    correction_id: str,
    item_id: str,
    text: str,
    reason: str,
    now: datetime,
) -> list[DomainEvent]:
    """A correction of one item of the finalised record, referring to it."""
    _exists(state)
    _participant(state, agency_id)
    if not state.held:
        raise Rejected(
            "meeting_not_held",
            f"meeting {state.meeting_id} has no finalised record to correct yet",
            "この会議の記録はまだ確定していません",
        )
    if item_id not in state.items():
        raise invalid(
            "item_id",
            "unknown_item",
            f"the record has no item {item_id}",
            "該当する項目がありません",
        )
    return [
        MeetingRecordCorrected(
            correction_id=correction_id,
            meeting_id=state.meeting_id,
            item_id=item_id,
            text=text,
            reason=reason,
            corrected_by=agency_id,
            corrected_at=now,
        )
    ]


def reshare(
    source: Meeting,
    target: Meeting,
    *,
    agency_id: str,
    reshare_id: str,
    item_ids: Sequence[str],
    now: datetime,
) -> list[DomainEvent]:
    """Re-share items of a held 支援会議 to a later consented meeting of the same case,
    by one of its participants, item by item. Items already re-shared there are not
    shared again (nothing is recorded when all were)."""
    _exists(source)
    _participant(source, agency_id)
    if source.kind is not MeetingKind.CONFIDENTIAL or not source.held:
        raise Rejected(
            "not_a_held_support_meeting",
            "only the record of a held 支援会議 is re-shared",
            "再共有できるのは開催済みの支援会議の記録のみです",
        )
    if not target.exists or target.case_id != source.case_id:
        raise invalid(
            "to_meeting_id",
            "unknown_meeting",
            f"no meeting {target.meeting_id} of case {source.case_id}",
            "同じケースの該当する会議がありません",
        )
    if not target.kind.consent_needed:
        raise invalid(
            "to_meeting_id",
            "target_without_consent",
            "items are re-shared only to a meeting held with consent (重層的支援会議 or a "
            "case conference)",
            "再共有先は本人同意のある会議（重層的支援会議など）に限られます",
        )
    if not item_ids:
        raise invalid(
            "item_ids",
            "no_items",
            "name at least one item to re-share",
            "再共有する項目を指定してください",
        )
    items = source.items()
    unknown = [i for i in item_ids if i not in items]
    if unknown:
        raise invalid(
            "item_ids",
            "unknown_item",
            f"the record has no item {', '.join(unknown)}",
            "該当する項目がありません",
        )
    already = set(source.reshared_to(target.meeting_id))
    new = [i for i in dict.fromkeys(item_ids) if i not in already]
    if not new:
        return []
    return [
        MeetingItemsReshared(
            reshare_id=reshare_id,
            meeting_id=source.meeting_id,
            to_meeting_id=target.meeting_id,
            item_ids=new,
            reshared_by=agency_id,
            reshared_at=now,
        )
    ]
