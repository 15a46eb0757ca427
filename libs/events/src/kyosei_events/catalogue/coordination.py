"""Events of services/coordination: 多機関協働. Topic: kyosei.coordination.events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..labels import LabelledEnum
from ..model import DomainEvent, Personal, event, upcaster
from .common import (
    AgencyId,
    Concern,
    Id,
    NotePersonal,
    PersonalText,
    same_payload_wider_vocabulary,
)


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


# --------------------------------------------------------------------------------------
# Assessment, support plans, reviews, requests to the other pillars (issue: 多機関協働)
# --------------------------------------------------------------------------------------


class Approach(LabelledEnum):
    """The two approaches of the programme. One plan usually has goals of both kinds,
    and one goal may follow both: they are used together, chosen by the person's wishes."""

    PROBLEM_SOLVING = ("problem_solving", "具体的な課題解決を目指すアプローチ")
    STAYING_CONNECTED = ("staying_connected", "つながり続けることを目指すアプローチ（伴走）")


class MemberAssessment(BaseModel):
    """One member's situation and needs, as assessed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    member_id: Id
    situation: Annotated[str, Field(min_length=1, max_length=20_000)]
    needs: Annotated[str, Field(min_length=1, max_length=20_000)]


class Assessment(BaseModel):
    """アセスメント: the whole household, not one person (all of it personal data)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    members: Annotated[list[MemberAssessment], Field(min_length=1, max_length=30)]
    history_background: Annotated[str, Field(min_length=1, max_length=20_000)] = Field(
        description="経緯・背景: the household's history and background"
    )
    strengths: Annotated[str, Field(min_length=1, max_length=20_000)]
    wishes: Annotated[str, Field(min_length=1, max_length=20_000)] = Field(
        description="本人・世帯の希望, in the person's own words"
    )
    tried: Annotated[str | None, Field(max_length=20_000)] = Field(
        None, description="what has been tried so far"
    )
    risks: Annotated[str | None, Field(max_length=20_000)] = None


PersonalAssessment = Annotated[
    Assessment, Personal(), Field(json_schema_extra={"x-kyosei-personal": True})
]


@event
class AssessmentRecorded(DomainEvent):
    """アセスメント記録: a dated version of the case's assessment of the whole household.

    Every version is kept (``version`` counts from 1); the assessment as of a date is the
    newest version assessed on or before it. ``assessment`` (each member's situation and
    needs, 経緯・背景, strengths, wishes in the person's own words, what has been tried,
    risks) is personal data.
    """

    event_type: ClassVar[str] = "AssessmentRecorded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "アセスメント記録"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    household_id: Id | None = None
    version: Annotated[int, Field(ge=1)]
    assessed_on: date
    assessment: PersonalAssessment
    recorded_by: AgencyId
    recorded_at: datetime


class PlanAction(BaseModel):
    """One action of a goal: what is done, by which agency (役割分担), by when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: Id
    text: Annotated[str, Field(min_length=1, max_length=20_000)]
    responsible_agency: AgencyId
    due_on: date | None = None


class PlanGoal(BaseModel):
    """One goal of a plan, the approach(es) it follows, the members it is for (none:
    the household) and its actions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    goal_id: Id
    text: Annotated[str, Field(min_length=1, max_length=20_000)]
    approaches: Annotated[list[Approach], Field(min_length=1, max_length=2)]
    member_ids: Annotated[list[Id], Field(max_length=30)] = Field(default_factory=list)
    actions: Annotated[list[PlanAction], Field(max_length=50)] = Field(default_factory=list)


class Plan(BaseModel):
    """支援プラン: the person's and the household's wishes in their own words, and the
    goals (all of it personal data)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    person_wishes: Annotated[str, Field(min_length=1, max_length=20_000)]
    household_wishes: Annotated[str | None, Field(max_length=20_000)] = None
    goals: Annotated[list[PlanGoal], Field(min_length=1, max_length=30)]


PersonalPlan = Annotated[Plan, Personal(), Field(json_schema_extra={"x-kyosei-personal": True})]


class GoalOutline(BaseModel):
    """What anyone who may read the plan's event learns of a goal without its text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    goal_id: Id
    approaches: Annotated[list[Approach], Field(min_length=1, max_length=2)]
    responsible_agencies: list[AgencyId] = Field(default_factory=list)


@event
class SupportPlanAdopted(DomainEvent):
    """支援プラン決定: a version of the case's support plan was adopted (the first
    adoption, or a revision: ``version`` counts from 1 and every version is kept).

    ``plan`` (wishes in the person's and the household's own words, goals and their
    actions) is personal data; ``goals`` outlines each goal's approaches and responsible
    agencies without its text. ``meeting_id`` is the 重層的支援会議 that adopted it, if
    recorded. ``review_on`` is the planned review date. Each action's agency is told by
    a RoleAssigned of the same version.
    """

    event_type: ClassVar[str] = "SupportPlanAdopted"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "支援プラン決定"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    household_id: Id | None = None
    version: Annotated[int, Field(ge=1)]
    meeting_id: Id | None = None
    adopted_on: date
    review_on: date
    goals: Annotated[list[GoalOutline], Field(min_length=1, max_length=30)]
    plan: PersonalPlan
    adopted_by: AgencyId
    adopted_at: datetime


@event
class RoleAssigned(DomainEvent):
    """役割分担: an action of an adopted plan version is assigned to an agency.

    One per action and plan version. The agency reads its actions from coordination's
    API or from this topic; ``task`` (what to do) is personal data.
    """

    event_type: ClassVar[str] = "RoleAssigned"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "役割分担"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    household_id: Id | None = None
    plan_version: Annotated[int, Field(ge=1)]
    goal_id: Id
    action_id: Id
    responsible_agency: AgencyId
    due_on: date | None = None
    task: PersonalText
    assigned_at: datetime


class GoalProgress(LabelledEnum):
    """Progress of one goal at a review."""

    NOT_STARTED = ("not_started", "未着手")
    IN_PROGRESS = ("in_progress", "取組中")
    ACHIEVED = ("achieved", "達成")
    CONTINUING = ("continuing", "継続（伴走）")
    STOPPED = ("stopped", "中止・見直し")


class LifeArea(LabelledEnum):
    """The areas of the 自立 axis (practical)."""

    FOOD = ("food", "食")
    CLOTHING = ("clothing", "衣")
    HOUSING = ("housing", "住まい")
    MONEY = ("money", "家計・金銭")
    HEALTH = ("health", "健康")


class ConnectionKind(LabelledEnum):
    """What a person is connected to, on the 孤立の解消 axis (relational)."""

    PERSON = ("person", "人")
    PLACE = ("place", "居場所")
    GROUP = ("group", "活動・団体")
    AGENCY = ("agency", "支援機関")


class GoalReview(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    goal_id: Id
    progress: GoalProgress
    note: Annotated[str | None, Field(max_length=20_000)] = None


class AreaScore(BaseModel):
    """自立: one practical area, scored 1 (in crisis) to 5 (stable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    area: LifeArea
    score: Annotated[int, Field(ge=1, le=5)]


class Connection(BaseModel):
    """孤立の解消: one person, place, group or agency the person is connected to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ConnectionKind
    label: Annotated[str, Field(min_length=1, max_length=200)]


class ReviewScores(BaseModel):
    """The two outcome axes scored at a review (personal data), and its notes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    self_reliance: Annotated[list[AreaScore], Field(min_length=1, max_length=5)]
    connectedness: Annotated[int, Field(ge=1, le=5)] = Field(
        description="孤立の解消, 1 (isolated) to 5 (well connected)"
    )
    connections: Annotated[list[Connection], Field(max_length=100)] = Field(default_factory=list)
    goals: Annotated[list[GoalReview], Field(min_length=1, max_length=30)]
    summary: Annotated[str | None, Field(max_length=20_000)] = None


PersonalReview = Annotated[
    ReviewScores, Personal(), Field(json_schema_extra={"x-kyosei-personal": True})
]


@event
class PlanReviewed(DomainEvent):
    """プラン評価: a review of the adopted plan, with progress per goal and the two
    outcome axes: 自立 (practical areas) and 孤立の解消 (connections).

    ``review`` is personal data; ``goal_progress`` repeats each goal's progress without
    its notes. ``next_review_on`` sets the plan's next review: a case accompanied in
    つながり続ける伴走 is reviewed on this schedule and is never "stalled" for lack of
    resolution.
    """

    event_type: ClassVar[str] = "PlanReviewed"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "プラン評価"
    producer: ClassVar[str] = "coordination"

    review_id: Id
    case_id: Id
    household_id: Id | None = None
    plan_version: Annotated[int, Field(ge=1)]
    meeting_id: Id | None = None
    reviewed_on: date
    goal_progress: dict[Id, GoalProgress]
    next_review_on: date
    review: PersonalReview
    reviewed_by: AgencyId
    reviewed_at: datetime


@event
class ParticipationRequested(DomainEvent):
    """参加支援依頼: coordination asks a participation agency to find a place, role or
    activity for a person of the case, from an action of its plan.

    ``interests``, ``strengths``, ``constraints``, ``schedule`` and ``wishes`` are
    personal data; ``area`` (the district) is not. The participation agency answers
    with ParticipationMatched naming the case.
    """

    event_type: ClassVar[str] = "ParticipationRequested"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "参加支援依頼"
    producer: ClassVar[str] = "coordination"

    request_id: Id
    case_id: Id
    household_id: Id | None = None
    member_id: Id | None = None
    action_id: Id | None = None
    participation_agency: AgencyId
    interests: PersonalText
    strengths: PersonalText
    constraints: PersonalText
    schedule: PersonalText
    wishes: PersonalText
    area: Annotated[str | None, Field(max_length=200)] = None
    requested_by: AgencyId
    requested_at: datetime


class RequestKind(LabelledEnum):
    """Which pillar a plan action asked."""

    OUTREACH = ("outreach", "アウトリーチ")
    PARTICIPATION = ("participation", "参加支援")


@event
class ActionRequestMade(DomainEvent):
    """他の事業への依頼: a plan action led to an OutreachRequested or a
    ParticipationRequested (store-only: links the request to the action for the case's
    timeline and the agency's actions; the request itself is published)."""

    event_type: ClassVar[str] = "ActionRequestMade"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "他の事業への依頼"
    producer: ClassVar[str] = "coordination"
    published: ClassVar[bool] = False

    case_id: Id
    request_id: Id
    kind: RequestKind
    action_id: Id | None = None
    to_agency: AgencyId
    requested_at: datetime


class OutcomeKind(LabelledEnum):
    """What came back from another pillar onto the case's timeline."""

    OUTREACH_STARTED = ("outreach_started", "アウトリーチ開始")
    OUTREACH_ENDED = ("outreach_ended", "アウトリーチ終了")
    PARTICIPATION_MATCHED = ("participation_matched", "参加先マッチ")


@event
class RequestOutcomeReceived(DomainEvent):
    """依頼の結果: an event of another pillar about the case (an outreach started or
    ended for it, a participation match) reached the case (store-only: the source
    event is on its own topic). ``source_event_id`` makes a redelivery record nothing."""

    event_type: ClassVar[str] = "RequestOutcomeReceived"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "依頼の結果"
    producer: ClassVar[str] = "coordination"
    published: ClassVar[bool] = False

    case_id: Id
    kind: OutcomeKind
    ref_id: Id = Field(description="the outreach or match id")
    agency_id: AgencyId
    source_event_id: Id
    occurred_at: datetime


# --------------------------------------------------------------------------------------
# Life changes, closing and reopening, community issues
# --------------------------------------------------------------------------------------


class ReviewFlagReason(LabelledEnum):
    """Why a life change of a member flags the case for review."""

    PARENT_DIED = ("parent_died", "親亡き後（親の死亡）")
    MEMBER_DIED = ("member_died", "世帯員の死亡")
    MEMBER_DEPARTED = ("member_departed", "世帯員の転出")
    FACILITY_STAY = ("facility_stay", "施設入所・入院")


@event
class CaseReviewFlagged(DomainEvent):
    """見直しが必要: a member's life change (intake's MemberDied, MemberDeparted,
    MemberFacilityStayStarted) flags the case for review, with the reason. The death of
    a parent whose child is also concerned is 親亡き後. The flag stands until the plan's
    next review (PlanReviewed) or until the change is retracted."""

    event_type: ClassVar[str] = "CaseReviewFlagged"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "見直しフラグ"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    household_id: Id | None = None
    member_id: Id
    change_id: Id = Field(description="intake's change id")
    reason: ReviewFlagReason
    occurred_on: date
    flagged_at: datetime


@event
class CaseReviewFlagWithdrawn(DomainEvent):
    """見直しフラグ取消: the life change behind a flag was retracted in intake."""

    event_type: ClassVar[str] = "CaseReviewFlagWithdrawn"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "見直しフラグ取消"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    change_id: Id
    withdrawn_at: datetime


class ClosingReason(LabelledEnum):
    """Why a case (or one person's part of it) ends: 終結の理由."""

    GOALS_MET = ("goals_met", "目標達成")
    HANDED_TO_AGENCY = ("handed_to_agency", "単独の機関へ引継ぎ")
    HANDED_TO_PREFECTURE = ("handed_to_prefecture", "都道府県へ引継ぎ（広域）")
    HANDED_TO_COMMUNITY = ("handed_to_community", "地域のつながりへ移行（住民・居場所の見守り）")
    LIGHTER_ACCOMPANIMENT = ("lighter_accompaniment", "伴走を緩やかに継続")
    MOVED_AWAY = ("moved_away", "転居")
    DIED = ("died", "死亡")
    DECLINED = ("declined", "本人が支援を辞退")

    @property
    def hands_over(self) -> bool:
        """Whether the reason names whom the case is handed to (``handed_to``)."""
        return self in (ClosingReason.HANDED_TO_AGENCY, ClosingReason.HANDED_TO_PREFECTURE)


@event
class MemberSupportEnded(DomainEvent):
    """本人分の終結: the support of some members of the case ends, with the reason; the
    case continues for the others (the mother's part closes after her death while her
    son stays in 伴走). ``note`` is personal data."""

    event_type: ClassVar[str] = "MemberSupportEnded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "本人分の終結"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    household_id: Id | None = None
    member_ids: Annotated[list[Id], Field(min_length=1, max_length=30)]
    reason: ClosingReason
    handed_to: AgencyId | None = None
    note: NotePersonal
    ended_on: date
    ended_by: AgencyId
    ended_at: datetime


@event
class CaseClosed(DomainEvent):
    """終結: the case is closed, with the reason (and, when handed over, to whom).
    Reopening is CaseReopened. ``note`` is personal data."""

    event_type: ClassVar[str] = "CaseClosed"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "終結"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    household_id: Id | None = None
    reason: ClosingReason
    handed_to: AgencyId | None = None
    note: NotePersonal
    closed_on: date
    closed_by: AgencyId
    closed_at: datetime


@event
class CaseReopened(DomainEvent):
    """再開: a closed case is open again. ``reason`` is personal data."""

    event_type: ClassVar[str] = "CaseReopened"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "再開"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    household_id: Id | None = None
    reason: PersonalText
    reopened_by: AgencyId
    reopened_at: datetime


@event
class CommunityIssueRaised(DomainEvent):
    """地域課題の提起: a coordinator raises an issue seen across cases to community work
    (e.g. "no place for men in their 50s to go in district X").

    De-identified by construction: no household, member or case id, no personal field;
    only the area, the theme, the concerns, a description checked for the names and
    ids of the cases it was seen in, and how many cases (banded: "1-4", "5-9", "10+").
    """

    event_type: ClassVar[str] = "CommunityIssueRaised"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "地域課題の提起"
    producer: ClassVar[str] = "coordination"

    issue_id: Id
    area: Annotated[str, Field(min_length=1, max_length=200)]
    theme: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(min_length=1, max_length=5_000)]
    concerns: Annotated[list[Concern], Field(max_length=50)] = Field(default_factory=list)
    cases_seen: Annotated[str, Field(pattern=r"^(1-4|5-9|10\+)$")]
    raised_by: AgencyId
    raised_at: datetime
