"""The read side of assessments, plans, reviews and requests.

Who reads (:func:`readable`): whoever may see the case (as GET /cases/{id}:
coordinators and auditors every case, an agency the cases it coordinates or escalated
a consultation of) and, for the plan, the agencies responsible for an action in any
of its versions. Such an agency reads, of each version, the goals it has an action in
and the goals whose members all consented to it (purpose support_plan or
information_sharing; a goal naming nobody concerns the whole household), and the
wishes only when every member did: the rest is left out (``goals_withheld`` counts it).
Operators never (the routes take a Reader). Personal text (the
assessment, wishes, goals, tasks, review notes) is read from the event store, where it
is sealed; the read model holds ids, dates and agencies only. Once the household's
personal data is erased, those fields read as null."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import NamedTuple, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events import EventStore
from kyosei_events.catalogue.coordination import (
    Assessment,
    AssessmentRecorded,
    Connection,
    PlanReviewed,
)
from kyosei_events.catalogue.intake import ConsentPurpose
from kyosei_households import find
from kyosei_households.access import Household, may_read_record
from kyosei_platform.api import LabelledValue, Timestamp, labelled
from kyosei_platform.application import Aggregate, Rejected, not_found, today
from kyosei_platform.auth import Identity

from .. import views as case_views
from ..domain.plan import AssessmentHistory, PlanVersion, SupportPlan
from ..projections import cases
from .commands import assessment_stream, plan_stream
from .projection import case_requests, plan_actions

A = TypeVar("A", bound=Aggregate)


class AssessmentView(BaseModel):
    """A version of the case's assessment of the whole household."""

    case_id: str
    version: int
    assessed_on: date
    assessment: Assessment | None = Field(description="null once the household's data is erased")
    recorded_by: str
    recorded_at: Timestamp


class ActionView(BaseModel):
    action_id: str
    text: str | None
    responsible_agency: str
    due_on: date | None


class GoalView(BaseModel):
    goal_id: str
    text: str | None
    approaches: list[LabelledValue]
    member_ids: list[str]
    actions: list[ActionView]


class PlanView(BaseModel):
    """A version of the support plan; ``version`` is also its ETag."""

    case_id: str
    version: int
    adopted_on: date
    review_on: date
    meeting_id: str | None
    person_wishes: str | None
    household_wishes: str | None
    goals: list[GoalView]
    goals_withheld: int = Field(
        0,
        description="goals left out for this reader: an agency that reads the plan as one "
        "responsible for an action reads its own goals and those whose members consented",
    )
    adopted_by: str
    adopted_at: Timestamp


class AreaScoreView(BaseModel):
    area: LabelledValue
    score: int


class ConnectionView(BaseModel):
    kind: LabelledValue
    label: str

    @classmethod
    def of(cls, c: Connection) -> ConnectionView:
        return cls(kind=labelled(c.kind), label=c.label)


class GoalReviewView(BaseModel):
    goal_id: str
    progress: LabelledValue
    note: str | None


class ReviewView(BaseModel):
    """A review of plan version ``plan_version``: progress per goal, 自立
    (``self_reliance``) and 孤立の解消 (``connectedness``, ``connections``)."""

    review_id: str
    case_id: str
    plan_version: int
    reviewed_on: date
    meeting_id: str | None
    next_review_on: date
    self_reliance: list[AreaScoreView]
    connectedness: int | None
    connections: list[ConnectionView]
    goals: list[GoalReviewView]
    summary: str | None
    reviewed_by: str
    reviewed_at: Timestamp


class RequestView(BaseModel):
    """A request the case made to another pillar (``kind``: outreach or participation)."""

    request_id: str
    case_id: str
    kind: str
    action_id: str | None
    to_agency: str
    requested_at: Timestamp


class Reader(NamedTuple):
    """An agency that reads the plan only as one responsible for an action in it."""

    identity: Identity
    household: Household | None

    def reads(self, member_ids: list[str], actions: list[str]) -> bool:
        """Its own goals, and those whose members all consented to it."""
        if self.identity.agency_id in actions:
            return True
        return any(
            may_read_record(
                self.identity,
                parties=(),
                persons=member_ids,
                household=self.household,
                on=today(),
                purpose=purpose,
            )
            for purpose in (ConsentPurpose.SUPPORT_PLAN, ConsentPurpose.INFORMATION_SHARING)
        )


async def readable(
    conn: AsyncConnection, identity: Identity, case_id: str, *, plan: bool = False
) -> Reader | None:
    """404 unless the caller may see the case (or, with ``plan``, is responsible for an
    action of its plan). None when it sees the case; for an agency that reads the plan
    only as a responsible one, a :class:`Reader` with the case's household, whose
    consents decide which goals it reads (household unknown: only its own goals)."""
    try:
        await case_views.get_case(conn, identity, case_id)
        return None
    except Rejected:
        if not plan:
            raise
        responsible = (
            await conn.execute(
                select(plan_actions.c.action_id)
                .where(
                    plan_actions.c.case_id == case_id,
                    plan_actions.c.responsible_agency == identity.agency_id,
                )
                .limit(1)
            )
        ).first()
        if responsible is None:
            raise
        row = (
            await conn.execute(select(cases.c.household_id).where(cases.c.case_id == case_id))
        ).first()
        household = await find(conn, row.household_id) if row and row.household_id else None
        return Reader(identity, household)


async def _fold(store: EventStore, stream: str, make: Callable[[], A]) -> A:
    events, _ = await store.load(stream)
    state = make()
    for d in events:
        state.evolve(d.event)
    return state


async def _checked(
    store: EventStore, identity: Identity, case_id: str, plan: bool
) -> Reader | None:
    # The read model on a connection closed before the store is read (SQLite allows
    # one transaction at a time).
    async with store.engine.connect() as conn:
        return await readable(conn, identity, case_id, plan=plan)


def assessment_view(e: AssessmentRecorded) -> AssessmentView:
    return AssessmentView(
        case_id=e.case_id,
        version=e.version,
        assessed_on=e.assessed_on,
        assessment=getattr(e, "assessment", None),
        recorded_by=e.recorded_by,
        recorded_at=e.recorded_at,
    )


async def assessments(store: EventStore, identity: Identity, case_id: str) -> list[AssessmentView]:
    await _checked(store, identity, case_id, plan=False)
    state = await _fold(store, assessment_stream(case_id), lambda: AssessmentHistory(case_id))
    return [assessment_view(v) for v in state.versions]


async def assessment_as_of(
    store: EventStore, identity: Identity, case_id: str, as_of: date | None
) -> AssessmentView:
    """The newest version assessed on or before ``as_of`` (default: today)."""
    await _checked(store, identity, case_id, plan=False)
    state = await _fold(store, assessment_stream(case_id), lambda: AssessmentHistory(case_id))
    found = state.as_of(as_of or today())
    if found is None:
        raise not_found("assessment", "アセスメント", case_id)
    return assessment_view(found)


def plan_view(v: PlanVersion, reader: Reader | None = None) -> PlanView:
    """The version as ``reader`` may read it (None: whoever sees the case, all of it)."""
    view = _whole_plan_view(v)
    if reader is None:
        return view
    shown = [
        g
        for g in view.goals
        if reader.reads(g.member_ids, [a.responsible_agency for a in g.actions])
    ]
    wishes = reader.reads([], [])
    return view.model_copy(
        update={
            "goals": shown,
            "goals_withheld": len(view.goals) - len(shown),
            "person_wishes": view.person_wishes if wishes else None,
            "household_wishes": view.household_wishes if wishes else None,
        }
    )


def _whole_plan_view(v: PlanVersion) -> PlanView:
    e = v.adopted
    plan = getattr(e, "plan", None)
    if plan is not None:
        goals = [
            GoalView(
                goal_id=g.goal_id,
                text=g.text,
                approaches=[labelled(a) for a in g.approaches],
                member_ids=list(g.member_ids),
                actions=[
                    ActionView(
                        action_id=a.action_id,
                        text=a.text,
                        responsible_agency=a.responsible_agency,
                        due_on=a.due_on,
                    )
                    for a in g.actions
                ],
            )
            for g in plan.goals
        ]
    else:  # erased: the outline and the role assignments, without their text
        goals = [
            GoalView(
                goal_id=g.goal_id,
                text=None,
                approaches=[labelled(a) for a in g.approaches],
                member_ids=[],
                actions=[
                    ActionView(
                        action_id=r.action_id,
                        text=None,
                        responsible_agency=r.responsible_agency,
                        due_on=r.due_on,
                    )
                    for r in v.roles
                    if r.goal_id == g.goal_id
                ],
            )
            for g in e.goals
        ]
    return PlanView(
        case_id=e.case_id,
        version=e.version,
        adopted_on=e.adopted_on,
        review_on=e.review_on,
        meeting_id=e.meeting_id,
        person_wishes=plan.person_wishes if plan else None,
        household_wishes=plan.household_wishes if plan else None,
        goals=goals,
        adopted_by=e.adopted_by,
        adopted_at=e.adopted_at,
    )


async def _plan(
    store: EventStore, identity: Identity, case_id: str
) -> tuple[SupportPlan, Reader | None]:
    reader = await _checked(store, identity, case_id, plan=True)
    return await _fold(store, plan_stream(case_id), lambda: SupportPlan(case_id)), reader


async def plan_as_of(
    store: EventStore, identity: Identity, case_id: str, as_of: date | None
) -> PlanView:
    """The version in force on ``as_of`` (default: the newest version)."""
    plan, reader = await _plan(store, identity, case_id)
    found = plan.as_of(as_of)
    if found is None:
        raise not_found("plan", "支援プラン", case_id)
    return plan_view(found, reader)


async def plan_versions(store: EventStore, identity: Identity, case_id: str) -> list[PlanView]:
    plan, reader = await _plan(store, identity, case_id)
    return [plan_view(v, reader) for v in plan.versions]


def review_view(e: PlanReviewed) -> ReviewView:
    scores = getattr(e, "review", None)
    notes = {g.goal_id: g.note for g in scores.goals} if scores else {}
    return ReviewView(
        review_id=e.review_id,
        case_id=e.case_id,
        plan_version=e.plan_version,
        reviewed_on=e.reviewed_on,
        meeting_id=e.meeting_id,
        next_review_on=e.next_review_on,
        self_reliance=[
            AreaScoreView(area=labelled(s.area), score=s.score) for s in scores.self_reliance
        ]
        if scores
        else [],
        connectedness=scores.connectedness if scores else None,
        connections=[ConnectionView.of(c) for c in scores.connections] if scores else [],
        goals=[
            GoalReviewView(goal_id=g, progress=labelled(p), note=notes.get(g))
            for g, p in e.goal_progress.items()
        ],
        summary=scores.summary if scores else None,
        reviewed_by=e.reviewed_by,
        reviewed_at=e.reviewed_at,
    )


async def reviews(store: EventStore, identity: Identity, case_id: str) -> list[ReviewView]:
    await _checked(store, identity, case_id, plan=False)
    state = await _fold(store, plan_stream(case_id), lambda: SupportPlan(case_id))
    return [review_view(r) for r in state.reviews]


async def requests(conn: AsyncConnection, identity: Identity, case_id: str) -> list[RequestView]:
    """The case's requests to the other pillars, oldest first."""
    await readable(conn, identity, case_id)
    rows = await conn.execute(
        select(case_requests)
        .where(case_requests.c.case_id == case_id)
        .order_by(case_requests.c.requested_at, case_requests.c.request_id)
    )
    return [
        RequestView(
            request_id=r.request_id,
            case_id=r.case_id,
            kind=r.kind,
            action_id=r.action_id,
            to_agency=r.to_agency,
            requested_at=r.requested_at,
        )
        for r in rows
    ]
