"""Assessment, support plan, review and request commands: one function per command.

Streams: ``assessment-<case_id>`` (AssessmentRecorded, one event per version, so the
stream version is the assessment version); ``plan-<case_id>`` (SupportPlanAdopted
and its RoleAssigned for each version, and PlanReviewed);
``request-<request_id>`` (OutreachRequested or ParticipationRequested, then the
store-only ActionRequestMade).

The plan's entity tag is its plan version (1, 2, …), not its stream version: a
review does not make a coordinator's copy of the plan stale. A revision sent with an
If-Match that is not the newest plan version is 412, naming the newest."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated

from pydantic import Field

from kyosei_events.catalogue.common import AgencyId, Concern, Id
from kyosei_events.catalogue.coordination import (
    Approach,
    AreaScore,
    Assessment,
    Connection,
    GoalReview,
    MemberAssessment,
    OutreachRequested,
    ParticipationRequested,
    Plan,
    PlanAction,
    PlanGoal,
    ReviewScores,
)
from kyosei_households import find
from kyosei_platform.api import RequestModel, ShortText, Text, UniqueList
from kyosei_platform.application import (
    Change,
    CommandContext,
    PreconditionFailed,
    invalid,
    not_found,
    now,
    retry_on_conflict,
    stream_id,
    today,
)

from ..commands import stream as case_stream
from ..commands import subject_of
from ..domain import case as case_domain
from ..domain import plan as domain
from ..domain.meeting import Meeting
from ..meetings.commands import meeting_stream


def assessment_stream(case_id: str) -> str:
    return stream_id("assessment", case_id)


def plan_stream(case_id: str) -> str:
    return stream_id("plan", case_id)


def request_stream(request_id: str) -> str:
    return stream_id("request", request_id)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class MemberAssessmentInput(RequestModel):
    member_id: Id
    situation: Text
    needs: Text


class AssessmentInput(RequestModel):
    """The whole household: each member's situation and needs, 経緯・背景, strengths,
    wishes in the person's own words, what has been tried, risks (all personal)."""

    members: Annotated[list[MemberAssessmentInput], Field(min_length=1, max_length=30)]
    history_background: Text = Field(description="経緯・背景")
    strengths: Text
    wishes: Text = Field(description="本人・世帯の希望, in their own words")
    tried: Text | None = None
    risks: Text | None = None

    def assessment(self) -> Assessment:
        return Assessment(
            members=[MemberAssessment(**m.model_dump()) for m in self.members],
            history_background=self.history_background,
            strengths=self.strengths,
            wishes=self.wishes,
            tried=self.tried,
            risks=self.risks,
        )


class RecordAssessment(RequestModel):
    """A new dated version of the case's assessment."""

    assessed_on: date = Field(description="not in the future")
    assessment: AssessmentInput


class ActionInput(RequestModel):
    action_id: Id | None = Field(None, description="kept when given (a revision); else new")
    text: Text
    responsible_agency: AgencyId | None = Field(None, description="required (役割分担)")
    due_on: date | None = None


class GoalInput(RequestModel):
    goal_id: Id | None = Field(None, description="kept when given (a revision); else new")
    text: Text
    approaches: UniqueList[Approach] = Field(
        default_factory=list,
        max_length=2,
        description="problem_solving (具体的な課題解決), staying_connected (つながり続ける伴走), "
        "or both; at least one",
    )
    member_ids: UniqueList[Id] = Field(
        default_factory=list, max_length=30, description="none: the household"
    )
    actions: list[ActionInput] = Field(default_factory=list, max_length=50)


class AdoptPlan(RequestModel):
    """A version of the support plan: the first adoption or a revision."""

    adopted_on: date
    review_on: date = Field(description="the planned review date, not before adopted_on")
    meeting_id: Id | None = Field(
        None, description="the held 重層的支援会議 (multi_layered) of the case that adopted it"
    )
    person_wishes: Text = Field(description="本人の希望, in the person's own words")
    household_wishes: Text | None = None
    goals: list[GoalInput] = Field(default_factory=list, max_length=30)

    def plan(self) -> Plan:
        """The plan with its ids (kept when given, generated when absent). A goal needs
        an approach and an action its responsible agency (422 naming the field)."""
        if not self.goals:
            raise invalid(
                "goals",
                "plan_without_goals",
                "a plan needs at least one goal",
                "目標を1つ以上指定してください",
            )
        goals = []
        for i, g in enumerate(self.goals):
            if not g.approaches:
                raise invalid(
                    f"goals[{i}].approaches",
                    "goal_without_approach",
                    "a goal follows problem_solving, staying_connected, or both",
                    "目標のアプローチ（課題解決・伴走）を1つ以上指定してください",
                )
            actions = []
            for j, a in enumerate(g.actions):
                if a.responsible_agency is None:
                    raise invalid(
                        f"goals[{i}].actions[{j}].responsible_agency",
                        "action_without_agency",
                        "every action names its responsible agency (役割分担)",
                        "取組ごとに担当機関を指定してください",
                    )
                actions.append(
                    PlanAction(
                        action_id=a.action_id or new_id("action"),
                        text=a.text,
                        responsible_agency=a.responsible_agency,
                        due_on=a.due_on,
                    )
                )
            goals.append(
                PlanGoal(
                    goal_id=g.goal_id or new_id("goal"),
                    text=g.text,
                    approaches=g.approaches,
                    member_ids=g.member_ids,
                    actions=actions,
                )
            )
        return Plan(
            person_wishes=self.person_wishes, household_wishes=self.household_wishes, goals=goals
        )


class RecordReview(RequestModel):
    """A review of the plan version in force, with the two outcome axes."""

    reviewed_on: date = Field(description="not in the future")
    meeting_id: Id | None = Field(None, description="the held 重層的支援会議 that reviewed it")
    next_review_on: date = Field(description="after reviewed_on")
    self_reliance: Annotated[list[AreaScore], Field(min_length=1, max_length=5)] = Field(
        description="自立: food, clothing, housing, money, health, each 1 (crisis) to 5 "
        "(stable), each at most once"
    )
    connectedness: Annotated[int, Field(ge=1, le=5)] = Field(
        description="孤立の解消: 1 (isolated) to 5 (well connected)"
    )
    connections: Annotated[list[Connection], Field(max_length=100)] = Field(
        default_factory=list, description="the people, places, groups, agencies connected to"
    )
    goals: Annotated[list[GoalReview], Field(min_length=1, max_length=30)] = Field(
        description="every goal of the plan version in force, once"
    )
    summary: Text | None = None

    def scores(self) -> ReviewScores:
        return ReviewScores(
            self_reliance=self.self_reliance,
            connectedness=self.connectedness,
            connections=self.connections,
            goals=self.goals,
            summary=self.summary,
        )


class RequestOutreach(RequestModel):
    """アウトリーチ依頼 from the case (and an action of its plan)."""

    action_id: Id | None = Field(None, description="an action of the plan in force")
    outreach_agency: AgencyId
    member_id: Id | None = Field(None, description="a member of the case's household")
    concerns: UniqueList[Concern] = Field(min_length=1, max_length=50)
    reason: Text = Field(description="why (personal)")


class RequestParticipation(RequestModel):
    """参加支援依頼 from the case (and an action of its plan)."""

    action_id: Id | None = Field(None, description="an action of the plan in force")
    participation_agency: AgencyId
    member_id: Id | None = Field(None, description="a member of the case's household")
    interests: Text
    strengths: Text
    constraints: Text
    schedule: Text
    wishes: Text
    area: ShortText | None = Field(None, description="the district (not personal)")


async def open_case(ctx: CommandContext, case_id: str) -> case_domain.Case:
    """The case, if it exists (404), the caller may write to it (403) and it is open
    (409 case_not_open)."""
    state = await ctx.get(
        case_stream(case_id),
        lambda: case_domain.Case(case_id),
        not_found("case", "ケース", case_id),
    )
    domain.may_write(ctx.actor, state)
    case_domain.must_be_open(state)
    return state


async def _members(ctx: CommandContext, case: case_domain.Case) -> frozenset[str]:
    """The members of the case's household (none while it is not known)."""
    if case.household_id is None:
        return frozenset()
    async with ctx.connect() as conn:
        household = await find(conn, case.household_id)
    return frozenset(household.member_ids) if household is not None else frozenset()


async def _meeting(ctx: CommandContext, case_id: str, meeting_id: str | None) -> None:
    if meeting_id is None:
        return
    meeting = await ctx.load(meeting_stream(meeting_id), lambda: Meeting(meeting_id))
    domain.held_multi_layered("meeting_id", meeting, case_id)


def _plan(case_id: str) -> Callable[[], domain.SupportPlan]:
    return lambda: domain.SupportPlan(case_id)


def _fresh(state: domain.SupportPlan, if_match: int | None) -> None:
    """412 when the caller read another plan version than the newest."""
    if if_match is not None and if_match != state.plan_version:
        raise PreconditionFailed(plan_stream(state.case_id), if_match, state.plan_version)


@retry_on_conflict
async def record_assessment(
    ctx: CommandContext, case_id: str, cmd: RecordAssessment, if_match: int | None = None
) -> domain.AssessmentHistory:
    """アセスメント: a new version (If-Match: the version read)."""
    case = await open_case(ctx, case_id)
    members = await _members(ctx, case)
    stream = assessment_stream(case_id)
    state = await ctx.load(stream, lambda: domain.AssessmentHistory(case_id))
    events = domain.record_assessment(
        state,
        household_id=case.household_id,
        household_members=members,
        assessed_on=cmd.assessed_on,
        assessment=cmd.assessment.assessment(),
        agency_id=ctx.agency_id,
        today=today(),
        now=now(),
    )
    await ctx.save(Change(state, stream, events, subject_of(case), if_match))
    return state


@retry_on_conflict
async def adopt_plan(
    ctx: CommandContext, case_id: str, cmd: AdoptPlan, if_match: int | None = None
) -> domain.SupportPlan:
    """支援プラン決定: a new plan version with its role assignments (If-Match: the plan
    version read; a stale one is 412 naming the newest and nothing is recorded)."""
    case = await open_case(ctx, case_id)
    plan = cmd.plan()
    state = await ctx.load(plan_stream(case_id), _plan(case_id))
    _fresh(state, if_match)
    await _meeting(ctx, case_id, cmd.meeting_id)
    events = domain.adopt(
        state,
        household_id=case.household_id,
        household_members=await _members(ctx, case),
        meeting_id=cmd.meeting_id,
        adopted_on=cmd.adopted_on,
        review_on=cmd.review_on,
        plan=plan,
        agency_id=ctx.agency_id,
        now=now(),
    )
    # At the stream version read: a revision that lands meanwhile makes this one run
    # again, and then the If-Match (if sent) no longer names the newest version.
    await ctx.save(Change(state, plan_stream(case_id), events, subject_of(case)))
    return state


@retry_on_conflict
async def review_plan(
    ctx: CommandContext, case_id: str, cmd: RecordReview, if_match: int | None = None
) -> domain.SupportPlan:
    """プラン評価 of the plan version in force (If-Match: the plan version read)."""
    case = await open_case(ctx, case_id)
    state = await ctx.load(plan_stream(case_id), _plan(case_id))
    if state.current is None:
        raise domain.plan_not_adopted(case_id)
    _fresh(state, if_match)
    await _meeting(ctx, case_id, cmd.meeting_id)
    events = domain.review(
        state,
        review_id=new_id("review"),
        household_id=case.household_id,
        meeting_id=cmd.meeting_id,
        reviewed_on=cmd.reviewed_on,
        next_review_on=cmd.next_review_on,
        scores=cmd.scores(),
        agency_id=ctx.agency_id,
        today=today(),
        now=now(),
    )
    await ctx.save(Change(state, plan_stream(case_id), events, subject_of(case)))
    return state


async def _request(
    ctx: CommandContext,
    case: case_domain.Case,
    asked: OutreachRequested | ParticipationRequested,
    action_id: str | None,
) -> domain.CaseRequest:
    """Record the request and its link to the plan action (checked against the plan
    version in force)."""
    plan = await ctx.load(plan_stream(case.case_id), _plan(case.case_id))
    events = domain.request(
        plan,
        household_members=await _members(ctx, case),
        asked=asked,
        action_id=action_id,
        member_id=asked.member_id,
    )
    state = domain.CaseRequest(asked.request_id)
    stream = request_stream(asked.request_id)
    await ctx.save(Change(state, stream, events, subject_of(case), expected=0))
    return state


@retry_on_conflict
async def request_outreach(
    ctx: CommandContext, case_id: str, cmd: RequestOutreach
) -> domain.CaseRequest:
    """アウトリーチ依頼: intake starts an outreach case at the agency asked."""
    case = await open_case(ctx, case_id)
    asked = OutreachRequested(
        request_id=new_id("request"),
        case_id=case_id,
        household_id=case.household_id,
        member_id=cmd.member_id,
        outreach_agency=cmd.outreach_agency,
        concerns=cmd.concerns,
        reason=cmd.reason,
        requested_at=now(),
    )
    return await _request(ctx, case, asked, cmd.action_id)


@retry_on_conflict
async def request_participation(
    ctx: CommandContext, case_id: str, cmd: RequestParticipation
) -> domain.CaseRequest:
    """参加支援依頼: the participation agency answers with ParticipationMatched."""
    case = await open_case(ctx, case_id)
    asked = ParticipationRequested(
        request_id=new_id("request"),
        case_id=case_id,
        household_id=case.household_id,
        member_id=cmd.member_id,
        action_id=cmd.action_id,
        participation_agency=cmd.participation_agency,
        interests=cmd.interests,
        strengths=cmd.strengths,
        constraints=cmd.constraints,
        schedule=cmd.schedule,
        wishes=cmd.wishes,
        area=cmd.area,
        requested_by=ctx.agency_id,
        requested_at=now(),
    )
    return await _request(ctx, case, asked, cmd.action_id)
