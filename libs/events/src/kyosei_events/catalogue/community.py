"""Events of services/community: 地域づくり. Topic: kyosei.community.events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import Field

from ..labels import LabelledEnum
from ..model import DomainEvent, Personal, event, upcaster
from .common import AgencyId, Concern, Id, PersonalText, same_payload_wider_vocabulary


class Noticer(LabelledEnum):
    """Who noticed (気づき): residents and community members, not agencies."""

    WELFARE_COMMISSIONER = ("welfare_commissioner", "民生委員・児童委員")
    NEIGHBOURHOOD_ASSOCIATION = ("neighbourhood_association", "自治会・町内会")
    NEIGHBOUR = ("neighbour", "近隣住民")
    VOLUNTEER = ("volunteer", "ボランティア")
    SHOP_OR_BUSINESS = ("shop_or_business", "商店・事業者")
    CLINIC = ("clinic", "医療機関")
    LINK_WORKER = ("link_worker", "リンクワーカー")
    OTHER = ("other", "その他")


class ReporterLink(LabelledEnum):
    """How far the reporter agreed to be linked to what follows from the report."""

    ANONYMOUS = ("anonymous", "匿名（通報者を伝えない）")
    NAME_ONLY = ("name_only", "氏名のみ伝えてよい")
    MAY_CONTACT = ("may_contact", "氏名・連絡先を伝えてよい（折り返し可）")


@event
class ConcernNoticed(DomainEvent):
    """気づき: a resident or community member noticed someone who may need support.

    Intake turns it into a consultation (channel 地域住民の気づき) when the person
    asked for help, or into an outreach case when they have not. The reporter is
    linked to that record only as far as ``reporter_link`` allows. ``reporter_name``,
    ``reporter_contact``, ``location`` and ``description`` are personal data.
    ``forward_to`` names the agency that takes it up (the community service routes
    each report, e.g. to the district's 地域包括支援センター or ふくしの窓口).
    """

    event_type: ClassVar[str] = "ConcernNoticed"
    schema_version: ClassVar[int] = 2
    label_ja: ClassVar[str] = "気づき"
    producer: ClassVar[str] = "community"

    concern_id: Id
    household_id: Id | None = None
    noticed_by: Noticer
    reporter_link: ReporterLink
    reporter_name: Annotated[
        str | None,
        Personal(),
        Field(None, max_length=200, json_schema_extra={"x-kyosei-personal": True}),
    ]
    reporter_contact: Annotated[
        str | None,
        Personal(),
        Field(None, max_length=200, json_schema_extra={"x-kyosei-personal": True}),
    ]
    location: Annotated[
        str | None,
        Personal(),
        Field(None, max_length=200, json_schema_extra={"x-kyosei-personal": True}),
    ]
    concerns: Annotated[list[Concern], Field(min_length=1)]
    description: PersonalText
    person_asked_for_help: bool = Field(
        description="the person themselves asked for help (else: outreach, not a consultation)"
    )
    forward_to: AgencyId
    noticed_at: datetime


# v2 admits the wider list of concerns; a v1 payload means the same.
upcaster("ConcernNoticed", from_version=1)(same_payload_wider_vocabulary)
