"""Consultations (相談): received at any window, held to an outcome.

Outcomes: handled by the receiving agency, information or advice given (情報提供・助言),
continuing accompaniment (伴走継続: open by design, reviewed on a date), an outreach case
started from it (アウトリーチへ), referred (つなぎ), or escalated to 多機関協働. A
consultation left without an outcome for KYOSEI_INTAKE_UNRESOLVED_AFTER_DAYS is listed
as unresolved (an accompaniment never is); the outcome report makes the never-refuse
rule auditable.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from kyosei_platform.api import Command, IfMatch, Note, Reader, RequestModel, tag, with_etag
from kyosei_platform.application import today
from kyosei_platform.http import Runtime

from ..commands import consultations as commands
from ..commands import outreach as outreach_commands
from ..domain.consultation import Consultation
from ..queries import consultations as queries
from ..settings import IntakeSettings
from ..views import (
    ConsultationSummary,
    ConsultationView,
    OutcomeCounts,
    Status,
    consultation_view,
)

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


@router.get("/reviews-due", response_model=list[ConsultationSummary])
async def accompaniment_reviews_due(
    identity: Reader,
    runtime: Runtime,
    on: date | None = None,
    agency_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ConsultationSummary]:
    """伴走の振り返り予定: accompaniments (伴走継続) whose review date is ``on`` (default
    today, JST) or earlier, earliest first. Staff see their agency's; coordinators and
    auditors every agency's."""
    async with runtime.engine.connect() as conn:
        return await queries.reviews_due(
            conn, identity, on=on or today(), agency_id=agency_id, limit=limit
        )


@router.get("/outcomes", response_model=list[OutcomeCounts])
async def outcome_report(
    identity: Reader,
    runtime: Runtime,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> list[OutcomeCounts]:
    """相談の対応状況: per agency, how many consultations were received and what became
    of them. There is no 'refused' outcome: every consultation is counted here. An
    accompaniment (伴走継続) is counted as such, never as unresolved."""
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
    status: Status | None = None,
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


@router.put(
    "/{consultation_id}/unmet-needs", response_model=ConsultationView, responses=with_etag()
)
async def record_unmet_needs(
    consultation_id: str,
    body: commands.RecordUnmetNeeds,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> ConsultationView:
    """支援が届きにくい理由: the receiving agency records why it is hard to help
    (世帯の複合課題, 制度の狭間, 自ら相談できない), replacing what was recorded."""
    return _answer(
        response, await commands.record_unmet_needs(ctx, consultation_id, body, if_match)
    )


@router.post(
    "/{consultation_id}/information", response_model=ConsultationView, responses=with_etag()
)
async def provide_information(
    consultation_id: str,
    ctx: Command,
    response: Response,
    body: Handle | None = None,
    if_match: IfMatch = None,
) -> ConsultationView:
    """情報提供・助言: information or advice was given (an outcome: closed)."""
    note = body.note if body else None
    return _answer(
        response, await commands.provide_information(ctx, consultation_id, note, if_match)
    )


@router.post(
    "/{consultation_id}/accompaniment", response_model=ConsultationView, responses=with_etag()
)
async def continue_accompaniment(
    consultation_id: str,
    body: commands.ContinueAccompaniment,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> ConsultationView:
    """伴走継続: keep accompanying the person (an outcome, open by design): never
    unresolved, listed under /consultations/reviews-due when its review date comes."""
    return _answer(
        response, await commands.continue_accompaniment(ctx, consultation_id, body, if_match)
    )


@router.post(
    "/{consultation_id}/accompaniment/review",
    response_model=ConsultationView,
    responses=with_etag(),
)
async def review_accompaniment(
    consultation_id: str,
    body: commands.ReviewAccompaniment,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> ConsultationView:
    """伴走の振り返り: record a review of the accompaniment and its next review date."""
    return _answer(
        response, await commands.review_accompaniment(ctx, consultation_id, body, if_match)
    )


@router.post(
    "/{consultation_id}/outreach",
    status_code=201,
    response_model=ConsultationView,
    responses=with_etag(201),
)
async def move_to_outreach(
    consultation_id: str,
    ctx: Command,
    response: Response,
    body: outreach_commands.MoveToOutreach | None = None,
    if_match: IfMatch = None,
) -> ConsultationView:
    """アウトリーチへ: start an outreach case at the receiving agency from this
    consultation (an outcome). The consultation shows ``outreach_id``; the outreach case
    (GET /outreach/{outreach_id}) shows ``consultation_id``."""
    consultation, _ = await outreach_commands.move_to_outreach(
        ctx, consultation_id, body or outreach_commands.MoveToOutreach(), if_match
    )
    return _answer(response, consultation)
