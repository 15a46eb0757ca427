"""Outreach (アウトリーチ): cases for people who do not come, contact attempts over
time and the relationship's stage. A case may run for years."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from kyosei_events.catalogue.common import Concern, Id
from kyosei_events.catalogue.intake import (
    ContactMethod,
    ContactResult,
    OutreachEndReason,
    OutreachOrigin,
    OutreachStarted,
    RelationshipStage,
)
from kyosei_platform.auth import Identity, Role
from kyosei_platform.errors import ApiError
from kyosei_platform.http import Runtime

from ..access import Access
from ..domain import outreach as domain
from ..projections import outreach_cases
from .common import (
    IfMatch,
    Note,
    Reader,
    Writer,
    load,
    metadata,
    not_found,
    now,
    record,
    save,
)
from .households import open_household
from .views import OutreachSummary, OutreachView, outreach_row, outreach_view

router = APIRouter(prefix="/outreach", tags=["outreach アウトリーチ"])


def stream(outreach_id: str) -> str:
    return f"outreach-{outreach_id}"


class StartOutreach(BaseModel):
    household_id: Id | None = Field(None, description="世帯 id, if registered")
    member_id: Id | None = None
    location: str | None = Field(None, max_length=200, description="where to go (personal)")
    concerns: list[Concern] = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=20_000, description="why (personal)")


class RecordContact(BaseModel):
    method: ContactMethod
    result: ContactResult
    note: Note = None
    contacted_at: datetime | None = Field(None, description="default: now")

    @field_validator("contacted_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-24T10:00:00+09:00")
        if v is not None and v > now() + timedelta(minutes=5):
            raise ValueError("cannot be in the future")
        return v


class ChangeStage(BaseModel):
    stage: RelationshipStage
    note: Note = None


class EndOutreach(BaseModel):
    reason: OutreachEndReason
    note: Note = None


async def _open(runtime: Runtime, identity: Identity, outreach_id: str) -> domain.Outreach:
    missing = not_found("outreach", "アウトリーチ", outreach_id)
    state = await load(
        runtime.store, stream(outreach_id), lambda: domain.Outreach(outreach_id), missing
    )
    if identity.role is Role.AUDITOR or identity.agency_id == state.agency_id:
        return state
    if state.household_id is not None:
        # Agencies the household's consent names read its outreach too.
        loaded = await open_household(runtime, identity, state.household_id, Access.NONE)
        if loaded.access is Access.FULL:
            return state
    raise missing


def _subject(state: domain.Outreach) -> str:
    return state.household_id or state.outreach_id


def _must_run(identity: Identity, state: domain.Outreach) -> None:
    if identity.agency_id != state.agency_id:
        raise ApiError(
            403,
            "not_the_outreach_agency",
            f"only the agency running this outreach ({state.agency_id}) records on it",
            "このアウトリーチを記録できるのは担当機関だけです",
        )


@router.post("", status_code=201, response_model=OutreachView)
async def start_outreach(
    body: StartOutreach, identity: Writer, runtime: Runtime, request: Request
) -> OutreachView:
    """アウトリーチ開始: start reaching out to someone, on a staff decision."""
    household_id = body.household_id
    if household_id is not None:
        household_id = (await open_household(runtime, identity, household_id)).survivor.household_id
    outreach_id = str(uuid.uuid4())
    started = OutreachStarted(
        outreach_id=outreach_id,
        household_id=household_id,
        member_id=body.member_id,
        agency_id=identity.agency_id,
        origin=OutreachOrigin.STAFF,
        concerns=body.concerns,
        reason=body.reason,
        location=body.location,
        reporter_name=None,
        reporter_contact=None,
        started_at=now(),
    )
    state = domain.Outreach(outreach_id)
    await save(
        runtime.store,
        state,
        stream(outreach_id),
        [started],
        household_id or outreach_id,
        metadata(request, identity),
        0,
    )
    return outreach_view(state)


@router.get("", response_model=list[OutreachSummary])
async def list_outreach(
    identity: Reader,
    runtime: Runtime,
    include_ended: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[OutreachSummary]:
    """The caller's agency's outreach cases (auditors: all), longest without contact
    first."""
    query = (
        select(outreach_cases)
        .order_by(outreach_cases.c.last_contact_at.is_not(None), outreach_cases.c.last_contact_at)
        .limit(limit)
    )
    if identity.role is not Role.AUDITOR:
        query = query.where(outreach_cases.c.agency_id == identity.agency_id)
    if not include_ended:
        query = query.where(outreach_cases.c.status == "active")
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [outreach_row(r) for r in rows]


@router.get("/{outreach_id}", response_model=OutreachView)
async def get_outreach(outreach_id: str, identity: Reader, runtime: Runtime) -> OutreachView:
    """One outreach case with every contact attempt and stage change."""
    return outreach_view(await _open(runtime, identity, outreach_id))


@router.post("/{outreach_id}/contacts", status_code=201, response_model=OutreachView)
async def record_contact(
    outreach_id: str,
    body: RecordContact,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> OutreachView:
    """訪問・接触記録: record a contact attempt and its result."""
    state = await _open(runtime, identity, outreach_id)
    _must_run(identity, state)
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(outreach_id),
        _subject(state),
        lambda: domain.record_contact(
            state, body.method, body.result, body.note, body.contacted_at or now()
        ),
    )
    return outreach_view(state)


@router.post("/{outreach_id}/stage", response_model=OutreachView)
async def change_stage(
    outreach_id: str,
    body: ChangeStage,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> OutreachView:
    """関係づくりの段階: record where the relationship now stands."""
    state = await _open(runtime, identity, outreach_id)
    _must_run(identity, state)
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(outreach_id),
        _subject(state),
        lambda: domain.change_stage(state, body.stage, body.note, now()),
    )
    return outreach_view(state)


@router.post("/{outreach_id}/end", response_model=OutreachView)
async def end_outreach(
    outreach_id: str,
    body: EndOutreach,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> OutreachView:
    """アウトリーチ終了 (optional): e.g. the person is now connected to support."""
    state = await _open(runtime, identity, outreach_id)
    _must_run(identity, state)
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(outreach_id),
        _subject(state),
        lambda: domain.end(state, body.reason, body.note, now()),
    )
    return outreach_view(state)
