"""Referrals (つなぎ), closed-loop: made → accepted / declined (with reason) → completed.

Both agencies see every step. A declined referral sends its consultation back to
the sender's inbox, outcome pending again.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from kyosei_platform.api import Command, IfMatch, Note, Reader
from kyosei_platform.http import Runtime

from ..commands import consultations as commands
from ..queries import work
from ..views import ReferralView, referral_view

router = APIRouter(prefix="/referrals", tags=["referrals つなぎ"])


class Complete(BaseModel):
    note: Note = None


@router.get("", response_model=list[ReferralView])
async def list_referrals(
    identity: Reader,
    runtime: Runtime,
    direction: Literal["incoming", "outgoing"] = "incoming",
    status: Literal["made", "accepted", "declined", "completed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ReferralView]:
    """Referrals to the caller's agency (incoming) or from it (outgoing), newest first.
    Auditors see every agency's referrals, whatever the ``direction``."""
    async with runtime.engine.connect() as conn:
        return await work.referral_list(
            conn, identity, direction=direction, status=status, limit=limit
        )


@router.get("/{referral_id}", response_model=ReferralView)
async def get_referral(referral_id: str, identity: Reader, runtime: Runtime) -> ReferralView:
    """One referral with its notes, for the two agencies (and auditors)."""
    return referral_view(*await commands.open_referral(runtime.store, identity, referral_id))


@router.post("/{referral_id}/acceptance", response_model=ReferralView)
async def accept_referral(referral_id: str, ctx: Command, if_match: IfMatch = None) -> ReferralView:
    """つなぎ受理: the receiving agency takes the referral on."""
    return referral_view(*await commands.accept_referral(ctx, referral_id, if_match))


@router.post("/{referral_id}/decline", response_model=ReferralView)
async def decline_referral(
    referral_id: str, body: commands.DeclineReferral, ctx: Command, if_match: IfMatch = None
) -> ReferralView:
    """つなぎ辞退: decline, with the reason; the sender must decide again."""
    return referral_view(*await commands.decline_referral(ctx, referral_id, body, if_match))


@router.post("/{referral_id}/completion", response_model=ReferralView)
async def complete_referral(
    referral_id: str, ctx: Command, body: Complete | None = None, if_match: IfMatch = None
) -> ReferralView:
    """つなぎ完了: the receiving agency finished the support it was asked for."""
    note = body.note if body else None
    return referral_view(*await commands.complete_referral(ctx, referral_id, note, if_match))
