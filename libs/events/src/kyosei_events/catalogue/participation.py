"""Events of services/participation: 参加支援. Topic: kyosei.participation.events."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from ..labels import LabelledEnum
from ..model import DomainEvent, event
from .common import AgencyId, Id, PersonalText


class OpportunityKind(LabelledEnum):
    """What kind of place, role or activity a person is matched with."""

    PLACE = ("place", "居場所")
    ROLE = ("role", "役割・出番")
    WORK_EXPERIENCE = ("work_experience", "就労体験")
    VOLUNTEERING = ("volunteering", "ボランティア")
    ACTIVITY = ("activity", "活動・サークル")


@event
class ParticipationMatched(DomainEvent):
    """参加先マッチ: a person was matched with a place, role or activity.

    Emitted when a participation (link) worker agrees a match with the person and
    the host. Readable by the participation agency, the coordination case's plan
    members and as the household's consent allows; ``fit_notes`` (strengths,
    interests, wishes) is personal data.
    """

    event_type: ClassVar[str] = "ParticipationMatched"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "参加先マッチ"
    producer: ClassVar[str] = "participation"

    match_id: Id
    household_id: Id
    case_id: Id | None = None
    opportunity_id: Id
    opportunity_kind: OpportunityKind
    host_agency_id: AgencyId
    link_worker_agency_id: AgencyId
    matched_on: date
    fit_notes: PersonalText
