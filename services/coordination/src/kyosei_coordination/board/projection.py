"""The board's read models, built from events only and holding no personal field:

- ``board_cases``: per case, what the board sorts it by (closed, the current plan
  version and its approaches, the next review date, open review flags, whether a
  支援会議 or a 重層的支援会議 was held, the members whose support ended, the last
  activity);
- ``timeline_entries``: one row per case-related event, with a small dict of
  non-personal values (nothing of what a meeting recorded: MeetingRecorded,
  corrections and re-shares make no entry);
- ``assigned_actions``: every plan action assigned to an agency, per plan version (the
  task itself stays sealed in the event store: the row names the RoleAssigned event);
- ``outreach_links``: which case an outreach started for (from RequestOutcomeReceived
  outreach_started), so that its end reaches the case.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy import case as sql_case
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events import DecodedEvent, UnitOfWork
from kyosei_events.catalogue.coordination import (
    Approach,
    AssessmentRecorded,
    CaseClosed,
    CaseLinkedToHousehold,
    CaseMainAgencyChanged,
    CaseMembersChanged,
    CaseMergedInto,
    CaseOpened,
    CaseReopened,
    CaseReviewFlagged,
    CaseReviewFlagWithdrawn,
    ConsultationAddedToCase,
    MeetingKind,
    MeetingScheduled,
    MemberSupportEnded,
    OutcomeKind,
    OutreachRequested,
    ParticipationRequested,
    PlanReviewed,
    RequestOutcomeReceived,
    RoleAssigned,
    SupportMeetingHeld,
    SupportPlanAdopted,
)
from kyosei_events.direct import execute
from kyosei_events.model import DomainEvent
from kyosei_platform.api import rfc3339

from ..projections import metadata

board_cases = Table(
    "board_cases",
    metadata,
    Column("case_id", String(80), primary_key=True),
    Column("closed", Boolean, nullable=False),
    Column("plan_version", Integer),
    Column("approaches", Text, nullable=False),  # JSON: the current plan's approaches
    Column("next_review_on", String(10)),
    Column("flags", Text, nullable=False),  # JSON: open review flags
    Column("confidential_held", Boolean, nullable=False),
    Column("multi_layered_held", Boolean, nullable=False),
    Column("ended_member_ids", Text, nullable=False),  # JSON
    Column("last_activity_at", String(40), nullable=False),
)

timeline_entries = Table(
    "timeline_entries",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("case_id", String(80), nullable=False, index=True),
    Column("position", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("at", String(40), nullable=False),
    Column("type", String(64), nullable=False),
    Column("label_ja", String(100), nullable=False),
    Column("agency_id", String(64)),
    Column("ref_id", String(80)),
    Column("detail", Text, nullable=False),  # JSON, non-personal values only
)

assigned_actions = Table(
    "assigned_actions",
    metadata,
    Column("case_id", String(80), primary_key=True),
    Column("plan_version", Integer, primary_key=True),
    Column("action_id", String(64), primary_key=True),
    Column("goal_id", String(64), nullable=False),
    Column("responsible_agency", String(64), nullable=False, index=True),
    Column("due_on", String(10)),
    Column("stream_id", String(200), nullable=False),  # where the RoleAssigned is
    Column("event_id", String(64), nullable=False),
)

outreach_links = Table(
    "outreach_links",
    metadata,
    Column("outreach_id", String(64), primary_key=True),
    Column("case_id", String(80), nullable=False),
    Column("agency_id", String(64), nullable=False),
)

# The event's own time, by the first of these fields it has (else when it was stored).
_TIME_FIELDS = (
    "opened_at",
    "added_at",
    "merged_at",
    "changed_at",
    "linked_at",
    "scheduled_at",
    "recorded_at",
    "adopted_at",
    "assigned_at",
    "reviewed_at",
    "requested_at",
    "occurred_at",
    "flagged_at",
    "withdrawn_at",
    "ended_at",
    "closed_at",
    "reopened_at",
)


def occurred_at(d: DecodedEvent) -> str:
    for name in _TIME_FIELDS:
        value = getattr(d.event, name, None)
        if isinstance(value, datetime):
            return rfc3339(value)
    return rfc3339(datetime.fromisoformat(d.recorded.recorded_at))


def _entry(e: DomainEvent) -> tuple[str | None, str | None, dict[str, Any]] | None:
    """What the timeline shows of a case event: (agency, ref id, detail), or None when
    the event makes no entry. Only non-personal fields are read here."""
    match e:
        case CaseOpened():
            return (
                e.main_agency or e.escalated_by,
                e.consultation_id,
                {
                    "escalated_by": e.escalated_by,
                    "opened_by": e.opened_by,
                    "member_ids": e.member_ids,
                    "concerns": [c.value for c in e.concerns],
                },
            )
        case ConsultationAddedToCase():
            return e.escalated_by, e.consultation_id, {"concerns": [c.value for c in e.concerns]}
        case CaseLinkedToHousehold():
            return None, e.household_id, {"consultation_id": e.consultation_id}
        case CaseMergedInto():
            return None, e.into_case_id, {"household_id": e.household_id}
        case CaseMainAgencyChanged():
            return e.main_agency, None, {"previous_agency": e.previous_agency}
        case CaseMembersChanged():
            return None, None, {"member_ids": e.member_ids}
        case MeetingScheduled():
            return (
                e.convening_agency,
                e.meeting_id,
                {
                    "kind": e.kind.value,
                    "scheduled_for": rfc3339(e.scheduled_for),
                    "participant_agencies": e.participant_agencies,
                },
            )
        case SupportMeetingHeld():
            return (
                e.convening_agency,
                e.meeting_id,
                {
                    "kind": e.kind.value,
                    "held_on": e.held_on.isoformat(),
                    "participant_agencies": e.participant_agencies,
                    "consent_obtained": e.consent_obtained,
                },
            )
        case AssessmentRecorded():
            return (
                e.recorded_by,
                None,
                {"version": e.version, "assessed_on": e.assessed_on.isoformat()},
            )
        case SupportPlanAdopted():
            return (
                e.adopted_by,
                e.meeting_id,
                {
                    "version": e.version,
                    "adopted_on": e.adopted_on.isoformat(),
                    "review_on": e.review_on.isoformat(),
                    "approaches": _approaches(e),
                },
            )
        case RoleAssigned():
            return (
                e.responsible_agency,
                e.action_id,
                {
                    "plan_version": e.plan_version,
                    "goal_id": e.goal_id,
                    "due_on": e.due_on.isoformat() if e.due_on else None,
                },
            )
        case PlanReviewed():
            return (
                e.reviewed_by,
                e.review_id,
                {
                    "plan_version": e.plan_version,
                    "reviewed_on": e.reviewed_on.isoformat(),
                    "next_review_on": e.next_review_on.isoformat(),
                    "goal_progress": {g: p.value for g, p in e.goal_progress.items()},
                },
            )
        case ParticipationRequested():
            return (
                e.participation_agency,
                e.request_id,
                {"member_id": e.member_id, "action_id": e.action_id, "area": e.area},
            )
        case OutreachRequested():
            return (
                e.outreach_agency,
                e.request_id,
                {"member_id": e.member_id, "concerns": [c.value for c in e.concerns]},
            )
        case RequestOutcomeReceived():
            return e.agency_id, e.ref_id, {"kind": e.kind.value}
        case CaseReviewFlagged():
            return (
                None,
                e.change_id,
                {
                    "reason": e.reason.value,
                    "member_id": e.member_id,
                    "occurred_on": e.occurred_on.isoformat(),
                },
            )
        case MemberSupportEnded():
            return (
                e.ended_by,
                None,
                {
                    "member_ids": e.member_ids,
                    "reason": e.reason.value,
                    "handed_to": e.handed_to,
                    "ended_on": e.ended_on.isoformat(),
                },
            )
        case CaseClosed():
            return (
                e.closed_by,
                None,
                {
                    "reason": e.reason.value,
                    "handed_to": e.handed_to,
                    "closed_on": e.closed_on.isoformat(),
                },
            )
        case CaseReopened():
            return e.reopened_by, None, {}
    return None


def _approaches(e: SupportPlanAdopted) -> list[str]:
    seen = {a for g in e.goals for a in g.approaches}
    return [a.value for a in Approach if a in seen]


@functools.cache
def _fresh_board_row(dialect: str) -> Any:
    """The upsert that writes a case's board row as new (values bound at execution),
    built once per dialect."""
    insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(board_cases)
    replaced = [c.name for c in board_cases.c if c.name != "case_id"]
    return insert.on_conflict_do_update(
        index_elements=[board_cases.c.case_id],
        set_={name: insert.excluded[name] for name in replaced},
    )


# Built once: a statement built per call has its cache key generated again every time.
_INSERT_TIMELINE_ENTRY = timeline_entries.insert()


class Board:
    """The coordinator's board, the agencies' actions and the cases' timelines."""

    name = "coordination.board"

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        conn = uow.conn
        for d in events:
            e = d.event
            case_id = getattr(e, "case_id", None)
            if not isinstance(case_id, str):
                continue
            at = occurred_at(d)
            if isinstance(e, CaseOpened):
                # The case's row as new, whatever was there: one statement.
                fresh = {
                    "closed": False,
                    "plan_version": None,
                    "approaches": "[]",
                    "next_review_on": None,
                    "flags": "[]",
                    "confidential_held": False,
                    "multi_layered_held": False,
                    "ended_member_ids": "[]",
                    "last_activity_at": at,
                }
                await execute(
                    conn, _fresh_board_row(conn.dialect.name), {"case_id": case_id, **fresh}
                )
            entry = _entry(e)
            if entry is not None:
                agency_id, ref_id, detail = entry
                await self._add(conn, d, case_id, at, agency_id, ref_id, detail)
            elif isinstance(e, CaseReviewFlagWithdrawn):
                flag = await self._withdraw(conn, case_id, e.change_id)
                await self._add(
                    conn, d, case_id, at, None, e.change_id, {"reason": flag and flag["reason"]}
                )
            if not isinstance(e, CaseOpened):  # its row was just written as of ``at``
                await self._board(conn, d, case_id, at)

    @staticmethod
    async def _add(
        conn: AsyncConnection,
        d: DecodedEvent,
        case_id: str,
        at: str,
        agency_id: str | None,
        ref_id: str | None,
        detail: dict[str, Any],
    ) -> None:
        await execute(
            conn,
            _INSERT_TIMELINE_ENTRY,
            {
                "event_id": d.recorded.event_id,
                "case_id": case_id,
                "position": d.recorded.position,
                "at": at,
                "type": d.event.event_type,
                "label_ja": d.event.label_ja,
                "agency_id": agency_id or d.metadata.agency_id,
                "ref_id": ref_id,
                "detail": json.dumps(detail, ensure_ascii=False),
            },
        )

    @staticmethod
    async def _row(conn: AsyncConnection, case_id: str) -> Any:
        return (
            await conn.execute(select(board_cases).where(board_cases.c.case_id == case_id))
        ).first()

    async def _withdraw(
        self, conn: AsyncConnection, case_id: str, change_id: str
    ) -> dict[str, Any] | None:
        row = await self._row(conn, case_id)
        if row is None:
            return None
        flags = json.loads(row.flags)
        gone = next((f for f in flags if f["change_id"] == change_id), None)
        kept = [f for f in flags if f["change_id"] != change_id]
        await conn.execute(
            update(board_cases)
            .where(board_cases.c.case_id == case_id)
            .values(flags=json.dumps(kept))
        )
        return gone

    async def _board(self, conn: AsyncConnection, d: DecodedEvent, case_id: str, at: str) -> None:
        e = d.event
        values: dict[str, Any] = {}
        if isinstance(e, SupportMeetingHeld):
            if e.kind is MeetingKind.CONFIDENTIAL:
                values["confidential_held"] = True
            elif e.kind is MeetingKind.MULTI_LAYERED:
                values["multi_layered_held"] = True
        elif isinstance(e, SupportPlanAdopted):
            row = await self._row(conn, case_id)
            if row is not None and (row.plan_version or 0) > e.version:
                return  # an older version told late: the current plan stays
            values.update(
                plan_version=e.version,
                approaches=json.dumps(_approaches(e)),
                next_review_on=e.review_on.isoformat(),
            )
        elif isinstance(e, RoleAssigned):
            key = (
                (assigned_actions.c.case_id == case_id)
                & (assigned_actions.c.plan_version == e.plan_version)
                & (assigned_actions.c.action_id == e.action_id)
            )
            await conn.execute(delete(assigned_actions).where(key))
            await conn.execute(
                assigned_actions.insert().values(
                    case_id=case_id,
                    plan_version=e.plan_version,
                    action_id=e.action_id,
                    goal_id=e.goal_id,
                    responsible_agency=e.responsible_agency,
                    due_on=e.due_on.isoformat() if e.due_on else None,
                    stream_id=d.recorded.stream_id,
                    event_id=d.recorded.event_id,
                )
            )
        elif isinstance(e, PlanReviewed):
            row = await self._row(conn, case_id)
            if row is not None:
                reviewed = e.reviewed_on.isoformat()
                values.update(
                    next_review_on=e.next_review_on.isoformat(),
                    flags=json.dumps(
                        [f for f in json.loads(row.flags) if f["occurred_on"] > reviewed]
                    ),
                )
        elif isinstance(e, CaseReviewFlagged):
            row = await self._row(conn, case_id)
            if row is not None:
                flags = [f for f in json.loads(row.flags) if f["change_id"] != e.change_id]
                flags.append(
                    {
                        "change_id": e.change_id,
                        "reason": e.reason.value,
                        "member_id": e.member_id,
                        "occurred_on": e.occurred_on.isoformat(),
                    }
                )
                values["flags"] = json.dumps(flags)
        elif isinstance(e, MemberSupportEnded):
            row = await self._row(conn, case_id)
            if row is not None:
                ended = json.loads(row.ended_member_ids)
                ended += [m for m in e.member_ids if m not in ended]
                values["ended_member_ids"] = json.dumps(ended)
        elif isinstance(e, CaseClosed):
            values["closed"] = True
        elif isinstance(e, CaseReopened):
            values["closed"] = False
        elif isinstance(e, RequestOutcomeReceived) and e.kind is OutcomeKind.OUTREACH_STARTED:
            await conn.execute(
                delete(outreach_links).where(outreach_links.c.outreach_id == e.ref_id)
            )
            await conn.execute(
                outreach_links.insert().values(
                    outreach_id=e.ref_id, case_id=case_id, agency_id=e.agency_id
                )
            )
        await conn.execute(
            update(board_cases)
            .where(board_cases.c.case_id == case_id)
            .values(
                **values,
                last_activity_at=sql_case(
                    (board_cases.c.last_activity_at < at, at),
                    else_=board_cases.c.last_activity_at,
                ),
            )
        )

    async def reset(self, uow: UnitOfWork) -> None:
        for table in (outreach_links, assigned_actions, timeline_entries, board_cases):
            await uow.conn.execute(delete(table))
