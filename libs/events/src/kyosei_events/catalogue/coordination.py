"""Events of services/coordination: 多機関協働. Topic: kyosei.coordination.events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar

from pydantic import Field

from ..labels import LabelledEnum
from ..model import DomainEvent, event, upcaster
from .common import AgencyId, Concern, Id, PersonalText, same_payload_wider_vocabulary


class MeetingKind(LabelledEnum):
    """The two kinds of meeting, with different confidentiality rules."""

    MULTI_LAYERED = ("multi_layered", "重層的支援会議")
    CONFIDENTIAL = ("confidential", "支援会議")


@event
class CaseOpened(DomainEvent):
    """多機関協働ケース開始: coordination opened a case for an escalated consultation.

    Emitted when coordination receives CaseEscalated. Readable by the coordination
    office and the escalating agency.
    """

    event_type: ClassVar[str] = "CaseOpened"
    schema_version: ClassVar[int] = 2
    label_ja: ClassVar[str] = "多機関協働ケース開始"
    producer: ClassVar[str] = "coordination"

    case_id: Id
    household_id: Id | None = None
    consultation_id: Id
    escalated_by: AgencyId
    concerns: Annotated[list[Concern], Field(min_length=1)]
    opened_at: datetime


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
class SupportMeetingHeld(DomainEvent):
    """支援会議開催: a support meeting about a case was held.

    ``kind`` decides who may read it. A 重層的支援会議 (multi_layered) is held with
    the person's consent and is readable as that consent allows. A 支援会議
    (confidential, Social Welfare Act art. 106-6) may be held without consent; its
    participants are bound by 守秘義務 and its record is readable only by the
    ``participant_agencies``, never by anyone else, until a later consented meeting
    re-shares it. ``summary`` is personal data.
    """

    event_type: ClassVar[str] = "SupportMeetingHeld"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "支援会議開催"
    producer: ClassVar[str] = "coordination"

    meeting_id: Id
    case_id: Id
    household_id: Id | None = None
    kind: MeetingKind
    held_on: date
    participant_agencies: Annotated[list[AgencyId], Field(min_length=1)]
    consent_obtained: bool
    summary: PersonalText


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
