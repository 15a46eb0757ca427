"""HTTP API of coordination: 多機関協働 cases."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from kyosei_events.catalogue.common import Concern
from kyosei_platform.auth import CurrentIdentity, Identity, Role
from kyosei_platform.errors import ApiError
from kyosei_platform.http import Runtime

from .projections import cases

router = APIRouter(prefix="/cases", tags=["cases 多機関協働"])


class ConcernView(BaseModel):
    value: str
    label_ja: str


class CaseView(BaseModel):
    case_id: str
    household_id: str | None
    consultation_id: str
    escalated_by: str
    concerns: list[ConcernView]
    status: str
    opened_at: str
    version: int


def _view(row: Any) -> CaseView:
    concerns = [Concern.of(c) for c in json.loads(row["concerns"])]
    return CaseView(
        **{
            k: row[k]
            for k in (
                "case_id",
                "household_id",
                "consultation_id",
                "escalated_by",
                "status",
                "opened_at",
                "version",
            )
        },
        concerns=[ConcernView(value=c.value, label_ja=c.label_ja) for c in concerns],
    )


def _sees_all(identity: Identity) -> bool:
    return identity.role in (Role.COORDINATOR, Role.AUDITOR)


@router.get("", response_model=list[CaseView])
async def list_cases(
    identity: CurrentIdentity,
    runtime: Runtime,
    household_id: str | None = None,
    consultation_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CaseView]:
    """Cases the caller may see: coordinators and auditors all; others, their agency's."""
    query = select(cases).order_by(cases.c.opened_at.desc()).limit(limit)
    if not _sees_all(identity):
        query = query.where(cases.c.escalated_by == identity.agency_id)
    if household_id:
        query = query.where(cases.c.household_id == household_id)
    if consultation_id:
        query = query.where(cases.c.consultation_id == consultation_id)
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [_view(r) for r in rows]


@router.get("/{case_id}", response_model=CaseView)
async def get_case(case_id: str, identity: CurrentIdentity, runtime: Runtime) -> CaseView:
    """One coordination case."""
    async with runtime.engine.connect() as conn:
        row = (
            (await conn.execute(select(cases).where(cases.c.case_id == case_id))).mappings().first()
        )
    if row is None or not (_sees_all(identity) or row["escalated_by"] == identity.agency_id):
        raise ApiError(
            404, "case_not_found", f"no case {case_id} visible to you", "該当するケースがありません"
        )
    return _view(row)
