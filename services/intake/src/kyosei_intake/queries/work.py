"""Questions about an agency's work: its inbox, its referrals, its outreach cases."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_households import listed_agency
from kyosei_platform.application import now, today
from kyosei_platform.auth import Identity

from ..projections import consultations, day, outreach_cases, referrals, utc
from ..views import (
    Inbox,
    OutreachSummary,
    ReferralSummary,
    consultation_row,
    outreach_row,
    referral_row,
)


async def inbox(conn: AsyncConnection, identity: Identity, *, unresolved_after_days: int) -> Inbox:
    """受信箱: referrals to act on, declined referrals back with the sender, unresolved
    intakes, accompaniments due for review and active outreach, for the caller's agency
    (auditors: every agency's)."""
    agency_id = listed_agency(identity)
    at = now()
    cutoff = utc(at - timedelta(days=unresolved_after_days))
    c, r, o = consultations.c, referrals.c, outreach_cases.c
    to_answer = select(referrals).where(r.status.in_(("made", "accepted"))).order_by(r.made_at)
    awaiting = select(consultations).where(c.status == "pending").order_by(c.received_at)
    reviews = (
        select(consultations)
        .where(c.status == "accompanying", c.review_on <= day(today()))
        .order_by(c.review_on, c.received_at)
    )
    running = (
        select(outreach_cases)
        .where(o.status == "active")
        .order_by(o.last_contact_at.is_not(None), o.last_contact_at)
    )
    if agency_id is not None:
        to_answer = to_answer.where(r.to_agency == agency_id)
        awaiting = awaiting.where(c.agency_id == agency_id)
        reviews = reviews.where(c.agency_id == agency_id)
        running = running.where(o.agency_id == agency_id)
    incoming = (await conn.execute(to_answer)).all()
    pending = (await conn.execute(awaiting)).all()
    accompaniment_due = [consultation_row(x) for x in await conn.execute(reviews)]
    active = await conn.execute(running)

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
    """Referrals to the caller's agency (incoming) or from it (outgoing), newest first;
    auditors: every agency's referrals (``direction`` then does not narrow the list)."""
    query = select(referrals).order_by(referrals.c.made_at.desc()).limit(limit)
    agency_id = listed_agency(identity)
    if agency_id is not None:
        column = referrals.c.to_agency if direction == "incoming" else referrals.c.from_agency
        query = query.where(column == agency_id)
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
    agency_id = listed_agency(identity)
    if agency_id is not None:
        query = query.where(o.agency_id == agency_id)
    if not include_ended:
        query = query.where(o.status == "active")
    return [outreach_row(x) for x in await conn.execute(query)]
