"""HTTP API of coordination: 多機関協働 cases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from kyosei_platform.api import Reader, tag, with_etag
from kyosei_platform.http import Runtime

from .. import views

router = APIRouter(prefix="/cases", tags=["cases 多機関協働"])


@router.get("", response_model=list[views.CaseView])
async def list_cases(
    identity: Reader,
    runtime: Runtime,
    household_id: Annotated[str | None, Query(max_length=64)] = None,
    consultation_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[views.CaseView]:
    """Cases the caller may see: coordinators and auditors all; others, their agency's.
    ``household_id`` may be any record of the household, merged or not."""
    async with runtime.engine.connect() as conn:
        return await views.list_cases(
            conn,
            identity,
            household_id=household_id,
            consultation_id=consultation_id,
            limit=limit,
        )


@router.get("/{case_id}", response_model=views.CaseView, responses=with_etag())
async def get_case(
    case_id: str, identity: Reader, runtime: Runtime, response: Response
) -> views.CaseView:
    """One coordination case; ``ETag`` is its version."""
    async with runtime.engine.connect() as conn:
        case = await views.get_case(conn, identity, case_id)
    tag(response, case.version)
    return case
