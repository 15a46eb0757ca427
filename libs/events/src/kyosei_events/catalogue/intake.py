"""Events of services/intake: 包括的相談支援 and アウトリーチ. Topic: kyosei.intake.events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import Field

from ..labels import LabelledEnum
from ..model import DomainEvent, Personal, event, upcaster
from .common import AgencyId, Concern, Id, PersonalText


class Window(LabelledEnum):
    """相談窓口: the kind of window where a consultation was received."""

    COMMUNITY_GENERAL_SUPPORT_CENTER = ("community_general_support_center", "地域包括支援センター")
    DISABILITY_CONSULTATION = ("disability_consultation", "障害者相談支援事業所")
    CHILD_FAMILY_CENTER = ("child_family_center", "こども家庭センター")
    SELF_RELIANCE_SUPPORT = ("self_reliance_support", "自立相談支援機関")
    WELFARE_GENERAL = ("welfare_general", "ふくしの窓口")
    OTHER_AGENCY = ("other_agency", "その他の支援関係機関")


class Channel(LabelledEnum):
    """How the consultation reached the window."""

    VISIT = ("visit", "来所")
    PHONE = ("phone", "電話")
    HOME_VISIT = ("home_visit", "訪問")
    OUTREACH = ("outreach", "アウトリーチ")
    CLINIC_REFERRAL = ("clinic_referral", "医療機関からの紹介")
    COMMUNITY = ("community", "地域住民の気づき")
    UNKNOWN = ("unknown", "不明")


@event
class ConsultationReceived(DomainEvent):
    """相談受付: a window received a consultation, about anything, from anyone.

    Emitted when staff record a consultation at any agency window. It is never
    rejected for being outside the agency's field (断らない相談). The household may
    be unknown (an anonymous phone call) and linked later. Readable by the receiving
    agency, by agencies the consultation is referred or escalated to, and as the
    household's consent allows; ``summary`` and ``caller_name`` are personal data.
    """

    event_type: ClassVar[str] = "ConsultationReceived"
    schema_version: ClassVar[int] = 2
    label_ja: ClassVar[str] = "相談受付"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id | None = Field(None, description="世帯 id; None while unknown")
    agency_id: AgencyId
    window: Window
    channel: Channel
    concerns: Annotated[list[Concern], Field(min_length=1)]
    summary: PersonalText
    caller_name: Annotated[
        str | None,
        Personal(),
        Field(None, max_length=200, json_schema_extra={"x-kyosei-personal": True}),
    ]
    complex: bool = Field(
        False, description="複合・複雑: several fields involved or no programme fits"
    )
    received_at: datetime


@upcaster("ConsultationReceived", from_version=1)
def _consultation_received_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 had one ``concern`` and no ``channel``; v2 has a list and the channel."""
    out = {k: v for k, v in payload.items() if k != "concern"}
    out["concerns"] = [payload["concern"]]
    out.setdefault("channel", Channel.UNKNOWN.value)
    return out


@event
class CaseEscalated(DomainEvent):
    """多機関協働へのつなぎ: a consultation was escalated to multi-agency coordination.

    Emitted by intake when a consultation is marked complex (several fields, or no
    programme fits). Coordination opens a case for it. Readable by the escalating
    agency and the coordination office; ``reason`` is personal data.
    """

    event_type: ClassVar[str] = "CaseEscalated"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "多機関協働へのつなぎ"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id | None = None
    agency_id: AgencyId
    concerns: Annotated[list[Concern], Field(min_length=1)]
    reason: PersonalText
    escalated_at: datetime
