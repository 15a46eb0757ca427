"""The read side of community issues: every role but operators reads them (they carry
no personal data)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events.catalogue.common import Concern
from kyosei_platform.api import LabelledValue, Timestamp, labelled
from kyosei_platform.application import not_found

from .projection import community_issues


class CommunityIssueView(BaseModel):
    """地域課題: de-identified; ``cases_seen`` is banded ("1-4", "5-9", "10+")."""

    issue_id: str
    area: str
    theme: str
    description: str
    concerns: list[LabelledValue]
    cases_seen: str = Field(description='how many cases it was seen in: "1-4", "5-9", "10+"')
    raised_by: str
    raised_at: Timestamp


def issue_view(row: Any) -> CommunityIssueView:
    return CommunityIssueView(
        issue_id=row.issue_id,
        area=row.area,
        theme=row.theme,
        description=row.description,
        concerns=[labelled(Concern.of(c)) for c in json.loads(row.concerns)],
        cases_seen=row.cases_seen,
        raised_by=row.raised_by,
        raised_at=row.raised_at,
    )


async def list_issues(
    conn: AsyncConnection, *, area: str | None, limit: int
) -> list[CommunityIssueView]:
    query = select(community_issues).order_by(community_issues.c.raised_at.desc()).limit(limit)
    if area:
        query = query.where(community_issues.c.area == area)
    return [issue_view(r) for r in await conn.execute(query)]


async def get_issue(conn: AsyncConnection, issue_id: str) -> CommunityIssueView:
    row = (
        await conn.execute(select(community_issues).where(community_issues.c.issue_id == issue_id))
    ).first()
    if row is None:
        raise not_found("community_issue", "地域課題", issue_id)
    return issue_view(row)
