"""Read models of coordination (no personal fields: those stay sealed in the store)."""

from __future__ import annotations

import json

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    select,
    update,
)

from kyosei_events import DecodedEvent, UnitOfWork
from kyosei_events.catalogue.coordination import (
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
    MemberSupportEnded,
    PlanReviewed,
)
from kyosei_events.direct import execute

metadata = MetaData()

cases = Table(
    "cases",
    metadata,
    Column("case_id", String(80), primary_key=True),
    Column("household_id", String(64), index=True),
    Column("consultation_id", String(64)),  # the one it was opened for (None: directly)
    Column("escalated_by", String(64), index=True),
    Column("concerns", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_at", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("main_agency", String(64), index=True),
    Column("opened_by", String(64)),
    Column("member_ids", Text, nullable=False, default="[]"),
    Column("merged_into", String(80)),
    Column("closed_reason", String(32)),
    Column("closed_on", String(10)),
    Column("handed_to", String(64)),
)

# Life changes that flagged a case for review: open until withdrawn (the change was
# retracted) or until a review (PlanReviewed) on or after the day it happened.
case_review_flags = Table(
    "case_review_flags",
    metadata,
    Column("case_id", String(80), primary_key=True),
    Column("change_id", String(64), primary_key=True),
    Column("member_id", String(64), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("occurred_on", String(10), nullable=False),
    Column("flagged_at", String(40), nullable=False),
    Column("withdrawn", Boolean, nullable=False),
    Column("reviewed_by", String(64)),  # the review that answered it
)

# 本人分の終結: members whose support ended while the case goes on.
case_ended_members = Table(
    "case_ended_members",
    metadata,
    Column("case_id", String(80), primary_key=True),
    Column("member_id", String(64), primary_key=True),
    Column("reason", String(32), nullable=False),
    Column("handed_to", String(64)),
    Column("ended_on", String(10), nullable=False),
)

# Every consultation behind a case: the one it was opened for and those added later.
case_consultations = Table(
    "case_consultations",
    metadata,
    Column("consultation_id", String(64), primary_key=True),
    Column("case_id", String(80), nullable=False, index=True),
    Column("escalated_by", String(64), nullable=False),
    Column("added_at", String(40), nullable=False),
)


# Built once: a statement built per call has its cache key generated again every time.
_INSERT_CASE = cases.insert()
_INSERT_CASE_CONSULTATION = case_consultations.insert()


class CaseList:
    """One row per coordination case (open, closed or merged), the consultations behind
    each, the members whose support ended, and the review flags raised by members' life
    changes (withdrawn when the change is retracted; answered by a PlanReviewed dated on
    or after the change)."""

    name = "coordination.cases"

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        conn = uow.conn
        for d in events:
            e = d.event
            version = d.recorded.version
            case_id = getattr(e, "case_id", None)
            if isinstance(e, CaseOpened):
                await execute(
                    conn,
                    _INSERT_CASE,
                    {
                        "case_id": e.case_id,
                        "household_id": e.household_id,
                        "consultation_id": e.consultation_id,
                        "escalated_by": e.escalated_by,
                        "concerns": json.dumps([c.value for c in e.concerns]),
                        "status": "open",
                        "opened_at": e.opened_at.isoformat(),
                        "version": version,
                        "main_agency": e.main_agency or e.escalated_by,
                        "opened_by": e.opened_by,
                        "member_ids": json.dumps(e.member_ids),
                    },
                )
                if e.consultation_id and e.escalated_by:
                    await execute(
                        conn,
                        _INSERT_CASE_CONSULTATION,
                        {
                            "consultation_id": e.consultation_id,
                            "case_id": e.case_id,
                            "escalated_by": e.escalated_by,
                            "added_at": e.opened_at.isoformat(),
                        },
                    )
                continue
            if isinstance(e, ConsultationAddedToCase):
                # A case merged into another keeps nothing of it: the row moves.
                await conn.execute(
                    delete(case_consultations).where(
                        case_consultations.c.consultation_id == e.consultation_id
                    )
                )
                await conn.execute(
                    case_consultations.insert().values(
                        consultation_id=e.consultation_id,
                        case_id=e.case_id,
                        escalated_by=e.escalated_by,
                        added_at=e.added_at.isoformat(),
                    )
                )
                row = (
                    await conn.execute(select(cases.c.concerns).where(cases.c.case_id == e.case_id))
                ).one()
                known = json.loads(row.concerns)
                known += [c.value for c in e.concerns if c.value not in known]
                values: dict[str, object] = {"concerns": json.dumps(known)}
            elif isinstance(e, CaseLinkedToHousehold):
                values = {"household_id": e.household_id}
            elif isinstance(e, CaseMergedInto):
                values = {"status": "merged", "merged_into": e.into_case_id}
            elif isinstance(e, CaseMainAgencyChanged):
                values = {"main_agency": e.main_agency}
            elif isinstance(e, CaseMembersChanged):
                values = {"member_ids": json.dumps(e.member_ids)}
            elif isinstance(e, CaseClosed):
                values = {
                    "status": "closed",
                    "closed_reason": e.reason.value,
                    "closed_on": e.closed_on.isoformat(),
                    "handed_to": e.handed_to,
                }
            elif isinstance(e, CaseReopened):
                values = {"status": "open", "closed_reason": None, "closed_on": None}
                values["handed_to"] = None
            elif isinstance(e, CaseReviewFlagged):
                await conn.execute(
                    case_review_flags.insert().values(
                        case_id=e.case_id,
                        change_id=e.change_id,
                        member_id=e.member_id,
                        reason=e.reason.value,
                        occurred_on=e.occurred_on.isoformat(),
                        flagged_at=e.flagged_at.isoformat(),
                        withdrawn=False,
                        reviewed_by=None,
                    )
                )
                values = {}
            elif isinstance(e, CaseReviewFlagWithdrawn):
                await conn.execute(
                    update(case_review_flags)
                    .where(
                        case_review_flags.c.case_id == e.case_id,
                        case_review_flags.c.change_id == e.change_id,
                    )
                    .values(withdrawn=True)
                )
                values = {}
            elif isinstance(e, MemberSupportEnded):
                for member_id in e.member_ids:
                    await conn.execute(
                        case_ended_members.insert().values(
                            case_id=e.case_id,
                            member_id=member_id,
                            reason=e.reason.value,
                            handed_to=e.handed_to,
                            ended_on=e.ended_on.isoformat(),
                        )
                    )
                values = {}
            elif isinstance(e, PlanReviewed):
                # On the plan's stream, not the case's: the case's version stays.
                await conn.execute(
                    update(case_review_flags)
                    .where(
                        and_(
                            case_review_flags.c.case_id == e.case_id,
                            case_review_flags.c.reviewed_by.is_(None),
                            case_review_flags.c.occurred_on <= e.reviewed_on.isoformat(),
                        )
                    )
                    .values(reviewed_by=e.review_id)
                )
                continue
            elif case_id == d.recorded.stream_id:
                # Any other event of the case's own stream (an outcome received, a plan…)
                # moves its version, so that its ETag is the stream's.
                values = {}
            else:
                continue
            await conn.execute(
                update(cases).where(cases.c.case_id == case_id).values(**values, version=version)
            )

    async def reset(self, uow: UnitOfWork) -> None:
        await uow.conn.execute(delete(case_review_flags))
        await uow.conn.execute(delete(case_ended_members))
        await uow.conn.execute(delete(case_consultations))
        await uow.conn.execute(delete(cases))
