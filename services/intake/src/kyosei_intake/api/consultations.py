"""Consultations (相談): received at any window, held to an outcome.

Outcomes: handled by the receiving agency, referred (つなぎ), or escalated to
多機関協働. A consultation left without an outcome for KYOSEI_INTAKE_UNRESOLVED_AFTER_DAYS
is listed as unresolved; the outcome report makes the never-refuse rule auditable.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select

from kyosei_events.catalogue.common import AgencyId, Concern, Id
from kyosei_events.catalogue.intake import Channel, ConsultationReceived, Window
from kyosei_platform.auth import Identity, Role
from kyosei_platform.errors import ApiError
from kyosei_platform.http import Runtime

from .. import queries
from ..access import Access, party_to
from ..domain import consultation as domain
from ..projections import consultations, utc
from ..settings import IntakeSettings
from .common import (
    IfMatch,
    Note,
    Reader,
    Writer,
    decided,
    load,
    metadata,
    not_found,
    now,
    record,
    save,
)
from .households import open_household
from .views import ConsultationSummary, ConsultationView, consultation_row, consultation_view

router = APIRouter(prefix="/consultations", tags=["consultations 相談"])


def stream(consultation_id: str) -> str:
    return f"consultation-{consultation_id}"


class ReceiveConsultation(BaseModel):
    """相談受付: what a window records. Any concern is accepted, from anyone."""

    household_id: Id | None = Field(None, description="世帯 id, if known (link it later if not)")
    window: Window
    channel: Channel
    concerns: list[Concern] = Field(min_length=1)
    other_concern: str | None = Field(
        None, max_length=20_000, description="required with concern 'other' (personal)"
    )
    summary: str = Field(min_length=1, max_length=20_000, description="相談内容 (personal)")
    caller_name: str | None = Field(None, max_length=200, description="相談者名 (personal)")
    caller_contact: str | None = Field(None, max_length=200, description="連絡先 (personal)")
    complex: bool = Field(False, description="複合・複雑: escalate to 多機関協働 at once")
    escalation_reason: str | None = Field(None, max_length=20_000)
    received_at: datetime | None = Field(None, description="when it was received; default now")

    @field_validator("received_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-24T10:00:00+09:00")
        if v is not None and v > now() + timedelta(minutes=5):
            raise ValueError("cannot be in the future")
        return v


class LinkHousehold(BaseModel):
    household_id: Id


class Handle(BaseModel):
    note: Note = None


class Refer(BaseModel):
    to_agency: AgencyId = Field(description="the agency asked to take it on")
    concerns: list[Concern] | None = Field(
        None, min_length=1, description="what the referral is for; default: all concerns"
    )
    note: Note = None


class Escalate(BaseModel):
    reason: str = Field(min_length=1, max_length=20_000, description="なぜ多機関協働か")


async def load_consultation(runtime: Runtime, consultation_id: str) -> domain.Consultation:
    return await load(
        runtime.store,
        stream(consultation_id),
        lambda: domain.Consultation(consultation_id),
        not_found("consultation", "相談", consultation_id),
    )


async def readable(runtime: Runtime, identity: Identity, state: domain.Consultation) -> bool:
    if identity.role is Role.AUDITOR or party_to(identity, state.parties(), state.escalated):
        return True
    if state.household_id is None:
        return False
    try:
        loaded = await open_household(runtime, identity, state.household_id, Access.NONE)
    except ApiError:
        return False
    return loaded.access is Access.FULL


async def open_consultation(
    runtime: Runtime, identity: Identity, consultation_id: str
) -> domain.Consultation:
    state = await load_consultation(runtime, consultation_id)
    if not await readable(runtime, identity, state):
        raise not_found("consultation", "相談", consultation_id)
    return state


def _must_be_receiver(identity: Identity, state: domain.Consultation) -> None:
    if identity.agency_id != state.agency_id:
        raise ApiError(
            403,
            "not_the_receiving_agency",
            f"only the receiving agency ({state.agency_id}) decides this consultation's outcome",
            "相談の対応を決められるのは受付機関だけです",
        )


async def _household(runtime: Runtime, identity: Identity, household_id: str) -> str:
    """A household id as it now is (following merges); 422 if there is none."""
    async with runtime.engine.connect() as conn:
        survivor = await queries.survivor_of(conn, household_id)
    if survivor is None:
        raise ApiError(
            422,
            "household_not_found",
            f"no household {household_id}: register it first, or leave household_id out "
            "and link it later",
            "該当する世帯がありません。"
            "先に世帯登録するか、household_id を空にして後で紐づけてください",
            field="household_id",
        )
    return survivor


def _subject(state: domain.Consultation) -> str:
    return state.household_id or state.consultation_id


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConsultationView)
async def receive_consultation(
    body: ReceiveConsultation, identity: Writer, runtime: Runtime, request: Request
) -> ConsultationView:
    """相談受付: record a consultation received at the caller's agency.

    Never refused for being outside the agency's field (断らない相談). The household
    may be unknown. With ``complex`` it is escalated to 多機関協働 in the same step.
    """
    household_id = (
        await _household(runtime, identity, body.household_id) if body.household_id else None
    )
    at = now()
    consultation_id = str(uuid.uuid4())
    received = ConsultationReceived(
        consultation_id=consultation_id,
        household_id=household_id,
        agency_id=identity.agency_id,
        window=body.window,
        channel=body.channel,
        concerns=body.concerns,
        other_concern=body.other_concern,
        summary=body.summary,
        caller_name=body.caller_name,
        caller_contact=body.caller_contact,
        complex=body.complex,
        received_at=body.received_at or at,
    )
    with decided():
        events = domain.receive(received, body.escalation_reason, at)
    state = domain.Consultation(consultation_id)
    await save(
        runtime.store,
        state,
        stream(consultation_id),
        events,
        household_id or consultation_id,
        metadata(request, identity),
        0,
    )
    return consultation_view(state)


@router.get("/unresolved", response_model=list[ConsultationSummary])
async def unresolved_consultations(
    identity: Reader,
    runtime: Runtime,
    older_than_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    agency_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ConsultationSummary]:
    """未対応の相談: consultations with no outcome after ``older_than_days`` (default
    KYOSEI_INTAKE_UNRESOLVED_AFTER_DAYS), oldest first. Staff see their agency's;
    coordinators and auditors see every agency's."""
    default = runtime.service_settings(IntakeSettings).unresolved_after_days
    days = default if older_than_days is None else older_than_days
    at = now()
    query = (
        select(consultations)
        .where(
            consultations.c.status == "pending",
            consultations.c.received_at <= utc(at - timedelta(days=days)),
        )
        .order_by(consultations.c.received_at)
        .limit(limit)
    )
    if identity.role is Role.STAFF:
        query = query.where(consultations.c.agency_id == identity.agency_id)
    elif agency_id:
        query = query.where(consultations.c.agency_id == agency_id)
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [consultation_row(r, (at - datetime.fromisoformat(r.received_at)).days) for r in rows]


class OutcomeCounts(BaseModel):
    agency_id: str
    received: int
    pending: int
    handled: int
    referred: int
    escalated: int
    unresolved: int = Field(description="pending for longer than the unresolved threshold")


@router.get("/outcomes", response_model=list[OutcomeCounts])
async def outcome_report(
    identity: Reader,
    runtime: Runtime,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> list[OutcomeCounts]:
    """相談の対応状況: per agency, how many consultations were received and what became
    of them. There is no 'refused' outcome: every consultation is counted here."""
    at = now()
    days = runtime.service_settings(IntakeSettings).unresolved_after_days
    cutoff = utc(at - timedelta(days=days))
    c = consultations.c
    query = (
        select(
            c.agency_id,
            func.count().label("received"),
            *(
                func.sum(func.cast(c.status == s, type_=consultations.c.version.type)).label(s)
                for s in ("pending", "handled", "referred", "escalated")
            ),
            func.sum(
                func.cast((c.status == "pending") & (c.received_at <= cutoff), c.version.type)
            ).label("unresolved"),
        )
        .group_by(c.agency_id)
        .order_by(c.agency_id)
    )
    if identity.role is Role.STAFF:
        query = query.where(c.agency_id == identity.agency_id)
    if received_from is not None:
        query = query.where(c.received_at >= utc(received_from))
    if received_to is not None:
        query = query.where(c.received_at < utc(received_to))
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        OutcomeCounts(**{k: int(v or 0) if k != "agency_id" else v for k, v in r._mapping.items()})
        for r in rows
    ]


@router.get("", response_model=list[ConsultationSummary])
async def list_consultations(
    identity: Reader,
    runtime: Runtime,
    household_id: str | None = None,
    status: Literal["pending", "handled", "referred", "escalated"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ConsultationSummary]:
    """Consultations received by the caller's agency (coordinators: escalated ones;
    auditors: all), newest first."""
    query = select(consultations).order_by(consultations.c.received_at.desc()).limit(limit)
    if identity.role is Role.STAFF:
        query = query.where(consultations.c.agency_id == identity.agency_id)
    elif identity.role is Role.COORDINATOR:
        query = query.where(
            (consultations.c.agency_id == identity.agency_id) | consultations.c.escalated
        )
    if status:
        query = query.where(consultations.c.status == status)
    async with runtime.engine.connect() as conn:
        if household_id:
            # A merged record's consultations belong to the household it was merged into.
            survivor = await queries.survivor_of(conn, household_id) or household_id
            ids = await queries.record_ids(conn, survivor)
            query = query.where(consultations.c.household_id.in_(ids))
        rows = (await conn.execute(query)).all()
    return [consultation_row(r) for r in rows]


@router.get("/{consultation_id}", response_model=ConsultationView)
async def get_consultation(
    consultation_id: str, identity: Reader, runtime: Runtime
) -> ConsultationView:
    """One consultation with its referrals, for the receiving agency, agencies it was
    referred to, coordinators once escalated, agencies the household's consent names,
    and auditors."""
    return consultation_view(await open_consultation(runtime, identity, consultation_id))


@router.post("/{consultation_id}/household", response_model=ConsultationView)
async def link_household(
    consultation_id: str,
    body: LinkHousehold,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> ConsultationView:
    """世帯との紐づけ: link a consultation received without a household."""
    state = await open_consultation(runtime, identity, consultation_id)
    _must_be_receiver(identity, state)
    household_id = await _household(runtime, identity, body.household_id)
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(consultation_id),
        household_id,
        lambda: domain.link_household(state, household_id, now()),
    )
    return consultation_view(state)


@router.post("/{consultation_id}/handled", response_model=ConsultationView)
async def handle_consultation(
    consultation_id: str,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    body: Handle | None = None,
    if_match: IfMatch = None,
) -> ConsultationView:
    """受付機関で対応: the receiving agency takes it on itself (an outcome)."""
    state = await open_consultation(runtime, identity, consultation_id)
    _must_be_receiver(identity, state)
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(consultation_id),
        _subject(state),
        lambda: domain.handle(state, body.note if body else None, now()),
    )
    return consultation_view(state)


@router.post("/{consultation_id}/referrals", status_code=201, response_model=ConsultationView)
async def refer_consultation(
    consultation_id: str,
    body: Refer,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> ConsultationView:
    """つなぎ: refer the consultation to another agency (an outcome). The receiving
    agency sees it in its inbox; if it declines, the consultation comes back here."""
    state = await open_consultation(runtime, identity, consultation_id)
    _must_be_receiver(identity, state)
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(consultation_id),
        _subject(state),
        lambda: domain.refer(
            state, str(uuid.uuid4()), body.to_agency, body.concerns, body.note, now()
        ),
    )
    return consultation_view(state)


@router.post("/{consultation_id}/escalation", response_model=ConsultationView)
async def escalate_consultation(
    consultation_id: str,
    body: Escalate,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> ConsultationView:
    """多機関協働へつなぐ: escalate; coordination opens a case for it."""
    state = await open_consultation(runtime, identity, consultation_id)
    _must_be_receiver(identity, state)
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(consultation_id),
        _subject(state),
        lambda: domain.escalate(state, body.reason, now()),
    )
    return consultation_view(state)
