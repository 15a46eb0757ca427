"""HTTP API of community issues (地域課題): a coordinator raises an issue seen across
cases, de-identified; every role but operators reads them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from kyosei_platform.api import Command, Reader, tag, with_etag
from kyosei_platform.http import Runtime

from ..community import commands, views

router = APIRouter(prefix="/community-issues", tags=["community issues 地域課題"])


@router.post("", response_model=views.CommunityIssueView, status_code=201, responses=with_etag(201))
async def raise_issue(
    body: commands.RaiseCommunityIssue, ctx: Command, runtime: Runtime, response: Response
) -> views.CommunityIssueView:
    """地域課題の提起 (coordinator role only, else 403): the area, theme, description and
    concerns, and the cases it was seen in. The case ids are not recorded: they band
    the count (``cases_seen``: "1-4", "5-9", "10+") and check the text. ``area``,
    ``theme`` or ``description`` containing an id of those cases, their households,
    members or consultations, or what looks like a phone number, postcode or date of
    birth is 422 naming the field. Personal names are not checked (the household
    directory holds none): leave them out. Unknown case ids: 422 naming case_ids.
    CommunityIssueRaised carries no personal data and no case, household or member id."""
    state = await commands.raise_issue(ctx, body)
    async with runtime.engine.connect() as conn:
        view = await views.get_issue(conn, state.issue_id)
    tag(response, state.version)
    return view


@router.get("", response_model=list[views.CommunityIssueView])
async def list_issues(
    identity: Reader,
    runtime: Runtime,
    area: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[views.CommunityIssueView]:
    """Community issues, newest first (every role but operators)."""
    async with runtime.engine.connect() as conn:
        return await views.list_issues(conn, area=area, limit=limit)
