"""HTTP API of coordination: 多機関協働 cases.

One open case per household: a coordinator opens one directly (POST /cases), intake's
escalations open one or add their consultation to the household's open case. A case
names its main coordinating agency and the members it concerns; a coordinator changes
them (PUT, with If-Match). A coordinator or the main agency's staff ends some members'
support (member-closings), closes the case (closing) and reopens it (reopening)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from kyosei_platform.api import Command, IfMatch, Reader, tag, with_etag
from kyosei_platform.http import Runtime

from .. import commands, lifecycle, views

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
    status: Literal["open", "closed", "merged"] | None = None,
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


@router.post("/{case_id}/member-closings", response_model=views.CaseView, responses=with_etag())
async def end_member_support(
    case_id: str,
    body: lifecycle.EndMemberSupport,
    ctx: Command,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
) -> views.CaseView:
    """本人分の終結 (MemberSupportEnded; coordinator or the main agency's staff, else
    403): the support of ``member_ids`` ends, with the reason; the case goes on for the
    others. The members must be ones the case concerns (422 naming member_ids); ending
    the last remaining members is 422 (close the case instead); a member already ended
    is 409 member_support_already_ended. ``handed_to`` is required for handed_to_agency
    and handed_to_prefecture and refused otherwise (422); ``ended_on`` is never in the
    future (422). A closed or merged case is 409 case_not_open; a stale If-Match 412."""
    await lifecycle.end_member_support(ctx, case_id, body, if_match)
    return await _answer(ctx, runtime, response, case_id)


@router.post("/{case_id}/closing", response_model=views.CaseView, responses=with_etag())
async def close_case(
    case_id: str,
    body: lifecycle.CloseCase,
    ctx: Command,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
) -> views.CaseView:
    """終結 (CaseClosed; coordinator or the main agency's staff, else 403): status
    ``closed`` with the reason; the household then has no open case, so a later
    escalation opens a new one. ``handed_to`` is required for handed_to_agency and
    handed_to_prefecture and refused otherwise (422); ``closed_on`` is never in the
    future (422). Already closed: 409 case_already_closed; merged: 409 case_not_open;
    a stale If-Match 412."""
    await lifecycle.close_case(ctx, case_id, body, if_match)
    return await _answer(ctx, runtime, response, case_id)


@router.post("/{case_id}/reopening", response_model=views.CaseView, responses=with_etag())
async def reopen_case(
    case_id: str,
    body: lifecycle.ReopenCase,
    ctx: Command,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
) -> views.CaseView:
    """再開 (CaseReopened; coordinator or the main agency's staff, else 403): status
    ``open`` again. A case that is not closed is 409 case_not_closed; when the household
    has another open case, 409 case_already_open naming it. A stale If-Match is 412."""
    await lifecycle.reopen_case(ctx, case_id, body, if_match)
    return await _answer(ctx, runtime, response, case_id)
