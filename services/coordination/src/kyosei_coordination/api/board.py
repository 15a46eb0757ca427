"""HTTP API of the coordinator's board (調整ボード), an agency's assigned actions (役割)
and a case's timeline (経過). Read only: built from coordination's events, with no
personal field but an action's task, read from the store for the agency it is
assigned to, coordinators and auditors."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from kyosei_platform.api import Reader
from kyosei_platform.application import today
from kyosei_platform.http import Runtime

from ..board import views

router = APIRouter(tags=["board 調整ボード"])


@router.get("/cases/{case_id}/timeline", response_model=list[views.TimelineEntry])
async def case_timeline(
    case_id: str, identity: Reader, runtime: Runtime
) -> list[views.TimelineEntry]:
    """The case's timeline, oldest first: its opening, consultations, agency and member
    changes, meetings (that they were scheduled and held: kind, date, participants;
    never what they recorded), assessments, plan versions, role assignments, reviews,
    requests to the other pillars and their outcomes, review flags, members' ends,
    closing and reopening. For whoever may see the case (else 404) and auditors."""
    async with runtime.engine.connect() as conn:
        return await views.timeline(conn, identity, case_id)


@router.get("/board", response_model=views.BoardView)
async def coordinator_board(
    identity: Reader,
    runtime: Runtime,
    on: Annotated[
        date | None, Query(alias="today", description="the day the board is for (JST today)")
    ] = None,
) -> views.BoardView:
    """The coordinator's board: open cases by stage, overdue reviews, cases waiting for
    consent after a 支援会議, cases flagged by a member's life change, cases accompanied
    in つながり続ける伴走 (never stalled) and stalled cases (no activity for 90 days).
    Coordinators and auditors: every case; staff: the cases their agency may see."""
    async with runtime.engine.connect() as conn:
        return await views.board(conn, identity, on or today())


@router.get("/actions", response_model=list[views.ActionView])
async def assigned_actions(
    identity: Reader,
    runtime: Runtime,
    agency_id: Annotated[str | None, Query(max_length=64)] = None,
    case_id: Annotated[str | None, Query(max_length=80)] = None,
    overdue_only: bool = False,
    on: Annotated[
        date | None, Query(alias="today", description="the day overdue is judged on")
    ] = None,
) -> list[views.ActionView]:
    """役割分担: the actions of each open case's current plan version assigned to an
    agency, soonest due first, with the task. Staff read their own agency's
    (``agency_id`` defaults to it; another agency is 403 other_agency_actions);
    coordinators and auditors any agency's, every agency's without ``agency_id``. An
    action a later plan version dropped is no longer listed."""
    return await views.actions(
        runtime.store,
        identity,
        agency_id=agency_id,
        case_id=case_id,
        overdue_only=overdue_only,
        on=on or today(),
    )
