"""Questions about consultations: lists, the unresolved, accompaniments due for review,
and the outcome report."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, get_args

from sqlalchemy import ColumnElement, Integer, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_households import listed_agency, same_household
from kyosei_platform.application import now
from kyosei_platform.auth import Identity, Role

from ..projections import consultations, day, utc
from ..views import ConsultationSummary, OutcomeCounts, Status, consultation_row

OUTCOMES: tuple[Status, ...] = get_args(Status)


async def consultation_list(
    conn: AsyncConnection,
    identity: Identity,
    *,
    household_id: str | None,
    status: Status | None,
    limit: int,
) -> list[ConsultationSummary]:
    """Consultations received by the caller's agency (coordinators: and the escalated
    ones; auditors: all), newest first; a merged record's belong to its household."""
    c = consultations.c
    query = select(consultations).order_by(c.received_at.desc()).limit(limit)
    agency_id = listed_agency(identity)
    if identity.role is Role.COORDINATOR:
        query = query.where((c.agency_id == agency_id) | c.escalated)
    elif agency_id is not None:
        query = query.where(c.agency_id == agency_id)
    if status:
        query = query.where(c.status == status)
    if household_id:
        query = query.where(c.household_id.in_(await same_household(conn, household_id)))
    return [consultation_row(r) for r in await conn.execute(query)]


async def unresolved(
    conn: AsyncConnection, identity: Identity, *, days: int, agency_id: str | None, limit: int
) -> list[ConsultationSummary]:
    """Consultations with no outcome after ``days``, oldest first: staff see their
    agency's, coordinators and auditors every agency's (or ``agency_id``'s). An
    accompaniment (伴走継続) has its outcome: it is never unresolved."""
    at = now()
    c = consultations.c
    query = (
        select(consultations)
        .where(c.status == "pending", c.received_at <= utc(at - timedelta(days=days)))
        .order_by(c.received_at)
        .limit(limit)
    )
    scope = listed_agency(identity, coordinators_see_all=True)
    if scope is not None or agency_id:
        query = query.where(c.agency_id == (scope or agency_id))
    return [
        consultation_row(r, (at - datetime.fromisoformat(r.received_at)).days)
        for r in await conn.execute(query)
    ]


async def reviews_due(
    conn: AsyncConnection, identity: Identity, *, on: date, agency_id: str | None, limit: int
) -> list[ConsultationSummary]:
    """Accompaniments (伴走継続) whose review date is ``on`` or earlier, earliest first:
    staff see their agency's, coordinators and auditors every agency's (or
    ``agency_id``'s)."""
    c = consultations.c
    query = (
        select(consultations)
        .where(c.status == "accompanying", c.review_on <= day(on))
        .order_by(c.review_on, c.received_at)
        .limit(limit)
    )
    if identity.role is Role.STAFF:
        query = query.where(c.agency_id == identity.agency_id)
    elif agency_id:
        query = query.where(c.agency_id == agency_id)
    return [consultation_row(r) for r in await conn.execute(query)]


async def outcome_counts(
    conn: AsyncConnection,
    identity: Identity,
    *,
    unresolved_after_days: int,
    received_from: datetime | None,
    received_to: datetime | None,
) -> list[OutcomeCounts]:
    """Per agency: consultations received and what became of them (staff: their own)."""
    cutoff = utc(now() - timedelta(days=unresolved_after_days))
    c = consultations.c

    def count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.sum(func.cast(condition, Integer))

    query = (
        select(
            c.agency_id,
            func.count().label("received"),
            *(count(c.status == s).label(s) for s in OUTCOMES),
            count((c.status == "pending") & (c.received_at <= cutoff)).label("unresolved"),
        )
        .group_by(c.agency_id)
        .order_by(c.agency_id)
    )
    scope = listed_agency(identity, coordinators_see_all=True)
    if scope is not None:
        query = query.where(c.agency_id == scope)
    if received_from is not None:
        query = query.where(c.received_at >= utc(received_from))
    if received_to is not None:
        query = query.where(c.received_at < utc(received_to))
    return [
        OutcomeCounts(**{k: int(v or 0) if k != "agency_id" else v for k, v in r._mapping.items()})
        for r in await conn.execute(query)
    ]
