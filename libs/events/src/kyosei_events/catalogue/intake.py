"""Events of services/intake: 包括的相談支援 and アウトリーチ. Topic: kyosei.intake.events.

Streams: ``household-<id>`` (registration, members, merges, consent),
``consultation-<id>`` (相談受付, its outcome and its referrals),
``outreach-<id>`` (an outreach case and its contact attempts),
``agency-<id>`` (an agency's kind of window and its community places).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from pydantic import Field

from ..labels import LabelledEnum
from ..model import DomainEvent, Personal, event, upcaster
from .common import (
    AgencyId,
    Concern,
    Id,
    NotePersonal,
    PersonalText,
    ShortPersonal,
    UnmetNeed,
    same_payload_wider_vocabulary,
)


class Window(LabelledEnum):
    """相談窓口: the kind of window where a consultation was received."""

    COMMUNITY_GENERAL_SUPPORT_CENTER = ("community_general_support_center", "地域包括支援センター")
    DISABILITY_CONSULTATION = ("disability_consultation", "障害者相談支援事業所")
    CHILD_FAMILY_CENTER = ("child_family_center", "こども家庭センター")
    SELF_RELIANCE_SUPPORT = ("self_reliance_support", "自立相談支援機関")
    WELFARE_GENERAL = ("welfare_general", "ふくしの窓口")
    OTHER_AGENCY = ("other_agency", "その他の支援関係機関")
    # -- added in ConsultationReceived v5 --
    SOCIAL_WELFARE_COUNCIL = ("social_welfare_council", "社会福祉協議会（CSW）")
    HEALTH_CENTER = ("health_center", "保健センター（保健師）")
    REGIONAL_LIFE_SUPPORT_CENTER = ("regional_life_support_center", "中核地域生活支援センター")
    COMMUNITY_PLACE = ("community_place", "地域の相談の場")
    SOCIAL_PRESCRIBING = ("social_prescribing", "社会的処方・医療機関との連携")
    PREFECTURE = ("prefecture", "都道府県")


class Channel(LabelledEnum):
    """How the consultation reached the window."""

    VISIT = ("visit", "来所")
    PHONE = ("phone", "電話")
    HOME_VISIT = ("home_visit", "訪問")
    OUTREACH = ("outreach", "アウトリーチ")
    CLINIC_REFERRAL = ("clinic_referral", "医療機関からの紹介")
    COMMUNITY = ("community", "地域住民の気づき")
    UNKNOWN = ("unknown", "不明")
    # -- added in ConsultationReceived v5 --
    BROUGHT_BY_FAMILY = ("brought_by_family", "家族がつないだ")
    BROUGHT_BY_NEIGHBOUR = ("brought_by_neighbour", "近隣住民がつないだ")
    BROUGHT_BY_AGENCY = ("brought_by_agency", "他機関がつないだ")
    DROP_IN = ("drop_in", "地域の相談の場への立ち寄り")
    ONLINE = ("online", "オンライン")


BROUGHT_CHANNELS = frozenset(
    {Channel.BROUGHT_BY_FAMILY, Channel.BROUGHT_BY_NEIGHBOUR, Channel.BROUGHT_BY_AGENCY}
)


class PlaceKind(LabelledEnum):
    """地域の相談の場の種類: a community place where residents drop in and consult."""

    NEIGHBOURHOOD_HEALTH_ROOM = ("neighbourhood_health_room", "まちの保健室")
    COMMUNITY_VERANDA = ("community_veranda", "地域の縁側")
    CONNECTING_STATION = ("connecting_station", "つながるステーション")
    OTHER = ("other", "その他の地域の相談の場")


class Relationship(LabelledEnum):
    """続柄: a member's relationship to the head of the household (世帯主)."""

    HEAD = ("head", "世帯主")
    SPOUSE = ("spouse", "配偶者")
    CHILD = ("child", "子")
    PARENT = ("parent", "親")
    GRANDCHILD = ("grandchild", "孫")
    GRANDPARENT = ("grandparent", "祖父母")
    SIBLING = ("sibling", "兄弟姉妹")
    OTHER_RELATIVE = ("other_relative", "その他の親族")
    NON_RELATIVE = ("non_relative", "同居人")
    UNKNOWN = ("unknown", "不明")


class AgeBand(LabelledEnum):
    """年齢区分: used when the birth date is not known."""

    PRESCHOOL = ("preschool", "未就学児（0〜5歳）")
    SCHOOL_AGE = ("school_age", "学齢期（6〜17歳）")
    YOUNG_ADULT = ("young_adult", "18〜39歳")
    MIDDLE_AGE = ("middle_age", "40〜64歳")
    YOUNG_OLD = ("young_old", "65〜74歳")
    OLD_OLD = ("old_old", "75歳以上")


class MemberAttribute(LabelledEnum):
    """A member's circumstances that matter for support (要配慮個人情報: sealed)."""

    NEEDS_CARE = ("needs_care", "要介護・要支援")
    DISABILITY = ("disability", "障害")
    CHILD = ("child", "子ども")
    HARDSHIP = ("hardship", "生活困窮")
    FOREIGN_NATIONAL = ("foreign_national", "外国籍")
    YOUNG_CARER = ("young_carer", "ヤングケアラー")
    CARER = ("carer", "介護者・ケアラー")
    WITHDRAWN = ("withdrawn", "ひきこもり")
    DEMENTIA_SUSPECTED = ("dementia_suspected", "認知症の疑い")


class DeclineReason(LabelledEnum):
    """Why an agency declined a referral. A declined referral goes back to its sender."""

    NO_CAPACITY = ("no_capacity", "受け入れ枠がない")
    NOT_ELIGIBLE = ("not_eligible", "制度の対象外")
    BETTER_ELSEWHERE = ("better_elsewhere", "他機関が適切")
    PERSON_DECLINED = ("person_declined", "本人が希望しない")
    OTHER = ("other", "その他")


class ConsentGiver(LabelledEnum):
    """Who gave or withdrew consent."""

    PERSON = ("person", "本人")
    FAMILY = ("family", "家族")
    GUARDIAN = ("guardian", "成年後見人・代理人")


class ConsentPurpose(LabelledEnum):
    """What a consent allows agencies to do with the household's information."""

    INFORMATION_SHARING = ("information_sharing", "支援関係機関間の情報共有")
    REFERRAL = ("referral", "他機関へのつなぎ")
    MULTI_LAYERED_MEETING = ("multi_layered_meeting", "重層的支援会議での検討")
    SUPPORT_PLAN = ("support_plan", "支援プランの作成")


class OutreachOrigin(LabelledEnum):
    """Why an outreach case was started."""

    STAFF = ("staff", "職員の判断")
    COMMUNITY = ("community", "地域住民の気づき")
    COORDINATION = ("coordination", "多機関協働からの依頼")
    CONSULTATION = ("consultation", "相談から")  # added in OutreachStarted v2


class ContactMethod(LabelledEnum):
    """How an outreach worker tried to reach the person."""

    HOME_VISIT = ("home_visit", "訪問")
    PHONE = ("phone", "電話")
    LETTER = ("letter", "手紙・メモ")
    THROUGH_COMMUNITY = ("through_community", "地域の方を通じて")
    OTHER = ("other", "その他")


class ContactResult(LabelledEnum):
    """What came of a contact attempt."""

    NOT_AT_HOME = ("not_at_home", "不在")
    REFUSED = ("refused", "拒否")
    TALKED_AT_DOOR = ("talked_at_door", "玄関先で会話")
    MET = ("met", "面会できた")


class RelationshipStage(LabelledEnum):
    """関係づくりの段階: where the relationship with the person stands, over time."""

    NOT_REACHED = ("not_reached", "未接触")
    FIRST_CONTACT = ("first_contact", "初回接触")
    BUILDING = ("building", "関係づくり")
    TRUSTED = ("trusted", "信頼関係あり")
    ACCEPTING_SUPPORT = ("accepting_support", "支援を受け入れ")


class OutreachEndReason(LabelledEnum):
    """Why an outreach case ended. Ending is optional: it may run for years."""

    CONNECTED_TO_SUPPORT = ("connected_to_support", "支援につながった")
    MOVED_AWAY = ("moved_away", "転居")
    DIED = ("died", "死亡")
    OTHER = ("other", "その他")


# -- households ----------------------------------------------------------------------


@event
class HouseholdRegistered(DomainEvent):
    """世帯登録: an agency registered a household (its members follow as MemberAdded).

    ``duplicates_dismissed`` lists the existing households that the duplicate check
    showed and the staff member judged to be different. Readable by agencies with a
    part in the household and as its consent allows; address and phone are personal.
    """

    event_type: ClassVar[str] = "HouseholdRegistered"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "世帯登録"
    producer: ClassVar[str] = "intake"

    household_id: Id
    registered_by: AgencyId
    address: ShortPersonal
    phone: ShortPersonal
    duplicates_dismissed: list[Id] = Field(default_factory=list)
    registered_at: datetime


@event
class MemberAdded(DomainEvent):
    """世帯員追加: a member was added to a household.

    Name, kana, birth date and attributes (要介護, 障害, …) are personal data.
    Readable as the household is.
    """

    event_type: ClassVar[str] = "MemberAdded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "世帯員追加"
    producer: ClassVar[str] = "intake"

    household_id: Id
    member_id: Id
    name: Annotated[
        str,
        Personal(),
        Field(min_length=1, max_length=200, json_schema_extra={"x-kyosei-personal": True}),
    ]
    kana: ShortPersonal
    birth_date: Annotated[
        date | None, Personal(), Field(None, json_schema_extra={"x-kyosei-personal": True})
    ]
    age_band: AgeBand | None = None
    relationship: Relationship
    attributes: Annotated[
        list[MemberAttribute],
        Personal(),
        Field(default_factory=list, json_schema_extra={"x-kyosei-personal": True}),
    ]
    language: str | None = Field(
        None, max_length=35, description="preferred language (BCP 47, e.g. ja, vi, pt-BR)"
    )


@event
class HouseholdsMerged(DomainEvent):
    """世帯統合: two records turned out to be the same household.

    Appended to the surviving household's stream; the other record gets
    HouseholdMergedInto. Nothing is rewritten: both histories stay, and reads of the
    merged record follow it to the survivor. ``reason`` is personal data.
    """

    event_type: ClassVar[str] = "HouseholdsMerged"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "世帯統合"
    producer: ClassVar[str] = "intake"

    household_id: Id
    merged_household_id: Id
    reason: PersonalText
    merged_at: datetime


@event
class HouseholdMergedInto(DomainEvent):
    """世帯統合（統合元）: this household record was merged into another.

    The last event of the merged record; it takes no more events after this.
    """

    event_type: ClassVar[str] = "HouseholdMergedInto"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "世帯統合（統合元）"
    producer: ClassVar[str] = "intake"

    household_id: Id
    into_household_id: Id
    merged_at: datetime


@event
class ProxyRecorded(DomainEvent):
    """代理人登録: someone was recorded as acting for a member in matters of consent.

    A family member (``proxy_member_id``, a member of the household) or a guardian or
    other representative (``proxy_name``, personal data) may give, refuse or withdraw
    consent for that member only once recorded here for that member.
    """

    event_type: ClassVar[str] = "ProxyRecorded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "代理人登録"
    producer: ClassVar[str] = "intake"

    proxy_id: Id
    household_id: Id
    member_id: Id = Field(description="the member the proxy acts for")
    kind: ConsentGiver = Field(description="family or guardian (never person)")
    proxy_member_id: Id | None = Field(None, description="the proxy, if a household member")
    proxy_name: ShortPersonal
    basis: NotePersonal  # e.g. 成年後見 (court decision), 本人の依頼
    recorded_at: datetime


@event
class ConsentGiven(DomainEvent):
    """本人同意: a person (or their recorded proxy) consented to sharing.

    The consent belongs to ``member_id``, the person it is about: it opens that
    person's records (and household-level records that concern only people who
    consented) to ``agencies`` (or every agency, with ``all_agencies``) for the
    ``purposes`` named, from ``given_on`` until withdrawn. With ``given_by`` family or
    guardian, ``proxy_id`` names the ProxyRecorded that lets them act for the person.
    ``member_id`` is None only on consents recorded before consent was per person
    (v1 without a member): those open household-level information only.
    """

    event_type: ClassVar[str] = "ConsentGiven"
    schema_version: ClassVar[int] = 2
    label_ja: ClassVar[str] = "本人同意"
    producer: ClassVar[str] = "intake"

    consent_id: Id
    household_id: Id
    member_id: Id | None = None
    given_by: ConsentGiver
    proxy_id: Id | None = None
    agencies: list[AgencyId] = Field(default_factory=list)
    all_agencies: bool = False
    purposes: Annotated[list[ConsentPurpose], Field(min_length=1)]
    given_on: date
    recorded_at: datetime


@upcaster("ConsentGiven", from_version=1)
def _consent_given_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 adds ``proxy_id``; a v1 consent named no proxy."""
    return {**payload, "proxy_id": None}


@event
class ConsentRefused(DomainEvent):
    """同意拒否: a person (or their recorded proxy) refused consent.

    Records who refused (``given_by`` with ``proxy_id`` for a proxy), about whom
    (``member_id``), what was asked (``purposes``, ``agencies``) and when. A refusal
    never blocks receiving a consultation or outreach; it is shown on the household so
    that staff do not ask again without reason. ``note`` is personal data.
    """

    event_type: ClassVar[str] = "ConsentRefused"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "同意拒否"
    producer: ClassVar[str] = "intake"

    refusal_id: Id
    household_id: Id
    member_id: Id
    refused_by: ConsentGiver
    proxy_id: Id | None = None
    agencies: list[AgencyId] = Field(default_factory=list)
    all_agencies: bool = False
    purposes: Annotated[list[ConsentPurpose], Field(min_length=1)]
    refused_on: date
    note: NotePersonal
    recorded_at: datetime


@event
class ConsentWithdrawn(DomainEvent):
    """同意撤回: a consent was withdrawn.

    From then on the agencies it named may read only what they have a part in.
    """

    event_type: ClassVar[str] = "ConsentWithdrawn"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "同意撤回"
    producer: ClassVar[str] = "intake"

    consent_id: Id
    household_id: Id
    withdrawn_by: ConsentGiver
    withdrawn_on: date
    note: NotePersonal
    recorded_at: datetime


# -- members' life changes, and people combined by a merge ---------------------------
#
# One event per life change, each on the household's stream and carried on intake's
# topic, so that every service's household directory (and coordination's reactions to
# a death, a move or an entry to a facility) sees each change as it is. Every change
# has an effective date (never in the future) and a ``change_id``; nothing is deleted:
# a wrong record is retracted by MemberChangeRetracted and recorded again. The kinds
# and dates of deaths, moves and facility stays are not personal data (the directory
# keeps them, ids only); notes and facility names are, and so are attribute changes
# (要介護認定, 障害者手帳: 要配慮個人情報, sealed like MemberAdded's attributes).


class DepartureReason(LabelledEnum):
    """Why a member no longer lives in the household (death is MemberDied)."""

    MOVED_OUT = ("moved_out", "転出")
    SEPARATED = ("separated", "別居・世帯分離")
    OTHER = ("other", "その他")


class JoinReason(LabelledEnum):
    """How a member came to live in the household."""

    BORN = ("born", "出生")
    MOVED_IN = ("moved_in", "転入・同居開始")
    RETURNED = ("returned", "世帯に戻った")


class FacilityKind(LabelledEnum):
    """The kind of facility a member entered (施設入所・入院)."""

    CARE_FACILITY = ("care_facility", "介護施設（特養・老健など）")
    HOSPITAL = ("hospital", "病院（入院）")
    DISABILITY_FACILITY = ("disability_facility", "障害者支援施設")
    CHILD_WELFARE_FACILITY = ("child_welfare_facility", "児童福祉施設")
    OTHER = ("other", "その他の施設")


class StatusAttribute(LabelledEnum):
    """A certification or programme a member holds, with a grade (see STATUS_GRADES)."""

    CARE_NEED_LEVEL = ("care_need_level", "要介護認定")
    PHYSICAL_DISABILITY_CERTIFICATE = ("physical_disability_certificate", "身体障害者手帳")
    INTELLECTUAL_DISABILITY_CERTIFICATE = ("intellectual_disability_certificate", "療育手帳")
    MENTAL_DISABILITY_CERTIFICATE = ("mental_disability_certificate", "精神障害者保健福祉手帳")
    PUBLIC_ASSISTANCE = ("public_assistance", "生活保護")
    ADULT_GUARDIANSHIP = ("adult_guardianship", "成年後見制度")


class StatusGrade(LabelledEnum):
    """The level, grade or type of a StatusAttribute."""

    SUPPORT_1 = ("support_1", "要支援1")
    SUPPORT_2 = ("support_2", "要支援2")
    CARE_1 = ("care_1", "要介護1")
    CARE_2 = ("care_2", "要介護2")
    CARE_3 = ("care_3", "要介護3")
    CARE_4 = ("care_4", "要介護4")
    CARE_5 = ("care_5", "要介護5")
    GRADE_1 = ("grade_1", "1級")
    GRADE_2 = ("grade_2", "2級")
    GRADE_3 = ("grade_3", "3級")
    GRADE_4 = ("grade_4", "4級")
    GRADE_5 = ("grade_5", "5級")
    GRADE_6 = ("grade_6", "6級")
    SEVERE = ("severe", "A（重度）")
    MODERATE = ("moderate", "B（中軽度）")
    RECEIVING = ("receiving", "受給中")
    GUARDIANSHIP = ("guardianship", "後見")
    CURATORSHIP = ("curatorship", "保佐")
    ASSISTANCE = ("assistance", "補助")


_G = StatusGrade
STATUS_GRADES: dict[StatusAttribute, tuple[StatusGrade, ...]] = {
    StatusAttribute.CARE_NEED_LEVEL: (
        _G.SUPPORT_1,
        _G.SUPPORT_2,
        _G.CARE_1,
        _G.CARE_2,
        _G.CARE_3,
        _G.CARE_4,
        _G.CARE_5,
    ),
    StatusAttribute.PHYSICAL_DISABILITY_CERTIFICATE: (
        _G.GRADE_1,
        _G.GRADE_2,
        _G.GRADE_3,
        _G.GRADE_4,
        _G.GRADE_5,
        _G.GRADE_6,
    ),
    StatusAttribute.INTELLECTUAL_DISABILITY_CERTIFICATE: (_G.SEVERE, _G.MODERATE),
    StatusAttribute.MENTAL_DISABILITY_CERTIFICATE: (_G.GRADE_1, _G.GRADE_2, _G.GRADE_3),
    StatusAttribute.PUBLIC_ASSISTANCE: (_G.RECEIVING,),
    StatusAttribute.ADULT_GUARDIANSHIP: (_G.GUARDIANSHIP, _G.CURATORSHIP, _G.ASSISTANCE),
}
"""The grades each attribute takes (a member holds one grade of an attribute at a time)."""


class PersonMatch(LabelledEnum):
    """Why two member records of a merged household were judged to be one person."""

    NAME_AND_BIRTH_DATE = ("name_and_birth_date", "氏名と生年月日が一致")
    STAFF = ("staff", "職員が同一人物と判断")


class MemberChange(DomainEvent):
    """What every change of a member carries (not an event of its own)."""

    change_id: Id
    household_id: Id
    member_id: Id
    note: NotePersonal
    recorded_at: datetime


@event
class MemberDied(MemberChange):
    """世帯員の死亡: a member died on ``died_on``. Recorded once per person (a wrong date
    is retracted and recorded again). In an 8050 household the parent's death is the
    date coordinators must see (親亡き後). ``note`` is personal data."""

    event_type: ClassVar[str] = "MemberDied"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "世帯員の死亡"
    producer: ClassVar[str] = "intake"

    died_on: date


@event
class MemberDeparted(MemberChange):
    """世帯員の転出: a member stopped living in the household on ``departed_on`` (moved out,
    separated). The member stays on the household's record, as no longer living in it.
    ``note`` is personal data."""

    event_type: ClassVar[str] = "MemberDeparted"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "世帯員の転出"
    producer: ClassVar[str] = "intake"

    reason: DepartureReason
    departed_on: date


@event
class MemberJoined(MemberChange):
    """世帯員の加入: a member came to live in the household on ``joined_on``: born,
    moved in, or returned. A new person is registered by MemberAdded just before it.
    ``note`` is personal data."""

    event_type: ClassVar[str] = "MemberJoined"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "世帯員の加入（出生・転入）"
    producer: ClassVar[str] = "intake"

    reason: JoinReason
    joined_on: date


@event
class MemberFacilityStayStarted(MemberChange):
    """施設入所・入院: a member entered a care facility, hospital or other facility on
    ``started_on``. ``facility_name`` and ``note`` are personal data."""

    event_type: ClassVar[str] = "MemberFacilityStayStarted"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "施設入所・入院"
    producer: ClassVar[str] = "intake"

    facility: FacilityKind
    facility_name: ShortPersonal
    started_on: date


@event
class MemberFacilityStayEnded(MemberChange):
    """退所・退院: a member left the facility they were in, on ``ended_on``.
    ``note`` is personal data."""

    event_type: ClassVar[str] = "MemberFacilityStayEnded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "退所・退院"
    producer: ClassVar[str] = "intake"

    ended_on: date


@event
class MemberAttributeChanged(MemberChange):
    """認定・手帳等の変更: from ``effective_on`` a member holds ``attribute`` at
    ``grade`` (要介護認定 要介護3, 身体障害者手帳 2級, …), or no longer holds it
    (``grade`` None). ``attribute``, ``grade`` and ``note`` are personal data
    (要配慮個人情報); the household directory does not keep them."""

    event_type: ClassVar[str] = "MemberAttributeChanged"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "認定・手帳等の変更"
    producer: ClassVar[str] = "intake"

    attribute: Annotated[
        StatusAttribute, Personal(), Field(json_schema_extra={"x-kyosei-personal": True})
    ]
    grade: Annotated[
        StatusGrade | None, Personal(), Field(None, json_schema_extra={"x-kyosei-personal": True})
    ]
    effective_on: date


@event
class MemberChangeRetracted(DomainEvent):
    """世帯員の変化の取消: a life change or attribute change was recorded in error.

    The retracted event stays in the history, marked retracted; today's state no longer
    counts it. A correction is a retraction followed by the right record. ``reason`` is
    personal data."""

    event_type: ClassVar[str] = "MemberChangeRetracted"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "世帯員の変化の取消"
    producer: ClassVar[str] = "intake"

    household_id: Id
    member_id: Id
    retracted_change_id: Id
    reason: PersonalText
    retracted_at: datetime


@event
class MembersCombined(DomainEvent):
    """世帯員の同一人物統合: in a merge of two records of one household, a member of the
    merged record (``same_member_id``) is the same person as ``member_id`` of the
    surviving household: same normalised name and birth date, or chosen by staff.

    Appended to the survivor's stream with HouseholdsMerged. From then on both ids are
    one person: the picture shows them once, and consents, proxies and records naming
    either id apply to that person.
    """

    event_type: ClassVar[str] = "MembersCombined"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "世帯員の同一人物統合"
    producer: ClassVar[str] = "intake"

    household_id: Id
    member_id: Id = Field(description="the person's id kept in the surviving household")
    same_member_id: Id = Field(description="the same person's id in the merged record")
    merged_household_id: Id
    matched_by: PersonMatch
    combined_at: datetime


# -- consultations -------------------------------------------------------------------


@event
class ConsultationReceived(DomainEvent):
    """相談受付: a window received a consultation, about anything, from anyone.

    Emitted when staff record a consultation at any agency window. It is never
    rejected for being outside the agency's field (断らない相談). The household may
    be unknown (an anonymous phone call) and linked later. Readable by the receiving
    agency, by agencies the consultation is referred or escalated to, and as the
    household's consent allows; ``summary``, ``other_concern``, ``caller_name`` and
    ``caller_contact`` are personal data. ``concern_report_id`` names the community
    ConcernNoticed it came from, if any. ``unmet_needs`` says why it is hard to help
    (none while unknown). ``place_id`` names the agency's community place
    (ConsultationPlaceRegistered) it was received at. With a channel "brought by
    family / a neighbour / another agency", ``brought_by`` says who in words
    (personal data) and ``brought_by_agency`` names the agency that brought it.
    """

    event_type: ClassVar[str] = "ConsultationReceived"
    schema_version: ClassVar[int] = 5
    label_ja: ClassVar[str] = "相談受付"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id | None = Field(None, description="世帯 id; None while unknown")
    member_ids: list[Id] = Field(
        default_factory=list,
        max_length=30,
        description="the household members the consultation is about; empty while unknown "
        "(then it concerns every member, and only every member's consent opens it)",
    )
    agency_id: AgencyId
    window: Window
    channel: Channel
    concerns: Annotated[list[Concern], Field(min_length=1)]
    other_concern: NotePersonal  # その他: what it is about, in words
    summary: PersonalText
    caller_name: ShortPersonal
    caller_contact: ShortPersonal
    complex: bool = Field(
        False, description="複合・複雑: several fields involved or no programme fits"
    )
    concern_report_id: Id | None = None
    unmet_needs: list[UnmetNeed] = Field(default_factory=list, max_length=3)
    place_id: Id | None = Field(None, description="the community place it was received at")
    brought_by: ShortPersonal
    brought_by_agency: AgencyId | None = Field(None, description="the agency that brought it")
    received_at: datetime


@upcaster("ConsultationReceived", from_version=1)
def _consultation_received_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 had one ``concern`` and no ``channel``; v2 has a list and the channel."""
    out = {k: v for k, v in payload.items() if k != "concern"}
    out["concerns"] = [payload["concern"]]
    out.setdefault("channel", Channel.UNKNOWN.value)
    return out


@upcaster("ConsultationReceived", from_version=2)
def _consultation_received_v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
    """v3 adds ``other_concern``, ``caller_contact`` and ``concern_report_id`` (all
    optional): a v2 consultation had none of them."""
    return {
        **payload,
        "other_concern": None,
        "caller_contact": None,
        "concern_report_id": None,
    }


@upcaster("ConsultationReceived", from_version=3)
def _consultation_received_v3_to_v4(payload: dict[str, Any]) -> dict[str, Any]:
    """v4 names the members a consultation is about; a v3 consultation named none."""
    return {**payload, "member_ids": []}


@upcaster("ConsultationReceived", from_version=4)
def _consultation_received_v4_to_v5(payload: dict[str, Any]) -> dict[str, Any]:
    """v5 widens the windows, channels and concerns (a v4 value means the same) and adds
    ``unmet_needs``, ``place_id``, ``brought_by`` and ``brought_by_agency``: a v4
    consultation had none of them."""
    return {
        **payload,
        "unmet_needs": [],
        "place_id": None,
        "brought_by": None,
        "brought_by_agency": None,
    }


@event
class ConsultationLinkedToHousehold(DomainEvent):
    """世帯との紐づけ: a consultation received without a known household was linked to one."""

    event_type: ClassVar[str] = "ConsultationLinkedToHousehold"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "世帯との紐づけ"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id
    linked_at: datetime


@event
class ConsultationHandled(DomainEvent):
    """受付機関で対応: the receiving agency handles the consultation itself.

    One of the three outcomes every consultation must get (handled, referred,
    escalated). ``note`` is personal data.
    """

    event_type: ClassVar[str] = "ConsultationHandled"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "受付機関で対応"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id | None = None
    agency_id: AgencyId
    note: NotePersonal
    handled_at: datetime


class _ReferralEvent(DomainEvent):
    referral_id: Id
    consultation_id: Id
    household_id: Id | None = None
    from_agency: AgencyId
    to_agency: AgencyId


@event
class ReferralMade(_ReferralEvent):
    """つなぎ: a consultation was referred to another agency.

    Readable by both agencies. The receiving agency accepts or declines it; a
    declined referral goes back to the sender, whose consultation needs an outcome
    again. ``note`` is personal data.
    """

    event_type: ClassVar[str] = "ReferralMade"
    schema_version: ClassVar[int] = 2
    label_ja: ClassVar[str] = "つなぎ（紹介）"
    producer: ClassVar[str] = "intake"

    concerns: Annotated[list[Concern], Field(min_length=1)]
    note: NotePersonal
    made_at: datetime


# v2 admits the wider list of concerns; a v1 payload means the same.
upcaster("ReferralMade", from_version=1)(same_payload_wider_vocabulary)


@event
class ReferralAccepted(_ReferralEvent):
    """つなぎ受理: the receiving agency accepted a referral. Readable by both agencies."""

    event_type: ClassVar[str] = "ReferralAccepted"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "つなぎ受理"
    producer: ClassVar[str] = "intake"

    accepted_at: datetime


@event
class ReferralDeclined(_ReferralEvent):
    """つなぎ辞退: the receiving agency declined a referral, with its reason.

    The consultation goes back to the sender's list to be decided again; it never
    falls into a void. Readable by both agencies; ``note`` is personal data.
    """

    event_type: ClassVar[str] = "ReferralDeclined"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "つなぎ辞退"
    producer: ClassVar[str] = "intake"

    reason: DeclineReason
    note: NotePersonal
    declined_at: datetime


@event
class ReferralCompleted(_ReferralEvent):
    """つなぎ完了: the receiving agency finished the support it was asked for.

    Readable by both agencies; ``note`` is personal data.
    """

    event_type: ClassVar[str] = "ReferralCompleted"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "つなぎ完了"
    producer: ClassVar[str] = "intake"

    note: NotePersonal
    completed_at: datetime


@event
class CaseEscalated(DomainEvent):
    """多機関協働へのつなぎ: a consultation was escalated to multi-agency coordination.

    Emitted by intake when a consultation is marked complex (several fields, or no
    programme fits). Coordination opens a case for it. Readable by the escalating
    agency and the coordination office; ``reason`` is personal data.
    """

    event_type: ClassVar[str] = "CaseEscalated"
    schema_version: ClassVar[int] = 2
    label_ja: ClassVar[str] = "多機関協働へのつなぎ"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id | None = None
    agency_id: AgencyId
    concerns: Annotated[list[Concern], Field(min_length=1)]
    reason: PersonalText
    escalated_at: datetime


# v2 admits the wider list of concerns; a v1 payload means the same.
upcaster("CaseEscalated", from_version=1)(same_payload_wider_vocabulary)


# -- consultations: why it is hard to help, and the outcomes added with issue 9 -------


@event
class UnmetNeedsRecorded(DomainEvent):
    """支援が届きにくい理由の記録: the receiving agency recorded why it is hard to help.

    ``unmet_needs`` replaces what was recorded before (at receipt or later); an empty
    list means none applies. Readable as the consultation is.
    """

    event_type: ClassVar[str] = "UnmetNeedsRecorded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "支援が届きにくい理由の記録"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id | None = None
    agency_id: AgencyId
    unmet_needs: list[UnmetNeed] = Field(default_factory=list, max_length=3)
    recorded_at: datetime


@event
class InformationProvided(DomainEvent):
    """情報提供・助言: the receiving agency gave information or advice; closed.

    An outcome, like handled, referred or escalated. ``note`` is personal data.
    Readable as the consultation is.
    """

    event_type: ClassVar[str] = "InformationProvided"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "情報提供・助言"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id | None = None
    agency_id: AgencyId
    note: NotePersonal
    provided_at: datetime


@event
class AccompanimentContinued(DomainEvent):
    """伴走継続: the receiving agency keeps accompanying the person (つながり続ける支援).

    An outcome that stays open by design: never counted as unresolved, reviewed on
    ``review_on`` (AccompanimentReviewed sets the next date). ``note`` is personal
    data. Readable as the consultation is.
    """

    event_type: ClassVar[str] = "AccompanimentContinued"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "伴走継続"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id | None = None
    agency_id: AgencyId
    review_on: date = Field(description="when the accompaniment is next reviewed")
    note: NotePersonal
    continued_at: datetime


@event
class AccompanimentReviewed(DomainEvent):
    """伴走の振り返り: an accompaniment was reviewed; it goes on until ``next_review_on``.

    ``note`` is personal data. Readable as the consultation is.
    """

    event_type: ClassVar[str] = "AccompanimentReviewed"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "伴走の振り返り"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id | None = None
    agency_id: AgencyId
    next_review_on: date
    note: NotePersonal
    reviewed_at: datetime


@event
class ConsultationMovedToOutreach(DomainEvent):
    """アウトリーチへ: an outreach case was started from this consultation (an outcome).

    Appended with the OutreachStarted (origin ``consultation``, ``origin_ref`` = this
    consultation) in one transaction, so each names the other. Readable as the
    consultation is.
    """

    event_type: ClassVar[str] = "ConsultationMovedToOutreach"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "アウトリーチへ"
    producer: ClassVar[str] = "intake"

    consultation_id: Id
    household_id: Id | None = None
    agency_id: AgencyId
    outreach_id: Id
    moved_at: datetime


# -- outreach ------------------------------------------------------------------------


@event
class OutreachStarted(DomainEvent):
    """アウトリーチ開始: an agency starts reaching out to someone who does not come.

    Started by a staff decision, a community ConcernNoticed, a coordination
    OutreachRequested or a consultation that goes to outreach (``origin``, with
    ``origin_ref`` naming the report, case or consultation).
    The person may not be registered yet: ``location`` says where to go. An outreach
    case may run for years. ``reporter_name`` and ``reporter_contact`` are set only as
    far as a community reporter agreed to be linked. ``reason``, ``location`` and the
    reporter fields are personal data.
    """

    event_type: ClassVar[str] = "OutreachStarted"
    schema_version: ClassVar[int] = 2
    label_ja: ClassVar[str] = "アウトリーチ開始"
    producer: ClassVar[str] = "intake"

    outreach_id: Id
    household_id: Id | None = None
    member_id: Id | None = None
    agency_id: AgencyId
    origin: OutreachOrigin
    origin_ref: Id | None = None
    concerns: Annotated[list[Concern], Field(min_length=1)]
    reason: PersonalText
    location: ShortPersonal
    reporter_name: ShortPersonal
    reporter_contact: ShortPersonal
    started_at: datetime


# v2 admits the wider lists of concerns and origins; a v1 payload means the same.
upcaster("OutreachStarted", from_version=1)(same_payload_wider_vocabulary)


@event
class OutreachContactRecorded(DomainEvent):
    """訪問・接触記録: one contact attempt of an outreach case, and what came of it.

    ``note`` is personal data.
    """

    event_type: ClassVar[str] = "OutreachContactRecorded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "訪問・接触記録"
    producer: ClassVar[str] = "intake"

    outreach_id: Id
    household_id: Id | None = None
    attempt: int = Field(ge=1, description="1 for the first attempt, and so on")
    method: ContactMethod
    result: ContactResult
    note: NotePersonal
    contacted_at: datetime


@event
class RelationshipStageChanged(DomainEvent):
    """関係づくりの段階の変化: the relationship with the person moved to a new stage.

    ``note`` is personal data.
    """

    event_type: ClassVar[str] = "RelationshipStageChanged"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "関係づくりの段階の変化"
    producer: ClassVar[str] = "intake"

    outreach_id: Id
    household_id: Id | None = None
    stage: RelationshipStage
    previous_stage: RelationshipStage
    note: NotePersonal
    changed_at: datetime


@event
class OutreachEnded(DomainEvent):
    """アウトリーチ終了: an outreach case ended (optional; many run for years).

    ``note`` is personal data.
    """

    event_type: ClassVar[str] = "OutreachEnded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "アウトリーチ終了"
    producer: ClassVar[str] = "intake"

    outreach_id: Id
    household_id: Id | None = None
    reason: OutreachEndReason
    note: NotePersonal
    ended_at: datetime


# -- agencies: their kind of window and their community places -----------------------


@event
class AgencyWindowRecorded(DomainEvent):
    """相談窓口の種別登録: an agency recorded what kind of window it is.

    A consultation the agency takes up from a resident's 気づき (community
    ConcernNoticed) is received at this kind of window. No personal data; readable by
    every agency.
    """

    event_type: ClassVar[str] = "AgencyWindowRecorded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "相談窓口の種別登録"
    producer: ClassVar[str] = "intake"

    agency_id: AgencyId
    window: Window
    recorded_at: datetime


@event
class ConsultationPlaceRegistered(DomainEvent):
    """地域の相談の場の登録: an agency registered a community place that takes
    consultations (まちの保健室, 地域の縁側, つながるステーション, …).

    A consultation received there names the place. No personal data; readable by
    every agency.
    """

    event_type: ClassVar[str] = "ConsultationPlaceRegistered"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "地域の相談の場の登録"
    producer: ClassVar[str] = "intake"

    place_id: Id
    agency_id: AgencyId
    name: str = Field(min_length=1, max_length=200)
    kind: PlaceKind
    registered_at: datetime
