"""Questions about an agency's work: its inbox, its referrals, its outreach cases."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_platform.application import now, today
from kyosei_platform.auth import Identity, Role

from ..projections import consultations, day, outreach_cases, referrals, utc
from ..views import (
    Inbox,
    OutreachSummary,
    ReferralSummary,
    consultation_row,
    outreach_row,
    referral_row,
)


async def inbox(conn: AsyncConnection, agency_id: str, *, unresolved_after_days: int) -> Inbox:
    """受信箱: referrals to act on, declined referrals back with the sender, unresolved
    intakes, accompaniments due for review and active outreach, for one agency."""
    at = now()
    cutoff = utc(at - timedelta(days=unresolved_after_days))
    c, r, o = consultations.c, referrals.c, outreach_cases.c
    incoming = (
        await conn.execute(
            select(referrals)
            .where(r.to_agency == agency_id, r.status.in_(("made", "accepted")))
            .order_by(r.made_at)
        )
    ).all()
    pending = (
        await conn.execute(
            select(consultations)
            .where(c.agency_id == agency_id, c.status == "pending")
            .order_by(c.received_at)
        )
    ).all()
    due = await conn.execute(
        select(consultations)
        .where(c.agency_id == agency_id, c.status == "accompanying", c.review_on <= day(today()))
        .order_by(c.review_on, c.received_at)
    )
    accompaniment_due = [consultation_row(x) for x in due]
    active = await conn.execute(
        select(outreach_cases)
        .where(o.agency_id == agency_id, o.status == "active")
        .order_by(o.last_contact_at.is_not(None), o.last_contact_at)
    )

    def age(received_at: str) -> int:
        return (at - datetime.fromisoformat(received_at)).days

    return Inbox(
        agency_id=agency_id,
        referrals_to_answer=[referral_row(x) for x in incoming if x.status == "made"],
        referrals_to_complete=[referral_row(x) for x in incoming if x.status == "accepted"],
        returned_referrals=[consultation_row(x, age(x.received_at)) for x in pending if x.returned],
        unresolved_intakes=[
            consultation_row(x, age(x.received_at)) for x in pending if x.received_at <= cutoff
        ],
        awaiting_outcome=len(pending),
        accompaniment_reviews_due=accompaniment_due,
        outreach=[outreach_row(x) for x in active],
    )


async def referral_list(
    conn: AsyncConnection,
    identity: Identity,
    *,
    direction: Literal["incoming", "outgoing"],
    status: str | None,
    limit: int,
) -> list[ReferralSummary]:
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
    return [referral_row(x) for x in await conn.execute(query)]


async def outreach_list(
    conn: AsyncConnection, identity: Identity, *, include_ended: bool, limit: int
) -> list[OutreachSummary]:
    """The caller's agency's outreach cases (auditors: all), longest without contact
    first."""
    o = outreach_cases.c
    query = (
        select(outreach_cases)
        .order_by(o.last_contact_at.is_not(None), o.last_contact_at)
        .limit(limit)
    )
    if identity.role is not Role.AUDITOR:
        query = query.where(o.agency_id == identity.agency_id)
    if not include_ended:
        query = query.where(o.status == "active")
    return [outreach_row(x) for x in await conn.execute(query)]
