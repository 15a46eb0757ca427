"""Read models of coordination (no personal fields: those stay sealed in the store)."""

from __future__ import annotations

import json

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, delete, select, update

from kyosei_events import DecodedEvent, UnitOfWork
from kyosei_events.catalogue.coordination import (
    CaseLinkedToHousehold,
    CaseMainAgencyChanged,
    CaseMembersChanged,
    CaseMergedInto,
    CaseOpened,
    ConsultationAddedToCase,
)

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


class CaseList:
    """One row per coordination case, and the consultations behind each."""

    name = "coordination.cases"

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        conn = uow.conn
        for d in events:
            e = d.event
            version = d.recorded.version
            case_id = getattr(e, "case_id", None)
            if isinstance(e, CaseOpened):
                await conn.execute(
                    cases.insert().values(
                        case_id=e.case_id,
                        household_id=e.household_id,
                        consultation_id=e.consultation_id,
                        escalated_by=e.escalated_by,
                        concerns=json.dumps([c.value for c in e.concerns]),
                        status="open",
                        opened_at=e.opened_at.isoformat(),
                        version=version,
                        main_agency=e.main_agency or e.escalated_by,
                        opened_by=e.opened_by,
                        member_ids=json.dumps(e.member_ids),
                    )
                )
                if e.consultation_id and e.escalated_by:
                    await conn.execute(
                        case_consultations.insert().values(
                            consultation_id=e.consultation_id,
                            case_id=e.case_id,
                            escalated_by=e.escalated_by,
                            added_at=e.opened_at.isoformat(),
                        )
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
        await uow.conn.execute(delete(case_consultations))
        await uow.conn.execute(delete(cases))
