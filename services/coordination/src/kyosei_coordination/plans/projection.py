"""The plans read model: plan versions, the actions of each version and their agencies,
reviews with each goal's progress, and requests to the other pillars. No personal
text: wishes, goals, tasks, assessments and review notes stay sealed in the event
store and are read from there, for those who may."""

from __future__ import annotations

import json

from sqlalchemy import Column, Integer, String, Table, Text, delete

from kyosei_events import DecodedEvent, UnitOfWork
from kyosei_events.catalogue.coordination import (
    ActionRequestMade,
    PlanReviewed,
    RoleAssigned,
    SupportPlanAdopted,
)
from kyosei_platform.api import rfc3339

from ..projections import metadata

plan_versions = Table(
    "plan_versions",
    metadata,
    Column("case_id", String(80), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("adopted_on", String(10), nullable=False),
    Column("review_on", String(10), nullable=False),
    Column("meeting_id", String(64)),
    Column("adopted_by", String(64), nullable=False),
    Column("adopted_at", String(40), nullable=False),
)

plan_actions = Table(
    "plan_actions",
    metadata,
    Column("case_id", String(80), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("action_id", String(64), primary_key=True),
    Column("goal_id", String(64), nullable=False),
    Column("responsible_agency", String(64), nullable=False, index=True),
    Column("due_on", String(10)),
)

plan_reviews = Table(
    "plan_reviews",
    metadata,
    Column("review_id", String(64), primary_key=True),
    Column("case_id", String(80), nullable=False, index=True),
    Column("plan_version", Integer, nullable=False),
    Column("reviewed_on", String(10), nullable=False),
    Column("next_review_on", String(10), nullable=False),
    Column("goal_progress", Text, nullable=False),  # JSON: goal id -> progress
    Column("reviewed_at", String(40), nullable=False),
)

case_requests = Table(
    "case_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("case_id", String(80), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("action_id", String(64)),
    Column("to_agency", String(64), nullable=False),
    Column("requested_at", String(40), nullable=False),
)


class PlanList:
    """One row per plan version, per action of each version, per review, per request."""

    name = "coordination.plans"

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        for d in events:
            e = d.event
            if isinstance(e, SupportPlanAdopted):
                await uow.conn.execute(
                    plan_versions.insert().values(
                        case_id=e.case_id,
                        version=e.version,
                        adopted_on=e.adopted_on.isoformat(),
                        review_on=e.review_on.isoformat(),
                        meeting_id=e.meeting_id,
                        adopted_by=e.adopted_by,
                        adopted_at=rfc3339(e.adopted_at),
                    )
                )
            elif isinstance(e, RoleAssigned):
                await uow.conn.execute(
                    plan_actions.insert().values(
                        case_id=e.case_id,
                        version=e.plan_version,
                        action_id=e.action_id,
                        goal_id=e.goal_id,
                        responsible_agency=e.responsible_agency,
                        due_on=e.due_on.isoformat() if e.due_on else None,
                    )
                )
            elif isinstance(e, PlanReviewed):
                await uow.conn.execute(
                    plan_reviews.insert().values(
                        review_id=e.review_id,
                        case_id=e.case_id,
                        plan_version=e.plan_version,
                        reviewed_on=e.reviewed_on.isoformat(),
                        next_review_on=e.next_review_on.isoformat(),
                        goal_progress=json.dumps({k: v.value for k, v in e.goal_progress.items()}),
                        reviewed_at=rfc3339(e.reviewed_at),
                    )
                )
            elif isinstance(e, ActionRequestMade):
                await uow.conn.execute(
                    case_requests.insert().values(
                        request_id=e.request_id,
                        case_id=e.case_id,
                        kind=e.kind.value,
                        action_id=e.action_id,
                        to_agency=e.to_agency,
                        requested_at=rfc3339(e.requested_at),
                    )
                )

    async def reset(self, uow: UnitOfWork) -> None:
        for table in (case_requests, plan_reviews, plan_actions, plan_versions):
            await uow.conn.execute(delete(table))
