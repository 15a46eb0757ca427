"""Referrals (つなぎ), closed-loop: made → accepted / declined (with reason) → completed.

Both agencies see every step. A declined referral sends its consultation back to
the sender's inbox, outcome pending again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from kyosei_events.catalogue.intake import DeclineReason
from kyosei_events.model import DomainEvent
from kyosei_platform.auth import Identity, Role
from kyosei_platform.http import Runtime

from ..domain import consultation as domain
from ..projections import referrals
from .common import IfMatch, Note, Reader, Writer, not_found, now, record
from .consultations import load_consultation, stream
from .views import ReferralView, referral_row, referral_view

router = APIRouter(prefix="/referrals", tags=["referrals つなぎ"])


class Decline(BaseModel):
    reason: DeclineReason
    note: Note = None


class Complete(BaseModel):
    note: Note = None


async def _open(
    runtime: Runtime, identity: Identity, referral_id: str
) -> tuple[domain.Consultation, domain.Referral]:
    async with runtime.engine.connect() as conn:
        consultation_id = (
            await conn.execute(
                select(referrals.c.consultation_id).where(referrals.c.referral_id == referral_id)
            )
        ).scalar()
    missing = not_found("referral", "つなぎ", referral_id)
    if consultation_id is None:
        raise missing
    state = await load_consultation(runtime, consultation_id)
    r = state.referrals[referral_id]
    if identity.role is not Role.AUDITOR and identity.agency_id not in (r.from_agency, r.to_agency):
        raise missing
    return state, r


@router.get("", response_model=list[ReferralView])
async def list_referrals(
    identity: Reader,
    runtime: Runtime,
    direction: Literal["incoming", "outgoing"] = "incoming",
    status: Literal["made", "accepted", "declined", "completed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ReferralView]:
    """Referrals to the caller's agency (incoming) or from it (outgoing), newest first."""
    column = referrals.c.to_agency if direction == "incoming" else referrals.c.from_agency
    query = (
        select(referrals)
        .where(column == identity.agency_id)
        .order_by(referrals.c.made_at.desc())
        .limit(limit)
    )
    if status:
        query = query.where(referrals.c.status == status)
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [referral_row(r) for r in rows]


@router.get("/{referral_id}", response_model=ReferralView)
async def get_referral(referral_id: str, identity: Reader, runtime: Runtime) -> ReferralView:
    """One referral with its notes, for the two agencies (and auditors)."""
    state, r = await _open(runtime, identity, referral_id)
    return referral_view(state, r)


async def _answer(
    runtime: Runtime,
    identity: Identity,
    request: Request,
    referral_id: str,
    if_match: int | None,
    decide: Callable[[domain.Consultation], DomainEvent],
) -> ReferralView:
    state, _ = await _open(runtime, identity, referral_id)
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(state.consultation_id),
        state.household_id or state.consultation_id,
        lambda: decide(state),
    )
    return referral_view(state, state.referrals[referral_id])


@router.post("/{referral_id}/acceptance", response_model=ReferralView)
async def accept_referral(
    referral_id: str,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> ReferralView:
    """つなぎ受理: the receiving agency takes the referral on."""
    return await _answer(
        runtime,
        identity,
        request,
        referral_id,
        if_match,
        lambda s: domain.accept(s, referral_id, identity.agency_id, now()),
    )


@router.post("/{referral_id}/decline", response_model=ReferralView)
async def decline_referral(
    referral_id: str,
    body: Decline,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> ReferralView:
    """つなぎ辞退: decline, with the reason; the sender must decide again."""
    return await _answer(
        runtime,
        identity,
        request,
        referral_id,
        if_match,
        lambda s: domain.decline(s, referral_id, identity.agency_id, body.reason, body.note, now()),
    )


@router.post("/{referral_id}/completion", response_model=ReferralView)
async def complete_referral(
    referral_id: str,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    body: Complete | None = None,
    if_match: IfMatch = None,
) -> ReferralView:
    """つなぎ完了: the receiving agency finished the support it was asked for."""
    return await _answer(
        runtime,
        identity,
        request,
        referral_id,
        if_match,
        lambda s: domain.complete(
            s, referral_id, identity.agency_id, body.note if body else None, now()
        ),
    )
