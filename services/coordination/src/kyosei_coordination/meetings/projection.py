"""The meetings read model: the facts about each meeting (kind, dates, participant
agencies) and which items were re-shared where. No record content: what a meeting
recorded stays sealed in the event store and is read from there, for those who may."""

from __future__ import annotations

import json

from sqlalchemy import Boolean, Column, Integer, String, Table, Text, delete, update

from kyosei_events import DecodedEvent, UnitOfWork
from kyosei_events.catalogue.coordination import (
    MeetingItemsReshared,
    MeetingRecordCorrected,
    MeetingRecorded,
    MeetingScheduled,
    SupportMeetingHeld,
)
from kyosei_platform.api import rfc3339

from ..projections import metadata

meetings = Table(
    "meetings",
    metadata,
    Column("meeting_id", String(64), primary_key=True),
    Column("case_id", String(80), nullable=False, index=True),
    Column("household_id", String(64), index=True),
    Column("kind", String(32), nullable=False),
    Column("convening_agency", String(64), nullable=False),
    Column("participants", Text, nullable=False),  # JSON list of agency ids
    Column("member_ids", Text, nullable=False),  # JSON list
    Column("scheduled_for", String(40), nullable=False),
    Column("held_on", String(10)),
    Column("consent_obtained", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("corrections", Integer, nullable=False),
    Column("version", Integer, nullable=False),
)

meeting_reshares = Table(
    "meeting_reshares",
    metadata,
    Column("meeting_id", String(64), primary_key=True),
    Column("item_id", String(64), primary_key=True),
    Column("to_meeting_id", String(64), primary_key=True),
    Column("reshared_by", String(64), nullable=False),
    Column("reshared_at", String(40), nullable=False),
)


class MeetingList:
    """One row per meeting, one per item re-shared to a later meeting."""

    name = "coordination.meetings"

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        for d in events:
            e, version = d.event, d.recorded.version
            if isinstance(e, MeetingScheduled):
                await uow.conn.execute(
                    meetings.insert().values(
                        meeting_id=e.meeting_id,
                        case_id=e.case_id,
                        household_id=e.household_id,
                        kind=e.kind.value,
                        convening_agency=e.convening_agency,
                        participants=json.dumps(e.participant_agencies),
                        member_ids=json.dumps(e.member_ids),
                        scheduled_for=rfc3339(e.scheduled_for),
                        held_on=None,
                        consent_obtained=False,
                        status="scheduled",
                        corrections=0,
                        version=version,
                    )
                )
            elif isinstance(e, SupportMeetingHeld):
                await uow.conn.execute(
                    update(meetings)
                    .where(meetings.c.meeting_id == e.meeting_id)
                    .values(
                        held_on=e.held_on.isoformat(),
                        consent_obtained=e.consent_obtained,
                        status="held",
                        version=version,
                    )
                )
            elif isinstance(e, MeetingRecordCorrected):
                await uow.conn.execute(
                    update(meetings)
                    .where(meetings.c.meeting_id == e.meeting_id)
                    .values(corrections=meetings.c.corrections + 1, version=version)
                )
            elif isinstance(e, MeetingItemsReshared):
                for item_id in e.item_ids:
                    await uow.conn.execute(
                        meeting_reshares.insert().values(
                            meeting_id=e.meeting_id,
                            item_id=item_id,
                            to_meeting_id=e.to_meeting_id,
                            reshared_by=e.reshared_by,
                            reshared_at=e.reshared_at.isoformat(),
                        )
                    )
                await self._version(uow, e.meeting_id, version)
            elif isinstance(e, MeetingRecorded):
                await self._version(uow, e.meeting_id, version)

    @staticmethod
    async def _version(uow: UnitOfWork, meeting_id: str, version: int) -> None:
        await uow.conn.execute(
            update(meetings).where(meetings.c.meeting_id == meeting_id).values(version=version)
        )

    async def reset(self, uow: UnitOfWork) -> None:
        await uow.conn.execute(delete(meeting_reshares))
        await uow.conn.execute(delete(meetings))
