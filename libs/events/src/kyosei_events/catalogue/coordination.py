"""Events of services/coordination: 多機関協働. Topic: kyosei.coordination.events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..labels import LabelledEnum
from ..model import DomainEvent, Personal, event, upcaster
from .common import AgencyId, Concern, Id, PersonalText, same_payload_wider_vocabulary


class MeetingKind(LabelledEnum):
    """The kinds of meeting about a case, each with its own rule (see ``consent_needed``
    and ``confidentiality``). In every kind, what the meeting recorded (attendees,
    information shared, concerns agreed, next steps, decisions) is readable only by its
    participant agencies and auditors, and never travels on a topic."""

    MULTI_LAYERED = ("multi_layered", "重層的支援会議")
    CONFIDENTIAL = ("confidential", "支援会議")
    COMMUNITY_CARE = ("community_care", "地域ケア会議")
    CASE_CONFERENCE = ("case_conference", "ケース会議")

    @property
    def consent_needed(self) -> bool:
        """Whether the persons concerned must have consented before it is held: a
        支援会議 (社会福祉法 106条の6) and a 地域ケア会議 (介護保険法 115条の48) have a
        legal basis of their own; a 重層的支援会議 and another case conference share
        information only with consent."""
        return self in (MeetingKind.MULTI_LAYERED, MeetingKind.CASE_CONFERENCE)

    @property
    def confidentiality(self) -> str:
        """The kind's confidentiality rule, as the API states it."""
        return _CONFIDENTIALITY[self]


_CONFIDENTIALITY = {
    MeetingKind.CONFIDENTIAL: (
        "社会福祉法106条の6: held without consent when needed; participants are bound by "
        "守秘義務 (with penalties). Its record is readable only by the participant agencies "
        "(the convening office included) and auditors; it reaches anyone else only when "
        "its participants re-share items to a later consented meeting."
    ),
    MeetingKind.MULTI_LAYERED: (
        "重層的支援会議: held with the consent of the persons concerned (purpose "
        "multi_layered_meeting); its record is readable by the participant agencies and "
        "auditors."
    ),
    MeetingKind.COMMUNITY_CARE: (
        "介護保険法115条の48: participants are bound by 守秘義務; consent is not required. "
        "Its record is readable only by the participant agencies and auditors."
    ),
    MeetingKind.CASE_CONFERENCE: (
        "A case conference shares information with the consent of the persons concerned "
        "(purpose information_sharing); its record is readable by the participant agencies "
        "and auditors."
    ),
}


class ItemSection(LabelledEnum):
    """What part of a meeting's record an item belongs to."""

    INFORMATION = ("information", "共有された情報")
    CONCERN = ("concern", "合意された懸念")
    NEXT_STEP = ("next_step", "次の対応")
    DECISION = ("decision", "決定事項")


class Attendee(BaseModel):
    """Someone who attended (出席者): their agency and name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agency_id: AgencyId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Annotated[str | None, Field(max_length=200)] = None


class MeetingItem(BaseModel):
    """One item of a meeting's record, with an id so it can be corrected or re-shared
    on its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: Id
    section: ItemSection
    text: Annotated[str, Field(min_length=1, max_length=20_000)]
    responsible_agency: AgencyId | None = None
    due_on: date | None = None


class Minutes(BaseModel):
    """What a meeting recorded (議事録): attendance and the items."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attendees: Annotated[list[Attendee], Field(min_length=1)]
    items: list[MeetingItem]


PersonalMinutes = Annotated[
    Minutes, Personal(), Field(json_schema_extra={"x-kyosei-personal": True})
]


@event
class CaseOpened(DomainEvent):
    """多機関協働ケース開始: coordination opened a case, for an escalated consultation
    or directly by a coordinator.

    Emitted when coordination receives CaseEscalated for a household with no open
    case (a household with one gets ConsultationAddedToCase on it instead), or when a
    coordinator opens a case directly (``consultation_id`` and ``escalated_by`` are
    then None, ``opened_by`` is the coordinator's agency and ``reason`` says why). A
    household has at most one open case; merged records count as one household. The
    case names its main coordinating agency and the members it concerns (none: the
    whole household). Readable by the coordination office, the escalating agency and
    the main coordinating agency; ``reason`` is personal data.

    v3 (from v2): a direct opening (``consultation_id``/``escalated_by`` optional,
    ``opened_by``, ``reason``), ``main_agency`` and ``member_ids``.
    """

    event_type: ClassVar[str] = "CaseOpened"
    schema_version: ClassVar[int] = 3
    label_ja: ClassVar[str] = "多機関協働ケース開始"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    household_id: Id | None = None
    consultation_id: Id | None = None
    escalated_by: AgencyId | None = None
    opened_by: AgencyId | None = None
    main_agency: AgencyId | None = Field(
        None, description="the main coordinating agency; None: the escalating agency"
    )
    member_ids: Annotated[list[Id], Field(max_length=50)] = Field(default_factory=list)
    concerns: Annotated[list[Concern], Field(min_length=1)]
    reason: PersonalText | None = None
    opened_at: datetime


@upcaster("CaseOpened", from_version=2)
def _case_opened_v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
    """A v2 case was opened by an escalation: the escalating agency is its main
    coordinating agency and it concerns the whole household (no members named)."""
    return {**payload, "main_agency": payload["escalated_by"], "member_ids": []}


@event
class ConsultationAddedToCase(DomainEvent):
    """ケースへの相談追加: another consultation of a household joins its open case.

    Emitted when coordination receives CaseEscalated for a household (any of its
    records, merged or not) that already has an open case, instead of opening a
    second case; and for each consultation of a case merged into the open one
    (CaseMergedInto). Readable by the coordination office, the escalating agency
    and the case's main coordinating agency.
    """

    event_type: ClassVar[str] = "ConsultationAddedToCase"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "ケースへの相談追加"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    consultation_id: Id
    household_id: Id | None = None
    escalated_by: AgencyId
    concerns: Annotated[list[Concern], Field(min_length=1)]
    added_at: datetime


@event
class CaseMergedInto(DomainEvent):
    """ケース統合: a case learned its household (CaseLinkedToHousehold) while that
    household already had an open case; the later case is merged into the open one.

    The merged case is no longer open (status ``merged``); its consultations are
    added to ``into_case_id`` (ConsultationAddedToCase there, in the same
    transaction), and it is still found by its id, naming the case it went into.
    Readable by the coordination office and the agencies of both cases.
    """

    event_type: ClassVar[str] = "CaseMergedInto"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "ケース統合"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    into_case_id: Id
    household_id: Id
    merged_at: datetime


@event
class CaseMainAgencyChanged(DomainEvent):
    """主担当機関変更: a coordinator names another main coordinating agency of a case.

    Readable by the coordination office and both agencies; ``reason`` is personal data.
    """

    event_type: ClassVar[str] = "CaseMainAgencyChanged"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "主担当機関変更"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    main_agency: AgencyId
    previous_agency: AgencyId
    reason: PersonalText | None = None
    changed_at: datetime


@event
class CaseMembersChanged(DomainEvent):
    """対象者変更: the members of the household a case concerns (none: the whole
    household), as a coordinator now names them. Readable by the coordination office
    and the case's agencies."""

    event_type: ClassVar[str] = "CaseMembersChanged"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "対象者変更"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    member_ids: Annotated[list[Id], Field(max_length=50)]
    changed_at: datetime


@event
class CaseLinkedToHousehold(DomainEvent):
    """ケースの世帯判明: the consultation behind a case was linked to a household.

    Emitted when coordination receives intake's ConsultationLinkedToHousehold for the
    consultation of an open case that had no household (an escalation received
    before the household was known). From then on the case is found by its
    household's ids, merged records' included. Readable by the coordination office
    and the escalating agency.
    """

    event_type: ClassVar[str] = "CaseLinkedToHousehold"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "ケースの世帯判明"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    consultation_id: Id
    household_id: Id
    linked_at: datetime


@event
class MeetingScheduled(DomainEvent):
    """会議予定: a meeting about a case was scheduled.

    Carries only the fact: the kind, the date, the convening agency and the participant
    agencies (the convening one included), and the members it concerns. Nothing of
    what the meeting will discuss: that is recorded, store-only, when it is held.
    """

    event_type: ClassVar[str] = "MeetingScheduled"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "会議予定"
    producer: ClassVar[str] = "coordination"

    meeting_id: Id
    case_id: Id
    household_id: Id | None = None
    kind: MeetingKind
    convening_agency: AgencyId
    participant_agencies: Annotated[list[AgencyId], Field(min_length=1)]
    member_ids: list[Id] = Field(default_factory=list)
    scheduled_for: datetime
    scheduled_at: datetime


@event
class SupportMeetingHeld(DomainEvent):
    """支援会議開催: a meeting about a case was held and its record finalised.

    What agencies read on the topic is only that the meeting happened: its id, case,
    kind, date, convening agency and participant agencies, and whether the persons
    concerned had consented. The record itself (attendees, information shared,
    concerns agreed, next steps, decisions) is the store-only MeetingRecorded: it never
    travels on a topic, so no service or integrating system outside the meeting can
    read it (a personal field sealed with the household key would not do: every
    kyosei service holds those keys). Participants and auditors read it through
    coordination's API. A 支援会議 (kind ``confidential``, 社会福祉法 106条の6) may be
    held without consent; its participants are bound by 守秘義務. Once held, the
    record is immutable: corrections are MeetingRecordCorrected events.

    v2 (from v1): ``summary`` is gone (content no longer travels) and
    ``convening_agency`` is named; v1 was declared but never emitted.
    """

    event_type: ClassVar[str] = "SupportMeetingHeld"
    schema_version: ClassVar[int] = 2
    label_ja: ClassVar[str] = "支援会議開催"
    producer: ClassVar[str] = "coordination"

    meeting_id: Id
    case_id: Id
    household_id: Id | None = None
    kind: MeetingKind
    held_on: date
    convening_agency: AgencyId
    participant_agencies: Annotated[list[AgencyId], Field(min_length=1)]
    consent_obtained: bool


@upcaster("SupportMeetingHeld", from_version=1)
def _support_meeting_held_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 keeps the record out of the event: v1's ``summary`` is not carried over (no
    v1 was ever emitted), and the first participant is taken as the convening agency."""
    out = {k: v for k, v in payload.items() if k != "summary"}
    out["convening_agency"] = payload["participant_agencies"][0]
    return out


@event
class MeetingRecorded(DomainEvent):
    """会議録確定: the record of a held meeting (store-only, never published).

    Recorded with SupportMeetingHeld, in the same transaction: the attendees and every
    item (information shared, concerns agreed, next steps, decisions). It stays in
    coordination's event store; it is readable only by the meeting's participant
    agencies and auditors through coordination's API, and by the participants of a
    later consented meeting only item by item, as MeetingItemsReshared names them.
    ``minutes`` is personal data.
    """

    event_type: ClassVar[str] = "MeetingRecorded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "会議録確定"
    producer: ClassVar[str] = "coordination"
    published: ClassVar[bool] = False

    meeting_id: Id
    case_id: Id
    minutes: PersonalMinutes
    recorded_at: datetime


@event
class MeetingRecordCorrected(DomainEvent):
    """会議録訂正: an item of a held meeting's record was corrected (store-only).

    The finalised record is never changed: the correction refers to it (the meeting
    and the item) and says what the item now reads and why. Read like the record it
    corrects. ``text`` and ``reason`` are personal data.
    """

    event_type: ClassVar[str] = "MeetingRecordCorrected"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "会議録訂正"
    producer: ClassVar[str] = "coordination"
    published: ClassVar[bool] = False

    correction_id: Id
    meeting_id: Id
    item_id: Id
    text: PersonalText
    reason: PersonalText
    corrected_by: AgencyId
    corrected_at: datetime


@event
class MeetingItemsReshared(DomainEvent):
    """会議内容の再共有: participants of a 支援会議 re-shared items of its record to a
    later consented meeting of the same case (store-only).

    Names the items and the meeting they are re-shared to; from then on that meeting's
    participants read those items, and only those. The rest of the 支援会議 stays
    readable by its own participants and auditors only.
    """

    event_type: ClassVar[str] = "MeetingItemsReshared"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "会議内容の再共有"
    producer: ClassVar[str] = "coordination"
    published: ClassVar[bool] = False

    reshare_id: Id
    meeting_id: Id
    to_meeting_id: Id
    item_ids: Annotated[list[Id], Field(min_length=1)]
    reshared_by: AgencyId
    reshared_at: datetime


@event
class OutreachRequested(DomainEvent):
    """アウトリーチ依頼: coordination asks an agency to reach out to a case's person.

    Intake starts an outreach case at ``outreach_agency``. Readable by the
    coordination office and that agency; ``reason`` is personal data.
    """

    event_type: ClassVar[str] = "OutreachRequested"
    schema_version: ClassVar[int] = 2
    label_ja: ClassVar[str] = "アウトリーチ依頼"
    producer: ClassVar[str] = "coordination"

    request_id: Id
    case_id: Id
    household_id: Id | None = None
    member_id: Id | None = None
    outreach_agency: AgencyId
    concerns: Annotated[list[Concern], Field(min_length=1)]
    reason: PersonalText
    requested_at: datetime


# v2 admits the wider list of concerns; a v1 payload means the same.
upcaster("CaseOpened", from_version=1)(same_payload_wider_vocabulary)


# v2 admits the wider list of concerns; a v1 payload means the same.
upcaster("OutreachRequested", from_version=1)(same_payload_wider_vocabulary)
