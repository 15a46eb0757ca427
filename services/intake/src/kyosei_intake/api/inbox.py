"""An agency's inbox: everything that waits for it to act."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from kyosei_platform.api import Reader
from kyosei_platform.application import now
from kyosei_platform.http import Runtime

from ..projections import consultations, outreach_cases, referrals, utc
from ..settings import IntakeSettings
from ..views import (
    ConsultationSummary,
    OutreachSummary,
    ReferralView,
    consultation_row,
    outreach_row,
    referral_row,
)

router = APIRouter(prefix="/inbox", tags=["inbox 受信箱"])


class Inbox(BaseModel):
    agency_id: str
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


@router.get("", response_model=Inbox)
async def inbox(identity: Reader, runtime: Runtime) -> Inbox:
    """受信箱: referrals to act on, declined referrals back with the sender,
    unresolved intakes and active outreach, for the caller's agency."""
    me = identity.agency_id
    at = now()
    days = runtime.service_settings(IntakeSettings).unresolved_after_days
    cutoff = utc(at - timedelta(days=days))
    c, r, o = consultations.c, referrals.c, outreach_cases.c
    async with runtime.engine.connect() as conn:
        incoming = (
            await conn.execute(
                select(referrals)
                .where(r.to_agency == me, r.status.in_(("made", "accepted")))
                .order_by(r.made_at)
            )
        ).all()
        returned = (
            await conn.execute(
                select(consultations)
                .where(c.agency_id == me, c.status == "pending", c.returned)
                .order_by(c.received_at)
            )
        ).all()
        pending = (
            await conn.execute(
                select(consultations)
                .where(c.agency_id == me, c.status == "pending")
                .order_by(c.received_at)
            )
        ).all()
        active = (
            await conn.execute(
                select(outreach_cases)
                .where(o.agency_id == me, o.status == "active")
                .order_by(o.last_contact_at.is_not(None), o.last_contact_at)
            )
        ).all()

    def age(row: object) -> int:
        return (at - datetime.fromisoformat(row.received_at)).days  # type: ignore[attr-defined]

    return Inbox(
        agency_id=me,
        referrals_to_answer=[referral_row(x) for x in incoming if x.status == "made"],
        referrals_to_complete=[referral_row(x) for x in incoming if x.status == "accepted"],
        returned_referrals=[consultation_row(x, age(x)) for x in returned],
        unresolved_intakes=[
            consultation_row(x, age(x)) for x in pending if x.received_at <= cutoff
        ],
        awaiting_outcome=len(pending),
        outreach=[outreach_row(x) for x in active],
    )
