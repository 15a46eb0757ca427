"""Outreach (アウトリーチ): cases for people who do not come, contact attempts over
time and the relationship's stage. A case may run for years."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from kyosei_platform.api import Command, IfMatch, Reader, tag, with_etag
from kyosei_platform.http import Runtime

from ..commands import outreach as commands
from ..domain.outreach import Outreach
from ..queries import work
from ..views import OutreachSummary, OutreachView, outreach_view

router = APIRouter(prefix="/outreach", tags=["outreach アウトリーチ"])


def _answer(response: Response, state: Outreach) -> OutreachView:
    tag(response, state.version)
    return outreach_view(state)


@router.post("", status_code=201, response_model=OutreachView, responses=with_etag(201))
async def start_outreach(
    body: commands.StartOutreach, ctx: Command, response: Response
) -> OutreachView:
    """アウトリーチ開始: start reaching out to someone, on a staff decision. A refusal of
    consent never stops outreach."""
    return _answer(response, await commands.start_outreach(ctx, body))


@router.get("", response_model=list[OutreachSummary])
async def list_outreach(
    identity: Reader,
    runtime: Runtime,
    include_ended: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[OutreachSummary]:
    """The caller's agency's outreach cases (auditors: all), longest without contact
    first."""
    async with runtime.engine.connect() as conn:
        return await work.outreach_list(conn, identity, include_ended=include_ended, limit=limit)


@router.get("/{outreach_id}", response_model=OutreachView, responses=with_etag())
async def get_outreach(
    outreach_id: str, identity: Reader, runtime: Runtime, response: Response
) -> OutreachView:
    """One outreach case with every contact attempt and stage change."""
    return _answer(response, await commands.open_outreach(runtime.store, identity, outreach_id))


@router.post(
    "/{outreach_id}/contacts",
    status_code=201,
    response_model=OutreachView,
    responses=with_etag(201),
)
async def record_contact(
    outreach_id: str,
    body: commands.RecordContact,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> OutreachView:
    """訪問・接触記録: record a contact attempt and its result."""
    return _answer(response, await commands.record_contact(ctx, outreach_id, body, if_match))


@router.post("/{outreach_id}/stage", response_model=OutreachView, responses=with_etag())
async def change_stage(
    outreach_id: str,
    body: commands.ChangeStage,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> OutreachView:
    """関係づくりの段階: record where the relationship now stands."""
    return _answer(response, await commands.change_stage(ctx, outreach_id, body, if_match))


@router.post("/{outreach_id}/end", response_model=OutreachView, responses=with_etag())
async def end_outreach(
    outreach_id: str,
    body: commands.EndOutreach,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> OutreachView:
    """アウトリーチ終了 (optional): e.g. the person is now connected to support."""
    return _answer(response, await commands.end_outreach(ctx, outreach_id, body, if_match))
