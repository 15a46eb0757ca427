"""Coordination's application layer: one function per command; routes and event
policies both call these."""

from __future__ import annotations

from pydantic import Field

from kyosei_events.catalogue.common import AgencyId, Concern, Id
from kyosei_platform.api import RequestModel, UniqueList
from kyosei_platform.application import Change, CommandContext, now

from .domain import case as domain


def case_id_for(consultation_id: str) -> str:
    """One case per escalated consultation: a second escalation lands on the same case."""
    return f"case-{consultation_id}"


def stream(case_id: str) -> str:
    # The case id already names its kind ("case-…"): it is the stream's name.
    return case_id


class OpenCase(RequestModel):
    """Open a case for an escalated consultation."""

    consultation_id: Id
    household_id: Id | None = None
    escalated_by: AgencyId
    concerns: UniqueList[Concern] = Field(min_length=1, max_length=50)


async def open_case(ctx: CommandContext, cmd: OpenCase, subject: str) -> domain.Case:
    """ケース開始. Nothing is recorded when the consultation's case is already open."""
    case_id = case_id_for(cmd.consultation_id)
    state = await ctx.load(stream(case_id), lambda: domain.Case(case_id))
    events = domain.open_case(
        state,
        household_id=cmd.household_id,
        consultation_id=cmd.consultation_id,
        escalated_by=cmd.escalated_by,
        concerns=cmd.concerns,
        now=now(),
    )
    if events:
        await ctx.save(Change(state, stream(case_id), events, subject))
    return state


async def link_household(
    ctx: CommandContext, consultation_id: str, household_id: str, subject: str
) -> domain.Case:
    """ケースの世帯判明: the case of ``consultation_id``, if there is one, learns its
    household."""
    case_id = case_id_for(consultation_id)
    state = await ctx.load(stream(case_id), lambda: domain.Case(case_id))
    events = domain.link_household(state, household_id=household_id, now=now())
    if events:
        await ctx.save(Change(state, stream(case_id), events, subject))
    return state
