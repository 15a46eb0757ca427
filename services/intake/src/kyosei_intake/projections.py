"""Read models of intake. Personal fields never enter a read model: they stay sealed
in the event store, so erasing a household's key erases them everywhere."""

from __future__ import annotations

import json

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text, delete, update

from kyosei_events import DecodedEvent, UnitOfWork
from kyosei_events.catalogue.intake import CaseEscalated, ConsultationReceived

metadata = MetaData()

consultations = Table(
    "consultations",
    metadata,
    Column("consultation_id", String(64), primary_key=True),
    Column("household_id", String(64), index=True),
    Column("agency_id", String(64), nullable=False, index=True),
    Column("window", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("concerns", Text, nullable=False),
    Column("complex", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("version", Integer, nullable=False),
)


class ConsultationList:
    """One row per consultation: the agency inbox and search read from it."""

    name = "intake.consultations"

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        for d in events:
            e, version = d.event, d.recorded.version
            if isinstance(e, ConsultationReceived):
                await uow.conn.execute(
                    consultations.insert().values(
                        consultation_id=e.consultation_id,
                        household_id=e.household_id,
                        agency_id=e.agency_id,
                        window=e.window.value,
                        channel=e.channel.value,
                        concerns=json.dumps([c.value for c in e.concerns]),
                        complex=e.complex,
                        status="received",
                        received_at=e.received_at.isoformat(),
                        version=version,
                    )
                )
            elif isinstance(e, CaseEscalated):
                await uow.conn.execute(
                    update(consultations)
                    .where(consultations.c.consultation_id == e.consultation_id)
                    .values(status="escalated", version=version)
                )

    async def reset(self, uow: UnitOfWork) -> None:
        await uow.conn.execute(delete(consultations))
