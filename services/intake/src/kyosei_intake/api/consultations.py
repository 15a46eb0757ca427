"""Consultations (相談): received at any window, held to an outcome.

Outcomes: handled by the receiving agency, referred (つなぎ), or escalated to
多機関協働. A consultation left without an outcome for KYOSEI_INTAKE_UNRESOLVED_AFTER_DAYS
is listed as unresolved; the outcome report makes the never-refuse rule auditable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from kyosei_platform.api import Command, IfMatch, Note, Reader, RequestModel, tag, with_etag
from kyosei_platform.http import Runtime

from ..commands import consultations as commands
from ..domain.consultation import Consultation
from ..queries import consultations as queries
from ..settings import IntakeSettings
from ..views import ConsultationSummary, ConsultationView, OutcomeCounts, consultation_view

router = APIRouter(prefix="/consultations", tags=["consultations 相談"])


def _answer(response: Response, state: Consultation) -> ConsultationView:
    tag(response, state.version)
    return consultation_view(state)


@router.get("/unresolved", response_model=list[ConsultationSummary])
async def unresolved_consultations(
    identity: Reader,
    runtime: Runtime,
    older_than_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    agency_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ConsultationSummary]:
    """未対応の相談: consultations with no outcome after ``older_than_days`` (default
    KYOSEI_INTAKE_UNRESOLVED_AFTER_DAYS), oldest first. Staff see their agency's;
    coordinators and auditors see every agency's."""
    default = runtime.service_settings(IntakeSettings).unresolved_after_days
    days = default if older_than_days is None else older_than_days
    async with runtime.engine.connect() as conn:
        return await queries.unresolved(conn, identity, days=days, agency_id=agency_id, limit=limit)


@router.get("/outcomes", response_model=list[OutcomeCounts])
async def outcome_report(
    identity: Reader,
    runtime: Runtime,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> list[OutcomeCounts]:
    """相談の対応状況: per agency, how many consultations were received and what became
    of them. There is no 'refused' outcome: every consultation is counted here."""
    async with runtime.engine.connect() as conn:
        return await queries.outcome_counts(
            conn,
            identity,
            unresolved_after_days=runtime.service_settings(IntakeSettings).unresolved_after_days,
            received_from=received_from,
            received_to=received_to,
        )


@router.get("", response_model=list[ConsultationSummary])
async def list_consultations(
    identity: Reader,
    runtime: Runtime,
    household_id: Annotated[str | None, Query(max_length=64)] = None,
    status: queries.Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ConsultationSummary]:
    """Consultations received by the caller's agency (coordinators: escalated ones;
    auditors: all), newest first."""
    async with runtime.engine.connect() as conn:
        return await queries.consultation_list(
            conn, identity, household_id=household_id, status=status, limit=limit
        )


@router.get("/{consultation_id}", response_model=ConsultationView, responses=with_etag())
async def get_consultation(
    consultation_id: str, identity: Reader, runtime: Runtime, response: Response
) -> ConsultationView:
    """One consultation with its referrals, for the receiving agency, agencies it was
    referred to, coordinators once escalated, agencies that the consent of every
    person it is about names, and auditors."""
    return _answer(
        response, await commands.open_consultation(runtime.store, identity, consultation_id)
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsultationView,
    responses=with_etag(201),
)
async def receive_consultation(
    body: commands.ReceiveConsultation, ctx: Command, response: Response
) -> ConsultationView:
    """相談受付: record a consultation received at the caller's agency.

    Never refused for being outside the agency's field (断らない相談), nor because
    someone refused consent. The household and the members it is about may be
    unknown. With ``complex`` it is escalated to 多機関協働 in the same step.
    """
    return _answer(response, await commands.receive_consultation(ctx, body))


@router.post("/{consultation_id}/household", response_model=ConsultationView, responses=with_etag())
async def link_household(
    consultation_id: str,
    body: commands.LinkHousehold,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> ConsultationView:
    """世帯との紐づけ: link a consultation received without a household."""
    return _answer(response, await commands.link_household(ctx, consultation_id, body, if_match))


class Handle(RequestModel):
    note: Note = None


@router.post("/{consultation_id}/handled", response_model=ConsultationView, responses=with_etag())
async def handle_consultation(
    consultation_id: str,
    ctx: Command,
    response: Response,
    body: Handle | None = None,
    if_match: IfMatch = None,
) -> ConsultationView:
    """受付機関で対応: the receiving agency takes it on itself (an outcome)."""
    note = body.note if body else None
    return _answer(
        response, await commands.handle_consultation(ctx, consultation_id, note, if_match)
    )


@router.post(
    "/{consultation_id}/referrals",
    status_code=201,
    response_model=ConsultationView,
    responses=with_etag(201),
)
async def refer_consultation(
    consultation_id: str,
    body: commands.Refer,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> ConsultationView:
    """つなぎ: refer the consultation to another agency (an outcome). The receiving
    agency sees it in its inbox; if it declines, the consultation comes back here."""
    return _answer(
        response, await commands.refer_consultation(ctx, consultation_id, body, if_match)
    )


@router.post(
    "/{consultation_id}/escalation", response_model=ConsultationView, responses=with_etag()
)
async def escalate_consultation(
    consultation_id: str,
    body: commands.Escalate,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> ConsultationView:
    """多機関協働へつなぐ: escalate; coordination opens a case for it."""
    return _answer(
        response, await commands.escalate_consultation(ctx, consultation_id, body, if_match)
    )
