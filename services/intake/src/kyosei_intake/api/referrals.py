"""Referrals (つなぎ), closed-loop: made → accepted / declined (with reason) → completed.

Both agencies see every step. A declined referral sends its consultation back to
the sender's inbox, outcome pending again.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from kyosei_platform.api import Command, IfMatch, Note, Reader, RequestModel, tag, with_etag
from kyosei_platform.http import Runtime

from ..commands import consultations as commands
from ..domain.consultation import Consultation, Referral
from ..queries import work
from ..views import ReferralSummary, ReferralView, referral_view

router = APIRouter(prefix="/referrals", tags=["referrals つなぎ"])


class Complete(RequestModel):
    note: Note = None


def _answer(response: Response, answered: tuple[Consultation, Referral]) -> ReferralView:
    # A referral lives on its consultation's stream: its ETag is that stream's version.
    tag(response, answered[0].version)
    return referral_view(*answered)


@router.get("", response_model=list[ReferralSummary])
async def list_referrals(
    identity: Reader,
    runtime: Runtime,
    direction: Literal["incoming", "outgoing"] = "incoming",
    status: Literal["made", "accepted", "declined", "completed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ReferralSummary]:
    """Referrals to the caller's agency (incoming) or from it (outgoing), newest first,
    as summaries (without their notes). Auditors see every agency's referrals, whatever
    the ``direction``."""
    async with runtime.engine.connect() as conn:
        return await work.referral_list(
            conn, identity, direction=direction, status=status, limit=limit
        )


@router.get("/{referral_id}", response_model=ReferralView, responses=with_etag())
async def get_referral(
    referral_id: str, identity: Reader, runtime: Runtime, response: Response
) -> ReferralView:
    """One referral with its notes, for the two agencies (and auditors). Its ``ETag``
    is its consultation's version (a referral is written on its consultation)."""
    return _answer(response, await commands.open_referral(runtime.store, identity, referral_id))


@router.post("/{referral_id}/acceptance", response_model=ReferralView, responses=with_etag())
async def accept_referral(
    referral_id: str, ctx: Command, response: Response, if_match: IfMatch = None
) -> ReferralView:
    """つなぎ受理: the receiving agency takes the referral on."""
    return _answer(response, await commands.accept_referral(ctx, referral_id, if_match))


@router.post("/{referral_id}/decline", response_model=ReferralView, responses=with_etag())
async def decline_referral(
    referral_id: str,
    body: commands.DeclineReferral,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralView:
    """つなぎ辞退: decline, with the reason; the sender must decide again."""
    return _answer(response, await commands.decline_referral(ctx, referral_id, body, if_match))


@router.post("/{referral_id}/completion", response_model=ReferralView, responses=with_etag())
async def complete_referral(
    referral_id: str,
    ctx: Command,
    response: Response,
    body: Complete | None = None,
    if_match: IfMatch = None,
) -> ReferralView:
    """つなぎ完了: the receiving agency finished the support it was asked for."""
    note = body.note if body else None
    return _answer(response, await commands.complete_referral(ctx, referral_id, note, if_match))
