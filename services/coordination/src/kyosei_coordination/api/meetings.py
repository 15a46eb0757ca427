"""HTTP API of meetings (会議): 支援会議, 重層的支援会議, 地域ケア会議, ケース会議.

Scheduling, then holding (the record is final), corrections as new entries, and the
re-share of a 支援会議's items to a later consented meeting, item by item. A meeting's
record is answered only to its participant agencies and auditors; others who may see
the case see that it took place. Nothing a meeting recorded is published on a topic:
SupportMeetingHeld carries only the fact (see the AsyncAPI document).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from kyosei_platform.api import Command, IfMatch, Reader, tag, with_etag
from kyosei_platform.http import Runtime

from ..meetings import commands, views

router = APIRouter(tags=["meetings 会議"])


async def _answer(
    ctx: Command, runtime: Runtime, response: Response, meeting_id: str
) -> views.MeetingView:
    assert ctx.actor is not None
    view = await views.get_meeting(runtime.store, ctx.actor, meeting_id)
    tag(response, view.version)
    return view


@router.post(
    "/cases/{case_id}/meetings",
    response_model=views.MeetingView,
    status_code=201,
    responses=with_etag(201),
)
async def schedule_meeting(
    case_id: str,
    body: commands.ScheduleMeeting,
    ctx: Command,
    runtime: Runtime,
    response: Response,
) -> views.MeetingView:
    """会議予定: schedule a meeting of the case; the caller's agency convenes it and takes
    part. A 支援会議 (confidential) needs no consent; a 重層的支援会議 or case conference
    needs every person concerned to have consented for every participant agency (409
    consent_required). No participant agency: 422 naming participant_agencies."""
    state = await commands.schedule_meeting(ctx, case_id, body)
    return await _answer(ctx, runtime, response, state.meeting_id)


@router.get("/cases/{case_id}/meetings", response_model=views.CaseMeetings)
async def case_meetings(case_id: str, identity: Reader, runtime: Runtime) -> views.CaseMeetings:
    """The case's meetings (that each took place; no record), and its stage: 支援会議
    until a member consents to a 重層的支援会議."""
    async with runtime.engine.connect() as conn:
        return await views.list_for_case(conn, identity, case_id)


@router.get("/meetings", response_model=list[views.MeetingSummary])
async def list_meetings(
    identity: Reader,
    runtime: Runtime,
    case_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[views.MeetingSummary]:
    """Meetings the caller may know of (its agency's, or of cases it sees), newest first."""
    async with runtime.engine.connect() as conn:
        return await views.list_meetings(conn, identity, case_id=case_id, limit=limit)


@router.get("/meetings/{meeting_id}", response_model=views.MeetingView, responses=with_etag())
async def get_meeting(
    meeting_id: str, identity: Reader, runtime: Runtime, response: Response
) -> views.MeetingView:
    """One meeting; its record (attendees, items, corrections) and the items re-shared to
    it only for its participant agencies and auditors."""
    view = await views.get_meeting(runtime.store, identity, meeting_id)
    tag(response, view.version)
    return view


@router.post("/meetings/{meeting_id}/held", response_model=views.MeetingView, responses=with_etag())
async def hold_meeting(
    meeting_id: str,
    body: commands.HoldMeeting,
    ctx: Command,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
) -> views.MeetingView:
    """支援会議開催: a participant records that the meeting was held, with its attendance
    and items (information shared, concerns agreed, next steps, decisions). The record
    is final: a second time is 409 meeting_record_final."""
    await commands.hold_meeting(ctx, meeting_id, body, if_match)
    return await _answer(ctx, runtime, response, meeting_id)


@router.post(
    "/meetings/{meeting_id}/corrections", response_model=views.MeetingView, responses=with_etag()
)
async def correct_item(
    meeting_id: str,
    body: commands.CorrectItem,
    ctx: Command,
    runtime: Runtime,
    response: Response,
) -> views.MeetingView:
    """会議録訂正: a participant corrects one item of the held record, with the reason;
    the original stays in the record's history."""
    await commands.correct_item(ctx, meeting_id, body)
    return await _answer(ctx, runtime, response, meeting_id)


@router.post(
    "/meetings/{meeting_id}/reshares", response_model=views.MeetingView, responses=with_etag()
)
async def reshare_items(
    meeting_id: str,
    body: commands.ReshareItems,
    ctx: Command,
    runtime: Runtime,
    response: Response,
) -> views.MeetingView:
    """会議内容の再共有: a participant of this held 支援会議 re-shares the named items to a
    later consented meeting of the same case; that meeting's participants then read
    those items, and only those."""
    await commands.reshare_items(ctx, meeting_id, body)
    return await _answer(ctx, runtime, response, meeting_id)
