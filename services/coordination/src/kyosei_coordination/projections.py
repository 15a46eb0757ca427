"""Read models of coordination (no personal fields: those stay sealed in the store)."""

from __future__ import annotations

import json

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, delete, update

from kyosei_events import DecodedEvent, UnitOfWork
from kyosei_events.catalogue.coordination import CaseLinkedToHousehold, CaseOpened

metadata = MetaData()

cases = Table(
    "cases",
    metadata,
    Column("case_id", String(80), primary_key=True),
    Column("household_id", String(64), index=True),
    Column("consultation_id", String(64), nullable=False),
    Column("escalated_by", String(64), nullable=False, index=True),
    Column("concerns", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_at", String(40), nullable=False),
    Column("version", Integer, nullable=False),
)


class CaseList:
    """One row per coordination case."""

    name = "coordination.cases"

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        for d in events:
            e = d.event
            if isinstance(e, CaseOpened):
                await uow.conn.execute(
                    cases.insert().values(
                        case_id=e.case_id,
                        household_id=e.household_id,
                        consultation_id=e.consultation_id,
                        escalated_by=e.escalated_by,
                        concerns=json.dumps([c.value for c in e.concerns]),
                        status="open",
                        opened_at=e.opened_at.isoformat(),
                        version=d.recorded.version,
                    )
                )
            elif isinstance(e, CaseLinkedToHousehold):
                await uow.conn.execute(
                    update(cases)
                    .where(cases.c.case_id == e.case_id)
                    .values(household_id=e.household_id, version=d.recorded.version)
                )

    async def reset(self, uow: UnitOfWork) -> None:
        await uow.conn.execute(delete(cases))
