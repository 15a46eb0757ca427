"""Community issue commands: a coordinator raises a de-identified issue seen across
cases (CommunityIssueRaised, stream ``community-issue-<id>``)."""

from __future__ import annotations

import uuid

from pydantic import Field
from sqlalchemy import select

from kyosei_events.catalogue.common import Concern, Id
from kyosei_households import find, same_household
from kyosei_platform.api import Name, RequestModel, Text, UniqueList
from kyosei_platform.application import (
    Change,
    CommandContext,
    forbidden,
    invalid,
    now,
    retry_on_conflict,
    stream_id,
)
from kyosei_platform.identity import Role

from ..domain import community_issue as domain
from ..projections import case_consultations, cases


def issue_stream(issue_id: str) -> str:
    return stream_id("community-issue", issue_id)


class RaiseCommunityIssue(RequestModel):
    """地域課題の提起: de-identified. ``case_ids`` only count the cases (banded) and
    check the text; they are not recorded."""

    area: Name = Field(description="the district or area (地区・圏域), e.g. 常盤平地区")
    theme: Name = Field(description="e.g. 50代男性の居場所がない")
    description: Text = Field(
        max_length=5_000,
        description="no names, ids, phone numbers, postcodes or dates of birth",
    )
    concerns: UniqueList[Concern] = Field(default_factory=list, max_length=50)
    case_ids: UniqueList[Id] = Field(
        min_length=1, max_length=200, description="the cases it was seen in (not recorded)"
    )


async def _identifiers(ctx: CommandContext, case_ids: list[str]) -> set[str]:
    """Every id the cited cases bring: theirs, their households' records, members and
    consultations. Unknown case ids are refused (422 naming case_ids)."""
    async with ctx.connect() as conn:
        rows = (
            await conn.execute(
                select(cases.c.case_id, cases.c.household_id, cases.c.consultation_id).where(
                    cases.c.case_id.in_(case_ids)
                )
            )
        ).all()
        unknown = sorted(set(case_ids) - {r.case_id for r in rows})
        if unknown:
            raise invalid(
                "case_ids",
                "unknown_case",
                f"no such cases: {', '.join(unknown)}",
                f"該当するケースがありません: {', '.join(unknown)}",
            )
        ids = {r.case_id for r in rows} | {r.consultation_id for r in rows if r.consultation_id}
        for r in await conn.execute(
            select(case_consultations.c.consultation_id).where(
                case_consultations.c.case_id.in_(case_ids)
            )
        ):
            ids.add(r.consultation_id)
        for household_id in {r.household_id for r in rows if r.household_id}:
            ids.update(await same_household(conn, household_id))
            household = await find(conn, household_id)
            if household is not None:
                ids.update(household.member_ids)
    return ids


@retry_on_conflict
async def raise_issue(ctx: CommandContext, cmd: RaiseCommunityIssue) -> domain.CommunityIssue:
    """地域課題の提起 (coordinator only, else 403)."""
    if ctx.actor is not None and ctx.actor.role is not Role.COORDINATOR:
        raise forbidden(
            "coordinator_only",
            "only a coordinator may raise a community issue",
            "地域課題の提起はコーディネーターのみが行えます",
        )
    ids = await _identifiers(ctx, cmd.case_ids)
    for field in ("area", "theme", "description"):
        domain.check_text(field, getattr(cmd, field), ids)
    state = domain.CommunityIssue(uuid.uuid4().hex)
    events = domain.raise_issue(
        state,
        area=cmd.area,
        theme=cmd.theme,
        description=cmd.description,
        concerns=cmd.concerns,
        cases_seen=len(cmd.case_ids),
        raised_by=ctx.agency_id,
        now=now(),
    )
    stream = issue_stream(state.issue_id)
    await ctx.save(Change(state, stream, events, stream, expected=0))
    return state
