"""Consultations (相談): received at any window, held to an outcome.

Outcomes: handled by the receiving agency, referred (つなぎ), or escalated to
多機関協働. A consultation left without an outcome for KYOSEI_INTAKE_UNRESOLVED_AFTER_DAYS
is listed as unresolved; the outcome report makes the never-refuse rule auditable.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from kyosei_households import same_household
from kyosei_platform.api import Command, IfMatch, Note, Reader
from kyosei_platform.application import now
from kyosei_platform.auth import Role
from kyosei_platform.http import Runtime

from ..commands import consultations as commands
from ..projections import consultations, utc
from ..settings import IntakeSettings
from ..views import ConsultationSummary, ConsultationView, consultation_row, consultation_view

router = APIRouter(prefix="/consultations", tags=["consultations 相談"])


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
            ids = await same_household(conn, household_id)
            query = query.where(consultations.c.household_id.in_(ids))
        rows = (await conn.execute(query)).all()
    return [consultation_row(r) for r in rows]


@router.get("/{consultation_id}", response_model=ConsultationView)
async def get_consultation(
    consultation_id: str, identity: Reader, runtime: Runtime
) -> ConsultationView:
    """One consultation with its referrals, for the receiving agency, agencies it was
    referred to, coordinators once escalated, agencies that the consent of every
    person it is about names, and auditors."""
    return consultation_view(
        await commands.open_consultation(runtime.store, identity, consultation_id)
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConsultationView)
async def receive_consultation(
    body: commands.ReceiveConsultation, ctx: Command
) -> ConsultationView:
    """相談受付: record a consultation received at the caller's agency.

    Never refused for being outside the agency's field (断らない相談), nor because
    someone refused consent. The household and the members it is about may be
    unknown. With ``complex`` it is escalated to 多機関協働 in the same step.
    """
    return consultation_view(await commands.receive_consultation(ctx, body))


@router.post("/{consultation_id}/household", response_model=ConsultationView)
async def link_household(
    consultation_id: str, body: commands.LinkHousehold, ctx: Command, if_match: IfMatch = None
) -> ConsultationView:
    """世帯との紐づけ: link a consultation received without a household."""
    return consultation_view(await commands.link_household(ctx, consultation_id, body, if_match))


class Handle(BaseModel):
    note: Note = None


@router.post("/{consultation_id}/handled", response_model=ConsultationView)
async def handle_consultation(
    consultation_id: str, ctx: Command, body: Handle | None = None, if_match: IfMatch = None
) -> ConsultationView:
    """受付機関で対応: the receiving agency takes it on itself (an outcome)."""
    note = body.note if body else None
    return consultation_view(
        await commands.handle_consultation(ctx, consultation_id, note, if_match)
    )


@router.post("/{consultation_id}/referrals", status_code=201, response_model=ConsultationView)
async def refer_consultation(
    consultation_id: str, body: commands.Refer, ctx: Command, if_match: IfMatch = None
) -> ConsultationView:
    """つなぎ: refer the consultation to another agency (an outcome). The receiving
    agency sees it in its inbox; if it declines, the consultation comes back here."""
    return consultation_view(
        await commands.refer_consultation(ctx, consultation_id, body, if_match)
    )


@router.post("/{consultation_id}/escalation", response_model=ConsultationView)
async def escalate_consultation(
    consultation_id: str, body: commands.Escalate, ctx: Command, if_match: IfMatch = None
) -> ConsultationView:
    """多機関協働へつなぐ: escalate; coordination opens a case for it."""
    return consultation_view(
        await commands.escalate_consultation(ctx, consultation_id, body, if_match)
    )
