"""The read side of coordination: case views and the questions asked of the case list.
Merged household records are followed through the household directory."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.coordination import ClosingReason, ReviewFlagReason
from kyosei_households import listed_agency, same_household
from kyosei_platform.api import LabelledValue, Timestamp, labelled
from kyosei_platform.application import not_found
from kyosei_platform.auth import Identity

from .projections import case_consultations, case_ended_members, case_review_flags, cases


class CaseConsultation(BaseModel):
    """A consultation behind the case: who escalated it and when it joined the case."""

    consultation_id: str
    escalated_by: str
    added_at: Timestamp


class ClosedInfo(BaseModel):
    """終結: why (``reason``, with its Japanese label), to whom when handed over, and when."""

    reason: LabelledValue
    handed_to: str | None
    closed_on: date


class EndedMember(BaseModel):
    """本人分の終結: a member whose support ended while the case goes on."""

    member_id: str
    reason: LabelledValue
    handed_to: str | None
    ended_on: date


class ReviewFlag(BaseModel):
    """見直しフラグ: a member's life change the case has not been reviewed since."""

    member_id: str
    change_id: str
    reason: LabelledValue = Field(
        description="parent_died, member_died, member_departed, facility_stay"
    )
    occurred_on: date


class CaseView(BaseModel):
    """A coordination case; lists carry the same fields as the case itself.

    ``status`` is ``open``, ``closed`` (``closed`` says why and when) or ``merged``
    (into ``merged_into``: the household's case that was open when this one learned
    its household). ``ended_members``: members whose support ended while the case goes
    on for the others. ``review_flags``: life changes of members (death, departure,
    facility stay) not yet answered by a review of the plan. ``consultation_id`` is the
    consultation it was opened for (None: opened directly by a coordinator, then
    ``opened_by`` names the coordinator's agency); ``consultations`` are all of them.
    ``member_ids``: the members it concerns (empty: the whole household)."""

    case_id: str
    household_id: str | None
    consultation_id: str | None
    escalated_by: str | None
    opened_by: str | None
    main_agency: str | None
    member_ids: list[str]
    consultations: list[CaseConsultation]
    concerns: list[LabelledValue]
    status: str
    merged_into: str | None
    closed: ClosedInfo | None
    ended_members: list[EndedMember]
    review_flags: list[ReviewFlag]
    opened_at: Timestamp
    version: int


def case_view(
    row: Any,
    consultations: Sequence[Any],
    ended: Sequence[Any] = (),
    flags: Sequence[Any] = (),
) -> CaseView:
    return CaseView(
        case_id=row.case_id,
        household_id=row.household_id,
        consultation_id=row.consultation_id,
        escalated_by=row.escalated_by,
        opened_by=row.opened_by,
        main_agency=row.main_agency,
        member_ids=json.loads(row.member_ids),
        consultations=[
            CaseConsultation(
                consultation_id=c.consultation_id, escalated_by=c.escalated_by, added_at=c.added_at
            )
            for c in consultations
        ],
        concerns=[labelled(Concern.of(c)) for c in json.loads(row.concerns)],
        status=row.status,
        merged_into=row.merged_into,
        closed=ClosedInfo(
            reason=labelled(ClosingReason.of(row.closed_reason)),
            handed_to=row.handed_to,
            closed_on=row.closed_on,
        )
        if row.closed_reason
        else None,
        ended_members=[
            EndedMember(
                member_id=m.member_id,
                reason=labelled(ClosingReason.of(m.reason)),
                handed_to=m.handed_to,
                ended_on=m.ended_on,
            )
            for m in ended
        ],
        review_flags=[
            ReviewFlag(
                member_id=f.member_id,
                change_id=f.change_id,
                reason=labelled(ReviewFlagReason.of(f.reason)),
                occurred_on=f.occurred_on,
            )
            for f in flags
        ],
        opened_at=row.opened_at,
        version=row.version,
    )


def visible_to(query: Select[Any], agency_id: str | None) -> Select[Any]:
    """Coordinators and auditors (None) see every case; an agency, the cases it
    coordinates or escalated a consultation of."""
    if agency_id is None:
        return query
    escalated = select(case_consultations.c.case_id).where(
        case_consultations.c.escalated_by == agency_id
    )
    return query.where(
        or_(
            cases.c.escalated_by == agency_id,
            cases.c.main_agency == agency_id,
            cases.c.case_id.in_(escalated),
        )
    )


async def visible_case_ids(
    conn: AsyncConnection, identity: Identity, case_ids: Iterable[str]
) -> set[str]:
    """Of ``case_ids``, those the caller may see: the rule of GET /cases/{id} (every
    consultation behind a case counts, not only the one it was opened for)."""
    wanted = set(case_ids)
    if not wanted:
        return set()
    query = visible_to(
        select(cases.c.case_id).where(cases.c.case_id.in_(wanted)),
        listed_agency(identity, coordinators_see_all=True),
    )
    return set((await conn.execute(query)).scalars())


async def _views(conn: AsyncConnection, rows: Sequence[Any]) -> list[CaseView]:
    ids = [r.case_id for r in rows]
    behind: dict[str, list[Any]] = {i: [] for i in ids}
    if ids:
        for c in await conn.execute(
            select(case_consultations)
            .where(case_consultations.c.case_id.in_(ids))
            .order_by(case_consultations.c.added_at, case_consultations.c.consultation_id)
        ):
            behind[c.case_id].append(c)
    ended: dict[str, list[Any]] = {i: [] for i in ids}
    flags: dict[str, list[Any]] = {i: [] for i in ids}
    if ids:
        for m in await conn.execute(
            select(case_ended_members)
            .where(case_ended_members.c.case_id.in_(ids))
            .order_by(case_ended_members.c.ended_on, case_ended_members.c.member_id)
        ):
            ended[m.case_id].append(m)
        for f in await conn.execute(
            select(case_review_flags)
            .where(
                case_review_flags.c.case_id.in_(ids),
                case_review_flags.c.withdrawn.is_(False),
                case_review_flags.c.reviewed_by.is_(None),
            )
            .order_by(case_review_flags.c.occurred_on, case_review_flags.c.change_id)
        ):
            flags[f.case_id].append(f)
    return [case_view(r, behind[r.case_id], ended[r.case_id], flags[r.case_id]) for r in rows]


async def list_cases(
    conn: AsyncConnection,
    identity: Identity,
    *,
    household_id: str | None,
    consultation_id: str | None,
    limit: int,
    status: str | None = None,
) -> list[CaseView]:
    """Cases the caller may see: coordinators and auditors all; others, those their
    agency coordinates or escalated a consultation of. A household's cases are found
    from any of its records' ids, merged or not; a consultation's case from any
    consultation behind it."""
    query = select(cases).order_by(cases.c.opened_at.desc()).limit(limit)
    query = visible_to(query, listed_agency(identity, coordinators_see_all=True))
    if household_id:
        query = query.where(cases.c.household_id.in_(await same_household(conn, household_id)))
    if consultation_id:
        query = query.where(
            cases.c.case_id.in_(
                select(case_consultations.c.case_id).where(
                    case_consultations.c.consultation_id == consultation_id
                )
            )
        )
    if status:
        query = query.where(cases.c.status == status)
    return await _views(conn, list(await conn.execute(query)))


async def get_case(conn: AsyncConnection, identity: Identity, case_id: str) -> CaseView:
    query = visible_to(
        select(cases).where(cases.c.case_id == case_id),
        listed_agency(identity, coordinators_see_all=True),
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise not_found("case", "ケース", case_id)
    (view,) = await _views(conn, [row])
    return view
