"""The read side of intake: response bodies (enum values with their Japanese labels)
and the household picture, filtered record by record by the access rules."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.intake import (
    Channel,
    ContactResult,
    DeclineReason,
    OutreachOrigin,
    RelationshipStage,
    Window,
)
from kyosei_platform.api import LabelledValue, labelled, labelled_opt

from .domain.consultation import Consultation, Referral
from .domain.household import Consent, Member, Proxy, Refusal
from .domain.outreach import Outreach


class MemberView(BaseModel):
    member_id: str
    household_record: str
    name: str | None
    kana: str | None
    birth_date: date | None
    age_band: LabelledValue | None
    relationship: LabelledValue
    attributes: list[LabelledValue]
    language: str | None


def member_view(m: Member, record: str) -> MemberView:
    return MemberView(
        member_id=m.member_id,
        household_record=record,
        name=m.name,
        kana=m.kana,
        birth_date=m.birth_date,
        age_band=labelled_opt(m.age_band),
        relationship=labelled(m.relationship),
        attributes=[labelled(a) for a in m.attributes],
        language=m.language,
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


class ReferralView(BaseModel):
    referral_id: str
    consultation_id: str
    household_id: str | None
    from_agency: str
    to_agency: str
    concerns: list[LabelledValue]
    status: str
    decline_reason: LabelledValue | None
    made_at: datetime | str
    updated_at: datetime | str | None
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


def referral_row(row: Any) -> ReferralView:
    return ReferralView(
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
    status: Literal["pending", "handled", "referred", "escalated"]
    returned: bool
    escalated: bool
    escalation_reason: str | None
    handled_note: str | None
    concern_report_id: str | None
    received_at: datetime | None
    outcome_at: datetime | None
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
        status=s.outcome.value,
        returned=s.returned,
        escalated=s.escalated,
        escalation_reason=s.escalation_reason,
        handled_note=s.handled_note,
        concern_report_id=s.concern_report_id,
        received_at=s.received_at,
        outcome_at=s.outcome_at,
        referrals=[referral_view(s, r) for r in s.referrals.values()],
        version=s.version,
    )


class ConsultationSummary(BaseModel):
    """A consultation as lists show it (no personal data)."""

    consultation_id: str
    household_id: str | None
    member_ids: list[str]
    agency_id: str
    window: LabelledValue
    channel: LabelledValue
    concerns: list[LabelledValue]
    complex: bool
    status: str
    escalated: bool
    returned: bool
    received_at: str
    outcome_at: str | None
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
        complex=row.complex,
        status=row.status,
        escalated=row.escalated,
        returned=row.returned,
        received_at=row.received_at,
        outcome_at=row.outcome_at,
        days_without_outcome=days,
    )


class ContactView(BaseModel):
    attempt: int
    method: LabelledValue
    result: LabelledValue
    note: str | None
    contacted_at: datetime


class StageView(BaseModel):
    stage: LabelledValue
    note: str | None
    changed_at: datetime


class OutreachView(BaseModel):
    outreach_id: str
    household_id: str | None
    member_id: str | None
    agency_id: str
    origin: LabelledValue
    origin_ref: str | None
    concerns: list[LabelledValue]
    reason: str | None
    location: str | None
    reporter_name: str | None
    reporter_contact: str | None
    started_at: datetime | None
    stage: LabelledValue
    contacts: list[ContactView]
    stages: list[StageView]
    ended_reason: LabelledValue | None
    ended_at: datetime | None
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
    last_contact_at: str | None
    status: str
    started_at: str


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
    registered_at: datetime | None
    address: str | None
    phone: str | None
    members: list[MemberView]
    consents: list[ConsentView]
    proxies: list[ProxyView]
    refusals: list[RefusalView]
    consultations: list[ConsultationSummary]
    referrals: list[ReferralView]
    outreach: list[OutreachSummary]
    version: int


class OutcomeCounts(BaseModel):
    agency_id: str
    received: int
    pending: int
    handled: int
    referred: int
    escalated: int
    unresolved: int = Field(description="pending for longer than the unresolved threshold")


class Inbox(BaseModel):
    agency_id: str | None = Field(
        description="the agency whose work this is; null for an auditor's (every agency's)"
    )
    referrals_to_answer: list[ReferralView] = Field(description="つなぎ: accept or decline")
    referrals_to_complete: list[ReferralView] = Field(description="accepted, not yet completed")
    returned_referrals: list[ConsultationSummary] = Field(
        description="consultations whose referral was declined: decide their outcome again"
    )
    unresolved_intakes: list[ConsultationSummary] = Field(
        description="consultations with no outcome after the unresolved threshold"
    )
    awaiting_outcome: int = Field(description="consultations still without an outcome")
    outreach: list[OutreachSummary] = Field(
        description="active outreach cases, longest without contact first"
    )


class DuplicateCandidate(BaseModel):
    household_id: str
    matched_on: list[str]
    strength: str
    registered_by: str | None


class PossibleDuplicate(BaseModel):
    """409 answer of POST /households: existing records that may be this household."""

    error: dict[str, str]
    candidates: list[DuplicateCandidate]


class SearchResult(BaseModel):
    household_id: str
    matched_on: list[str]
    registered_by: str | None
    member_count: int
    access: str
    member_names: list[str] | None = Field(
        None, description="only when the caller may read the household"
    )
