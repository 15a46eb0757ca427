"""The read side of the board: the coordinator's board, an agency's assigned actions and
a case's timeline. Built from the board's read models, which hold no personal field;
an action's task (personal) is read from the store's RoleAssigned for the reader."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events import EventStore
from kyosei_events.catalogue.coordination import (
    Approach,
    ReviewFlagReason,
    RoleAssigned,
)
from kyosei_events.catalogue.intake import ConsentPurpose
from kyosei_households import find, listed_agency
from kyosei_platform.api import LabelledValue, Timestamp, labelled
from kyosei_platform.application import JST, Rejected, forbidden
from kyosei_platform.auth import Identity

from ..domain.case import MERGED, OPEN
from ..projections import cases
from ..views import get_case, visible_to
from .projection import assigned_actions, board_cases, timeline_entries

STALLED_AFTER = timedelta(days=90)
STAGES = ("support_meeting", "assessment", "planned", "closed")


class TimelineEntry(BaseModel):
    """One event of the case: its type and Japanese label, the agency it names, the id
    it refers to (meeting, action, review, request, outreach, match…) and a few
    non-personal values (``detail``)."""

    at: Timestamp
    type: str
    label_ja: str
    agency_id: str | None
    ref_id: str | None
    detail: dict[str, Any]


class Flag(BaseModel):
    """An open review flag (見直しフラグ): a member's life change."""

    reason: LabelledValue
    member_id: str
    occurred_on: date


class CaseCard(BaseModel):
    case_id: str
    household_id: str | None
    main_agency: str | None
    stage: str = Field(description="support_meeting, assessment, planned or closed")
    plan_version: int | None
    next_review_on: date | None = Field(
        description="the latest review's next review date, else the current plan's review_on"
    )
    review_overdue_days: int
    flags: list[Flag]
    approaches: list[LabelledValue] = Field(
        description="the approaches of the current plan's goals"
    )
    opened_at: Timestamp
    last_activity_at: Timestamp


class BoardView(BaseModel):
    """The coordinator's board (cases merged into another are not on it)."""

    as_of: date
    stages: dict[str, list[CaseCard]] = Field(
        description="support_meeting (支援会議 only: not every member concerned consented to "
        "a 重層的支援会議), assessment (no plan yet), planned (a plan version adopted), closed"
    )
    overdue_reviews: list[CaseCard] = Field(description="open cases past their next review")
    waiting_for_consent: list[CaseCard] = Field(
        description="cases that held a 支援会議 where a member concerned has not consented "
        "to a 重層的支援会議 (purpose multi_layered_meeting)"
    )
    flagged: list[CaseCard] = Field(description="open cases with an open review flag")
    accompanying: list[CaseCard] = Field(
        description="open cases whose plan has a つながり続ける伴走 goal: reviewed on their "
        "schedule, never stalled"
    )
    stalled: list[CaseCard] = Field(
        description="open cases without a 伴走 goal and without activity for 90 days"
    )


class ActionView(BaseModel):
    """An action of the current plan version of an open case, assigned to an agency."""

    case_id: str
    plan_version: int
    goal_id: str
    action_id: str
    responsible_agency: str
    due_on: date | None
    overdue: bool
    task: str | None = Field(description="what to do (personal; null once erased)")


async def timeline(conn: AsyncConnection, identity: Identity, case_id: str) -> list[TimelineEntry]:
    """Every event of the case, oldest first, for whoever may see the case."""
    await get_case(conn, identity, case_id)  # 404 for whoever may not see it
    rows = await conn.execute(
        select(timeline_entries)
        .where(timeline_entries.c.case_id == case_id)
        .order_by(timeline_entries.c.position)
    )
    return [
        TimelineEntry(
            at=r.at,
            type=r.type,
            label_ja=r.label_ja,
            agency_id=r.agency_id,
            ref_id=r.ref_id,
            detail=json.loads(r.detail),
        )
        for r in rows
    ]


async def _waiting_for_consent(conn: AsyncConnection, row: Any, on: date) -> bool:
    """Whether a member the case concerns (all of the household's when it names none;
    not those whose support ended, nor the deceased) has no multi_layered_meeting
    consent in force."""
    household = await find(conn, row.household_id) if row.household_id else None
    if household is None:
        return True
    named = json.loads(row.member_ids)
    concerned = {household.person(m) for m in named} if named else set(household.people)
    concerned -= {household.person(m) for m in json.loads(row.ended_member_ids)}
    concerned = {p for p in concerned if not household.status(p, on).deceased}
    consenting = {
        household.person(c.member_id)
        for c in household.consents
        if c.member_id is not None
        and c.active_on(on)
        and ConsentPurpose.MULTI_LAYERED_MEETING in c.purposes
    }
    return bool(concerned - consenting)


def _card(row: Any, stage: str, on: date) -> CaseCard:
    next_review = date.fromisoformat(row.next_review_on) if row.next_review_on else None
    overdue = (on - next_review).days if next_review and next_review < on else 0
    return CaseCard(
        case_id=row.case_id,
        household_id=row.household_id,
        main_agency=row.main_agency,
        stage=stage,
        plan_version=row.plan_version,
        next_review_on=next_review,
        review_overdue_days=overdue,
        flags=[
            Flag(
                reason=labelled(ReviewFlagReason.of(f["reason"])),
                member_id=f["member_id"],
                occurred_on=f["occurred_on"],
            )
            for f in json.loads(row.flags)
        ],
        approaches=[labelled(Approach.of(a)) for a in json.loads(row.approaches)],
        opened_at=row.opened_at,
        last_activity_at=row.last_activity_at,
    )


async def board(conn: AsyncConnection, identity: Identity, on: date) -> BoardView:
    """Coordinators and auditors: every case; staff: the cases their agency may see."""
    query = (
        select(
            cases.c.case_id,
            cases.c.household_id,
            cases.c.main_agency,
            cases.c.member_ids,
            cases.c.opened_at,
            board_cases.c.closed,
            board_cases.c.plan_version,
            board_cases.c.approaches,
            board_cases.c.next_review_on,
            board_cases.c.flags,
            board_cases.c.confidential_held,
            board_cases.c.multi_layered_held,
            board_cases.c.ended_member_ids,
            board_cases.c.last_activity_at,
        )
        .join(board_cases, board_cases.c.case_id == cases.c.case_id)
        .where(cases.c.status != MERGED)
        .order_by(cases.c.opened_at, cases.c.case_id)
    )
    query = visible_to(query, listed_agency(identity, coordinators_see_all=True))
    view = BoardView(
        as_of=on,
        stages={s: [] for s in STAGES},
        overdue_reviews=[],
        waiting_for_consent=[],
        flagged=[],
        accompanying=[],
        stalled=[],
    )
    for row in (await conn.execute(query)).all():
        waiting = row.confidential_held and await _waiting_for_consent(conn, row, on)
        if row.closed:
            stage = "closed"
        elif row.plan_version is not None:
            stage = "planned"
        elif waiting and not row.multi_layered_held:
            stage = "support_meeting"
        else:
            stage = "assessment"
        card = _card(row, stage, on)
        view.stages[stage].append(card)
        if row.closed:
            continue
        if waiting:
            view.waiting_for_consent.append(card)
        if card.review_overdue_days > 0:
            view.overdue_reviews.append(card)
        if card.flags:
            view.flagged.append(card)
        if Approach.STAYING_CONNECTED.value in {a.value for a in card.approaches}:
            view.accompanying.append(card)
        elif on - card.last_activity_at.astimezone(JST).date() >= STALLED_AFTER:
            view.stalled.append(card)
    view.overdue_reviews.sort(key=lambda c: -c.review_overdue_days)
    return view


def others_actions() -> Rejected:
    return forbidden(
        "other_agency_actions",
        "staff read their own agency's actions only: leave agency_id out or name yours",
        "職員が読めるのは自機関の役割のみです。agency_idを省くか自機関を指定してください",
    )


async def actions(
    store: EventStore,
    identity: Identity,
    *,
    agency_id: str | None,
    case_id: str | None,
    overdue_only: bool,
    on: date,
) -> list[ActionView]:
    """The actions of the current plan version of each open case, assigned to
    ``agency_id`` (staff: their own agency only; coordinators and auditors: any, all
    agencies' when absent), soonest due first."""
    if listed_agency(identity, coordinators_see_all=True) is not None:
        if agency_id not in (None, identity.agency_id):
            raise others_actions()
        agency_id = identity.agency_id
    query = (
        select(assigned_actions)
        .join(
            board_cases,
            and_(
                board_cases.c.case_id == assigned_actions.c.case_id,
                board_cases.c.plan_version == assigned_actions.c.plan_version,
            ),
        )
        .join(cases, cases.c.case_id == assigned_actions.c.case_id)
        .where(board_cases.c.closed.is_(False), cases.c.status == OPEN)
    )
    if agency_id is not None:
        query = query.where(assigned_actions.c.responsible_agency == agency_id)
    if case_id is not None:
        query = query.where(assigned_actions.c.case_id == case_id)
    # The read model first, on a connection closed before the store is read (SQLite
    # allows one transaction at a time).
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    views = []
    for r in rows:
        due = date.fromisoformat(r.due_on) if r.due_on else None
        overdue = due is not None and due < on
        if overdue_only and not overdue:
            continue
        views.append((r, due, overdue))
    tasks: dict[str, str | None] = {}
    by_stream: dict[str, set[str]] = defaultdict(set)
    for r, _, _ in views:
        by_stream[r.stream_id].add(r.event_id)
    for stream_id, ids in by_stream.items():
        events, _ = await store.load(stream_id)
        for d in events:
            if d.recorded.event_id in ids and isinstance(d.event, RoleAssigned):
                tasks[d.recorded.event_id] = d.event.task
    answer = [
        ActionView(
            case_id=r.case_id,
            plan_version=r.plan_version,
            goal_id=r.goal_id,
            action_id=r.action_id,
            responsible_agency=r.responsible_agency,
            due_on=due,
            overdue=overdue,
            task=tasks.get(r.event_id),
        )
        for r, due, overdue in views
    ]
    answer.sort(key=lambda a: (a.due_on or date.max, a.case_id, a.action_id))
    return answer
