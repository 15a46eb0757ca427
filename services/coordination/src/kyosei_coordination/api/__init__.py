"""HTTP API of coordination: 多機関協働 cases.

One open case per household: a coordinator opens one directly (POST /cases), intake's
escalations open one or add their consultation to the household's open case. A case
names its main coordinating agency and the members it concerns; a coordinator changes
them (PUT, with If-Match)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from kyosei_platform.api import Command, IfMatch, Reader, tag, with_etag
from kyosei_platform.http import Runtime

from .. import commands, views

router = APIRouter(prefix="/cases", tags=["cases 多機関協働"])


async def _answer(
    ctx: Command, runtime: Runtime, response: Response, case_id: str
) -> views.CaseView:
    assert ctx.actor is not None
    async with runtime.engine.connect() as conn:
        case = await views.get_case(conn, ctx.actor, case_id)
    tag(response, case.version)
    return case


@router.post("", response_model=views.CaseView, status_code=201, responses=with_etag(201))
async def open_case(
    body: commands.OpenCaseDirectly, ctx: Command, runtime: Runtime, response: Response
) -> views.CaseView:
    """ケース開始 by a coordinator (coordinator role only, else 403): the household (any
    of its records), the main coordinating agency, the members it concerns (they must
    be the household's: 422 naming member_ids), concerns and the reason. A household
    that has an open case gets no second one: 409 case_already_open naming it."""
    state = await commands.open_case_directly(ctx, body)
    return await _answer(ctx, runtime, response, state.case_id)


@router.get("", response_model=list[views.CaseView])
async def list_cases(
    identity: Reader,
    runtime: Runtime,
    household_id: Annotated[str | None, Query(max_length=64)] = None,
    consultation_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["open", "merged"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[views.CaseView]:
    """Cases the caller may see: coordinators and auditors all; others, those their
    agency coordinates or escalated a consultation of. ``household_id`` may be any
    record of the household, merged or not; ``consultation_id`` any consultation
    behind the case."""
    async with runtime.engine.connect() as conn:
        return await views.list_cases(
            conn,
            identity,
            household_id=household_id,
            consultation_id=consultation_id,
            limit=limit,
            status=status,
        )


@router.get("/{case_id}", response_model=views.CaseView, responses=with_etag())
async def get_case(
    case_id: str, identity: Reader, runtime: Runtime, response: Response
) -> views.CaseView:
    """One coordination case with every consultation behind it; ``ETag`` is its version."""
    async with runtime.engine.connect() as conn:
        case = await views.get_case(conn, identity, case_id)
    tag(response, case.version)
    return case


@router.put("/{case_id}/main-agency", response_model=views.CaseView, responses=with_etag())
async def change_main_agency(
    case_id: str,
    body: commands.ChangeMainAgency,
    ctx: Command,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
) -> views.CaseView:
    """主担当機関変更 (coordinator only). A stale If-Match is 412; a case merged into
    another is 409 case_not_open."""
    await commands.change_main_agency(ctx, case_id, body, if_match)
    return await _answer(ctx, runtime, response, case_id)


@router.put("/{case_id}/members", response_model=views.CaseView, responses=with_etag())
async def change_members(
    case_id: str,
    body: commands.ChangeMembers,
    ctx: Command,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
) -> views.CaseView:
    """対象者変更 (coordinator only): the members of the household the case concerns
    (empty: the whole household); each must be the household's (422 naming
    member_ids). A stale If-Match is 412."""
    await commands.change_members(ctx, case_id, body, if_match)
    return await _answer(ctx, runtime, response, case_id)
