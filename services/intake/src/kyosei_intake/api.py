"""HTTP API of intake: 相談受付 at any window, escalation to 多機関協働."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from kyosei_events import Metadata, NewEvent
from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.intake import Channel, ConsultationReceived, Window
from kyosei_platform.auth import CurrentIdentity, Identity, Role
from kyosei_platform.errors import ApiError
from kyosei_platform.http import Runtime

from . import domain
from .projections import consultations

router = APIRouter(prefix="/consultations", tags=["consultations 相談"])


class ReceiveConsultation(BaseModel):
    """相談受付: what a window records. Any concern is accepted."""

    household_id: str | None = Field(
        None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="世帯 id, if known"
    )
    window: Window
    channel: Channel
    concerns: list[Concern] = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=20_000, description="相談内容 (personal data)")
    caller_name: str | None = Field(None, max_length=200, description="相談者名 (personal data)")
    complex: bool = Field(False, description="複合・複雑: escalate to 多機関協働 at once")
    escalation_reason: str | None = Field(None, max_length=20_000)
    received_at: datetime | None = Field(None, description="when it was received; default now")

    @model_validator(mode="after")
    def _aware(self) -> ReceiveConsultation:
        if self.received_at is not None and self.received_at.tzinfo is None:
            raise ValueError("received_at needs a time zone, e.g. 2026-11-24T10:00:00+09:00")
        return self


class Escalate(BaseModel):
    reason: str = Field(min_length=1, max_length=20_000, description="なぜ多機関協働か")


class LabelledValue(BaseModel):
    value: str
    label_ja: str


class ConsultationView(BaseModel):
    consultation_id: str
    household_id: str | None
    agency_id: str
    window: LabelledValue
    channel: LabelledValue
    concerns: list[LabelledValue]
    summary: str | None
    caller_name: str | None
    complex: bool
    status: domain.Status
    escalation_reason: str | None
    received_at: datetime | None
    version: int


class ConsultationSummary(BaseModel):
    consultation_id: str
    household_id: str | None
    agency_id: str
    concerns: list[str]
    complex: bool
    status: str
    received_at: str


def _labelled(v: Window | Channel | Concern) -> LabelledValue:
    return LabelledValue(value=v.value, label_ja=v.label_ja)


def _meta(identity: Identity, correlation_id: str) -> Metadata:
    return Metadata(
        correlation_id=correlation_id, agency_id=identity.agency_id, staff_id=identity.staff_id
    )


def _stream(consultation_id: str) -> str:
    return f"consultation-{consultation_id}"


def _may_read(identity: Identity, state: domain.Consultation) -> bool:
    return (
        identity.role in (Role.COORDINATOR, Role.AUDITOR) or identity.agency_id == state.agency_id
    )


async def _load(runtime: Runtime, consultation_id: str) -> domain.Consultation:
    events, _ = await runtime.store.load(_stream(consultation_id))
    if not events:
        raise ApiError(
            404,
            "consultation_not_found",
            f"no consultation {consultation_id}",
            "該当する相談がありません",
        )
    state = domain.Consultation(consultation_id)
    for d in events:
        state.evolve(d.event)
    return state


def _view(state: domain.Consultation) -> ConsultationView:
    assert state.window is not None and state.channel is not None
    return ConsultationView(
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        agency_id=state.agency_id,
        window=_labelled(state.window),
        channel=_labelled(state.channel),
        concerns=[_labelled(c) for c in state.concerns],
        summary=state.summary,
        caller_name=state.caller_name,
        complex=state.complex,
        status=state.status,
        escalation_reason=state.escalation_reason,
        received_at=state.received_at,
        version=state.version,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConsultationView)
async def receive_consultation(
    body: ReceiveConsultation,
    identity: CurrentIdentity,
    runtime: Runtime,
    x_correlation_id: Annotated[str | None, Header()] = None,
) -> ConsultationView:
    """相談受付: record a consultation received at the caller's agency.

    Never refused for being outside the agency's field. With ``complex`` the
    consultation is escalated to 多機関協働 in the same step (CaseEscalated).
    """
    now = datetime.now(UTC)
    consultation_id = str(uuid.uuid4())
    received = ConsultationReceived(
        consultation_id=consultation_id,
        household_id=body.household_id,
        agency_id=identity.agency_id,
        window=body.window,
        channel=body.channel,
        concerns=body.concerns,
        summary=body.summary,
        caller_name=body.caller_name,
        complex=body.complex,
        received_at=body.received_at or now,
    )
    meta = _meta(identity, x_correlation_id or consultation_id)
    subject = body.household_id or consultation_id
    decided = domain.receive(received, body.escalation_reason, now)
    await runtime.store.append(
        _stream(consultation_id), [NewEvent(e, subject, meta) for e in decided], 0
    )
    state = domain.Consultation(consultation_id)
    for e in decided:
        state.evolve(e)
    return _view(state)


@router.get("/{consultation_id}", response_model=ConsultationView)
async def get_consultation(
    consultation_id: str, identity: CurrentIdentity, runtime: Runtime
) -> ConsultationView:
    """One consultation, as the receiving agency, coordinators and auditors may read it."""
    state = await _load(runtime, consultation_id)
    if not _may_read(identity, state):
        raise ApiError(
            403,
            "not_your_consultation",
            "only the receiving agency, coordinators and auditors may read it",
            "この相談を閲覧する権限がありません",
        )
    return _view(state)


@router.post("/{consultation_id}/escalation", response_model=ConsultationView)
async def escalate_consultation(
    consultation_id: str,
    body: Escalate,
    identity: CurrentIdentity,
    runtime: Runtime,
    if_match: Annotated[
        int | None, Header(description="the version you read (409 if stale)")
    ] = None,
) -> ConsultationView:
    """多機関協働へつなぐ: escalate a consultation; coordination opens a case for it."""
    state = await _load(runtime, consultation_id)
    if not _may_read(identity, state):
        raise ApiError(
            403,
            "not_your_consultation",
            "only the receiving agency may escalate it",
            "この相談をつなぐ権限がありません",
        )
    try:
        event = domain.escalate(state, body.reason, datetime.now(UTC))
    except domain.AlreadyEscalated:
        raise ApiError(
            409,
            "already_escalated",
            "this consultation is already escalated",
            "この相談はすでに多機関協働につないでいます",
        ) from None
    expected = if_match if if_match is not None else state.version
    subject = state.household_id or consultation_id
    await runtime.store.append(
        _stream(consultation_id),
        [NewEvent(event, subject, _meta(identity, consultation_id))],
        expected,
    )
    state.evolve(event)
    return _view(state)


@router.get("", response_model=list[ConsultationSummary])
async def list_consultations(
    identity: CurrentIdentity,
    runtime: Runtime,
    household_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ConsultationSummary]:
    """Consultations visible to the caller: their agency's, or all for coordinators and auditors."""
    query = select(consultations).order_by(consultations.c.received_at.desc()).limit(limit)
    if identity.role not in (Role.COORDINATOR, Role.AUDITOR):
        query = query.where(consultations.c.agency_id == identity.agency_id)
    if household_id:
        query = query.where(consultations.c.household_id == household_id)
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [ConsultationSummary(**{**r, "concerns": json.loads(r["concerns"])}) for r in rows]
