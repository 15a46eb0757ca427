"""The read side of coordination: case views and the questions asked of the case list.
Merged household records are followed through the household directory."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events.catalogue.common import Concern
from kyosei_households import listed_agency, same_household
from kyosei_platform.api import LabelledValue, Timestamp, labelled
from kyosei_platform.application import not_found
from kyosei_platform.auth import Identity

from .projections import cases


class CaseView(BaseModel):
    """A coordination case; lists carry the same fields as the case itself."""

    case_id: str
    household_id: str | None
    consultation_id: str
    escalated_by: str
    concerns: list[LabelledValue]
    status: str
    opened_at: Timestamp
    version: int


def case_view(row: Any) -> CaseView:
    return CaseView(
        case_id=row.case_id,
        household_id=row.household_id,
        consultation_id=row.consultation_id,
        escalated_by=row.escalated_by,
        concerns=[labelled(Concern.of(c)) for c in json.loads(row.concerns)],
        status=row.status,
        opened_at=row.opened_at,
        version=row.version,
    )


async def list_cases(
    conn: AsyncConnection,
    identity: Identity,
    *,
    household_id: str | None,
    consultation_id: str | None,
    limit: int,
) -> list[CaseView]:
    """Cases the caller may see: coordinators and auditors all; others, their agency's.
    A household's cases are found from any of its records' ids, merged or not."""
    query = select(cases).order_by(cases.c.opened_at.desc()).limit(limit)
    agency_id = listed_agency(identity, coordinators_see_all=True)
    if agency_id is not None:
        query = query.where(cases.c.escalated_by == agency_id)
    if household_id:
        query = query.where(cases.c.household_id.in_(await same_household(conn, household_id)))
    if consultation_id:
        query = query.where(cases.c.consultation_id == consultation_id)
    return [case_view(r) for r in await conn.execute(query)]


async def get_case(conn: AsyncConnection, identity: Identity, case_id: str) -> CaseView:
    row = (await conn.execute(select(cases).where(cases.c.case_id == case_id))).first()
    agency_id = listed_agency(identity, coordinators_see_all=True)
    if row is None or agency_id not in (None, row.escalated_by):
        raise not_found("case", "ケース", case_id)
    return case_view(row)
