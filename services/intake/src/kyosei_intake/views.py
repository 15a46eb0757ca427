"""The read side of intake: response bodies (enum values with their Japanese labels)
and the household picture, filtered record by record by the access rules."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from kyosei_events.catalogue.common import Concern, UnmetNeed
from kyosei_events.catalogue.intake import (
    Channel,
    ContactResult,
    DeclineReason,
    DepartureReason,
    FacilityKind,
    JoinReason,
    MemberAttributeChanged,
    MemberDeparted,
    MemberFacilityStayStarted,
    MemberJoined,
    OutreachOrigin,
    RelationshipStage,
    Window,
)
from kyosei_households import Dismissal
from kyosei_platform.api import LabelledValue, Timestamp, labelled, labelled_opt
from kyosei_platform.errors import Error

from .domain.agency import Agency
from .domain.consultation import Consultation, Referral
from .domain.household import Consent, Person, Proxy, Refusal, Retraction, effective_on
from .domain.outreach import Outreach


class MemberStatusView(BaseModel):
    """A person's state today, from their life changes."""

    alive: bool
    deceased_on: date | None = Field(description="死亡日")
    living_in_household: bool = Field(description="false once moved out (until back)")
    departed_on: date | None
    departure_reason: LabelledValue | None
    joined_on: date | None = Field(description="出生・転入・帰宅の日")
    joined_reason: LabelledValue | None
    facility: LabelledValue | None = Field(description="the facility kind while in one")
    facility_since: date | None


class CertificationView(BaseModel):
    """An attribute held today (要介護認定 要介護3, 身体障害者手帳 2級, …)."""

    attribute: LabelledValue
    grade: LabelledValue
    since: date


class MemberView(BaseModel):
    """One person of the household. A person combined by a merge has several
    ``member_ids`` (the first is ``member_id``) and is listed once."""

    member_id: str
    member_ids: list[str] = Field(description="every id of this person (two after a merge)")
    household_record: str
    name: str | None
    kana: str | None
    birth_date: date | None
    age_band: LabelledValue | None
    relationship: LabelledValue
    attributes: list[LabelledValue]
    language: str | None
    status: MemberStatusView
    certifications: list[CertificationView]
    consultation_ids: list[str] = Field(
        default_factory=list,
        description="the consultations (that the caller may read) naming this person",
    )


def member_view(p: Person, consultation_ids: list[str] | None = None) -> MemberView:
    m, record = p.records[0]
    st = p.status()
    return MemberView(
        member_id=p.person_id,
        member_ids=p.member_ids,
        household_record=record,
        name=m.name,
        kana=m.kana,
        birth_date=p.birth_date,
        age_band=labelled_opt(m.age_band),
        relationship=labelled(m.relationship),
        attributes=[labelled(a) for a in m.attributes],
        language=m.language,
        status=MemberStatusView(
            alive=not st.deceased,
            deceased_on=st.deceased_on,
            living_in_household=st.living_in_household,
            departed_on=st.departed_on,
            departure_reason=labelled(DepartureReason.of(st.departure_reason))
            if st.departure_reason
            else None,
            joined_on=st.joined_on,
            joined_reason=labelled(JoinReason.of(st.joined_reason)) if st.joined_reason else None,
            facility=labelled(FacilityKind.of(st.facility)) if st.facility else None,
            facility_since=st.facility_since,
        ),
        certifications=[
            CertificationView(
                attribute=labelled(c.attribute), grade=labelled(c.grade), since=c.since
            )
            for c in p.certifications()
        ],
        consultation_ids=consultation_ids or [],
    )


class MemberChangeView(BaseModel):
    """One recorded change of a member (history keeps them all, retracted ones too)."""

    change_id: str
    member_id: str
    kind: LabelledValue = Field(description="the event: MemberDied, MemberDeparted, …")
    on: date = Field(description="the date it took effect")
    reason: LabelledValue | None = None
    facility: LabelledValue | None = None
    facility_name: str | None = None
    attribute: LabelledValue | None = None
    grade: LabelledValue | None = None
    note: str | None
    recorded_at: Timestamp
    household_record: str
    retracted: bool
    retracted_at: Timestamp | None = None
    retraction_reason: str | None = None


def member_change_views(p: Person) -> list[MemberChangeView]:
    """A person's history, oldest effective date first."""
    out = []
    for c in sorted(p.changes, key=lambda c: (effective_on(c.event), c.seq)):
        e = c.event
        r: Retraction | None = p.retractions.get(e.change_id)
        out.append(
            MemberChangeView(
                change_id=e.change_id,
                member_id=e.member_id,
                kind=LabelledValue(value=e.event_type, label_ja=e.label_ja),
                on=effective_on(e),
                reason=labelled(e.reason) if isinstance(e, MemberDeparted | MemberJoined) else None,
                facility=labelled(e.facility) if isinstance(e, MemberFacilityStayStarted) else None,
                facility_name=e.facility_name if isinstance(e, MemberFacilityStayStarted) else None,
                attribute=labelled_opt(e.attribute)
                if isinstance(e, MemberAttributeChanged)
                else None,
                grade=labelled_opt(e.grade) if isinstance(e, MemberAttributeChanged) else None,
                note=e.note,
                recorded_at=e.recorded_at,
                household_record=c.household_id,
                retracted=r is not None,
                retracted_at=r.retracted_at if r else None,
                retraction_reason=r.reason if r else None,
            )
        )
    return out


class LifeEventView(BaseModel):
    """A life change the coordinators must see (親亡き後: a parent's death)."""

    member_id: str
    relationship: LabelledValue
    kind: LabelledValue
    on: date


class DismissedDuplicateView(BaseModel):
    """A duplicate candidate staff judged to be another household, at registration."""

    household_id: str = Field(description="the record being registered when it was dismissed")
    other_household_id: str = Field(description="the candidate judged to be another household")
    dismissed_by: str = Field(description="the agency that registered anyway")
    dismissed_by_staff: str | None
    dismissed_at: Timestamp


def dismissed_view(d: Dismissal) -> DismissedDuplicateView:
    return DismissedDuplicateView(
        household_id=d.household_id,
        other_household_id=d.other_household_id,
        dismissed_by=d.dismissed_by,
        dismissed_by_staff=d.dismissed_by_staff,
        dismissed_at=datetime.fromisoformat(d.dismissed_at),
    )


class ConsentView(BaseModel):
    """本人同意: a person's consent; it opens that person's records only."""

    consent_id: str
    member_id: str | None
    given_by: LabelledValue
    proxy_id: str | None
    agencies: list[str]
    all_agencies: bool
    purposes: list[LabelledValue]
    given_on: date
    withdrawn_on: date | None
    withdrawn_by: LabelledValue | None
    active: bool


def consent_view(c: Consent) -> ConsentView:
    return ConsentView(
        consent_id=c.consent_id,
        member_id=c.member_id,
        given_by=labelled(c.given_by),
        proxy_id=c.proxy_id,
        agencies=c.agencies,
        all_agencies=c.all_agencies,
        purposes=[labelled(p) for p in c.purposes],
        given_on=c.given_on,
        withdrawn_on=c.withdrawn_on,
        withdrawn_by=labelled_opt(c.withdrawn_by),
        active=c.withdrawn_on is None,
    )


class ProxyView(BaseModel):
    """代理人: who may consent for a member."""

    proxy_id: str
    member_id: str
    kind: LabelledValue
    proxy_member_id: str | None
    proxy_name: str | None
    basis: str | None


def proxy_view(p: Proxy) -> ProxyView:
    return ProxyView(
        proxy_id=p.proxy_id,
        member_id=p.member_id,
        kind=labelled(p.kind),
        proxy_member_id=p.proxy_member_id,
        proxy_name=p.proxy_name,
        basis=p.basis,
    )


class RefusalView(BaseModel):
    """同意拒否: who refused, about whom, what was asked, when."""

    refusal_id: str
    member_id: str
    refused_by: LabelledValue
    proxy_id: str | None
    agencies: list[str]
    all_agencies: bool
    purposes: list[LabelledValue]
    refused_on: date
    note: str | None


def refusal_view(r: Refusal) -> RefusalView:
    return RefusalView(
        refusal_id=r.refusal_id,
        member_id=r.member_id,
        refused_by=labelled(r.refused_by),
        proxy_id=r.proxy_id,
        agencies=r.agencies,
        all_agencies=r.all_agencies,
        purposes=[labelled(p) for p in r.purposes],
        refused_on=r.refused_on,
        note=r.note,
    )


class ReferralSummary(BaseModel):
    """A referral as lists show it: every field of the referral but its notes
    (personal text, read from GET /referrals/{id})."""

    referral_id: str
    consultation_id: str
    household_id: str | None
    from_agency: str
    to_agency: str
    concerns: list[LabelledValue]
    status: str
    decline_reason: LabelledValue | None
    made_at: Timestamp
    updated_at: Timestamp | None


class ReferralView(ReferralSummary):
    """One referral (つなぎ) with its notes."""

    note: str | None = None
    outcome_note: str | None = None


def referral_view(state: Consultation, r: Referral) -> ReferralView:
    return ReferralView(
        referral_id=r.referral_id,
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        from_agency=r.from_agency,
        to_agency=r.to_agency,
        concerns=[labelled(c) for c in r.concerns],
        status=r.status.value,
        decline_reason=labelled_opt(r.decline_reason),
        made_at=r.made_at,
        updated_at=r.updated_at,
        note=r.note,
        outcome_note=r.outcome_note,
    )


def referral_row(row: Any) -> ReferralSummary:
    return ReferralSummary(
        referral_id=row.referral_id,
        consultation_id=row.consultation_id,
        household_id=row.household_id,
        from_agency=row.from_agency,
        to_agency=row.to_agency,
        concerns=[labelled(Concern.of(c)) for c in json.loads(row.concerns)],
        status=row.status,
        decline_reason=labelled(DeclineReason.of(row.decline_reason))
        if row.decline_reason
        else None,
        made_at=row.made_at,
        updated_at=row.updated_at,
    )


Status = Literal[
    "pending",
    "handled",
    "information_given",
    "accompanying",
    "outreach",
    "referred",
    "escalated",
]
STATUS_LABELS_JA: dict[str, str] = {
    "pending": "対応未定",
    "handled": "受付機関で対応",
    "information_given": "情報提供・助言",
    "accompanying": "伴走継続",
    "outreach": "アウトリーチへ",
    "referred": "つなぎ",
    "escalated": "多機関協働へ",
}


class ConsultationView(BaseModel):
    consultation_id: str
    household_id: str | None
    member_ids: list[str]
    agency_id: str
    window: LabelledValue
    channel: LabelledValue
    concerns: list[LabelledValue]
    other_concern: str | None
    summary: str | None
    caller_name: str | None
    caller_contact: str | None
    complex: bool
    unmet_needs: list[LabelledValue] = Field(description="支援が届きにくい理由")
    place_id: str | None = Field(description="the community place it was received at")
    brought_by: str | None = Field(description="who brought it, in words (personal)")
    brought_by_agency: str | None = Field(description="the agency that brought it")
    status: Status = Field(
        description="the outcome: pending (none yet), handled, information_given "
        "(情報提供・助言), accompanying (伴走継続: open by design), outreach (アウトリーチへ), "
        "referred (つなぎ), escalated (多機関協働へ)"
    )
    returned: bool
    escalated: bool
    escalation_reason: str | None
    handled_note: str | None
    information_note: str | None
    review_on: date | None = Field(description="accompanying: the next review date")
    accompaniment_note: str | None
    outreach_id: str | None = Field(description="outreach: the case started from it")
    concern_report_id: str | None
    received_at: Timestamp | None
    outcome_at: Timestamp | None
    referrals: list[ReferralView]
    version: int


def consultation_view(s: Consultation) -> ConsultationView:
    assert s.window is not None and s.channel is not None
    return ConsultationView(
        consultation_id=s.consultation_id,
        household_id=s.household_id,
        member_ids=s.member_ids,
        agency_id=s.agency_id,
        window=labelled(s.window),
        channel=labelled(s.channel),
        concerns=[labelled(c) for c in s.concerns],
        other_concern=s.other_concern,
        summary=s.summary,
        caller_name=s.caller_name,
        caller_contact=s.caller_contact,
        complex=s.complex,
        unmet_needs=[labelled(n) for n in s.unmet_needs],
        place_id=s.place_id,
        brought_by=s.brought_by,
        brought_by_agency=s.brought_by_agency,
        status=s.outcome.value,
        returned=s.returned,
        escalated=s.escalated,
        escalation_reason=s.escalation_reason,
        handled_note=s.handled_note,
        information_note=s.information_note,
        review_on=s.review_on,
        accompaniment_note=s.accompaniment_note,
        outreach_id=s.outreach_id,
        concern_report_id=s.concern_report_id,
        received_at=s.received_at,
        outcome_at=s.outcome_at,
        referrals=[referral_view(s, r) for r in s.referrals.values()],
        version=s.version,
    )


class ConsultationSummary(BaseModel):
    """A consultation as lists show it: a summary without personal data (summary,
    caller, notes) or referrals; GET /consultations/{id} has them."""

    consultation_id: str
    household_id: str | None
    member_ids: list[str]
    agency_id: str
    window: LabelledValue
    channel: LabelledValue
    concerns: list[LabelledValue]
    unmet_needs: list[LabelledValue]
    place_id: str | None
    complex: bool
    status: str
    escalated: bool
    returned: bool
    received_at: Timestamp
    outcome_at: Timestamp | None
    review_on: date | None = Field(None, description="accompanying: the next review date")
    outreach_id: str | None = None
    days_without_outcome: int | None = None


def consultation_row(row: Any, days: int | None = None) -> ConsultationSummary:
    return ConsultationSummary(
        consultation_id=row.consultation_id,
        household_id=row.household_id,
        member_ids=json.loads(row.member_ids),
        agency_id=row.agency_id,
        window=labelled(Window.of(row.window)),
        channel=labelled(Channel.of(row.channel)),
        concerns=[labelled(Concern.of(c)) for c in json.loads(row.concerns)],
        unmet_needs=[labelled(UnmetNeed.of(n)) for n in json.loads(row.unmet_needs)],
        place_id=row.place_id,
        complex=row.complex,
        status=row.status,
        escalated=row.escalated,
        returned=row.returned,
        received_at=row.received_at,
        outcome_at=row.outcome_at,
        review_on=row.review_on,
        outreach_id=row.outreach_id,
        days_without_outcome=days,
    )


class ContactView(BaseModel):
    attempt: int
    method: LabelledValue
    result: LabelledValue
    note: str | None
    contacted_at: Timestamp


class StageView(BaseModel):
    stage: LabelledValue
    note: str | None
    changed_at: Timestamp


class OutreachView(BaseModel):
    outreach_id: str
    household_id: str | None
    member_id: str | None
    agency_id: str
    origin: LabelledValue
    origin_ref: str | None
    consultation_id: str | None = Field(
        description="origin consultation (アウトリーチへ): the consultation it was started from"
    )
    concerns: list[LabelledValue]
    reason: str | None
    location: str | None
    reporter_name: str | None
    reporter_contact: str | None
    started_at: Timestamp | None
    stage: LabelledValue
    contacts: list[ContactView]
    stages: list[StageView]
    ended_reason: LabelledValue | None
    ended_at: Timestamp | None
    version: int


def outreach_view(o: Outreach) -> OutreachView:
    assert o.origin is not None
    return OutreachView(
        outreach_id=o.outreach_id,
        household_id=o.household_id,
        member_id=o.member_id,
        agency_id=o.agency_id,
        origin=labelled(o.origin),
        origin_ref=o.origin_ref,
        consultation_id=o.origin_ref if o.origin is OutreachOrigin.CONSULTATION else None,
        concerns=[labelled(c) for c in o.concerns],
        reason=o.reason,
        location=o.location,
        reporter_name=o.reporter_name,
        reporter_contact=o.reporter_contact,
        started_at=o.started_at,
        stage=labelled(o.stage),
        contacts=[
            ContactView(
                attempt=c.attempt,
                method=labelled(c.method),
                result=labelled(c.result),
                note=c.note,
                contacted_at=c.contacted_at,
            )
            for c in o.contacts
        ],
        stages=[
            StageView(stage=labelled(s.stage), note=s.note, changed_at=s.changed_at)
            for s in o.stages
        ],
        ended_reason=labelled_opt(o.ended_reason),
        ended_at=o.ended_at,
        version=o.version,
    )


class OutreachSummary(BaseModel):
    """An outreach case as lists show it: a summary without personal text or the
    contact history (GET /outreach/{id} has them)."""

    outreach_id: str
    household_id: str | None
    member_id: str | None
    agency_id: str
    origin: LabelledValue
    origin_ref: str | None
    concerns: list[LabelledValue]
    stage: LabelledValue
    attempts: int
    last_result: LabelledValue | None
    last_contact_at: Timestamp | None
    status: str
    started_at: Timestamp


def outreach_row(row: Any) -> OutreachSummary:
    return OutreachSummary(
        outreach_id=row.outreach_id,
        household_id=row.household_id,
        member_id=row.member_id,
        agency_id=row.agency_id,
        origin=labelled(OutreachOrigin.of(row.origin)),
        origin_ref=row.origin_ref,
        concerns=[labelled(Concern.of(c)) for c in json.loads(row.concerns)],
        stage=labelled(RelationshipStage.of(row.stage)),
        attempts=row.attempts,
        last_result=labelled(ContactResult.of(row.last_result)) if row.last_result else None,
        last_contact_at=row.last_contact_at,
        status=row.status,
        started_at=row.started_at,
    )


class HouseholdPicture(BaseModel):
    """A household's current picture, as far as the caller may read it: its members
    and consents, and each record the caller is party to or that the consent of every
    person it is about opens to the caller."""

    household_id: str
    access: Literal["full", "own"] = Field(
        description="full: every member's records are open to the caller; own: what the "
        "caller is party to, plus the records of the members listed in opened_by_consent"
    )
    opened_by_consent: list[str] = Field(
        description="members whose own consent opens their records to the caller's agency"
    )
    records: list[str]
    registered_by: str
    registered_at: Timestamp | None
    address: str | None
    phone: str | None
    members: list[MemberView] = Field(
        description="each person once, with today's state (alive, living in the household, "
        "in a facility, certifications)"
    )
    life_events: list[LifeEventView] = Field(
        description="deaths, moves and facility stays of the members, by date (retracted "
        "records left out; the history is at /households/{id}/members/{member_id}/history)"
    )
    dismissed_duplicates: list[DismissedDuplicateView] = Field(
        description="duplicate candidates dismissed when this household, or another "
        "naming this one as a candidate, was registered"
    )
    consents: list[ConsentView]
    proxies: list[ProxyView]
    refusals: list[RefusalView]
    consultations: list[ConsultationSummary]
    referrals: list[ReferralSummary]
    outreach: list[OutreachSummary]
    version: int


class OutcomeCounts(BaseModel):
    agency_id: str
    received: int
    pending: int
    handled: int
    information_given: int = Field(description="情報提供・助言")
    accompanying: int = Field(description="伴走継続: open by design, never unresolved")
    outreach: int = Field(description="アウトリーチへ")
    referred: int
    escalated: int
    unresolved: int = Field(description="pending for longer than the unresolved threshold")


class PlaceView(BaseModel):
    """地域の相談の場: a community place of an agency."""

    place_id: str
    name: str
    kind: LabelledValue
    registered_at: Timestamp


class AgencyView(BaseModel):
    """An agency as intake knows it: its kind of window and its community places."""

    agency_id: str
    window: LabelledValue | None = Field(
        description="the kind of window it recorded; a consultation it takes up from a "
        "resident's 気づき is received at this window (その他の支援関係機関 while none)"
    )
    places: list[PlaceView]
    version: int


def agency_view(a: Agency) -> AgencyView:
    return AgencyView(
        agency_id=a.agency_id,
        window=labelled_opt(a.window),
        places=[
            PlaceView(
                place_id=p.place_id,
                name=p.name,
                kind=labelled(p.kind),
                registered_at=p.registered_at,
            )
            for p in a.places.values()
        ],
        version=a.version,
    )


class Inbox(BaseModel):
    agency_id: str | None = Field(
        description="the agency whose work this is; null for an auditor's (every agency's)"
    )
    referrals_to_answer: list[ReferralSummary] = Field(description="つなぎ: accept or decline")
    referrals_to_complete: list[ReferralSummary] = Field(description="accepted, not yet completed")
    returned_referrals: list[ConsultationSummary] = Field(
        description="consultations whose referral was declined: decide their outcome again"
    )
    unresolved_intakes: list[ConsultationSummary] = Field(
        description="consultations with no outcome after the unresolved threshold"
    )
    awaiting_outcome: int = Field(description="consultations still without an outcome")
    accompaniment_reviews_due: list[ConsultationSummary] = Field(
        description="伴走継続 whose review date has come: review them and set the next date"
    )
    outreach: list[OutreachSummary] = Field(
        description="active outreach cases, longest without contact first"
    )


class DuplicateCandidate(BaseModel):
    household_id: str
    matched_on: list[str]
    strength: str
    registered_by: str | None


class PossibleDuplicate(Error):
    """409 answer of POST /households: the error envelope, and the existing records that
    may be this household (``candidates``, empty for any other conflict)."""

    candidates: list[DuplicateCandidate] = Field(default_factory=list)


class SearchResult(BaseModel):
    household_id: str
    matched_on: list[str]
    registered_by: str | None
    member_count: int
    access: str
    member_names: list[str] | None = Field(
        None, description="only when the caller may read the household"
    )
