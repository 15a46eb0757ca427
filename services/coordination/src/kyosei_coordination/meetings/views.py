"""The read side of meetings. Every answer goes through :func:`may_read_record`: a
meeting's record (attendees, items, corrections) is shown only to its participant
agencies and auditors; anyone else who may see the case sees that the meeting took
place, with whom, and nothing of what it recorded. Items of a 支援会議 re-shared to a
later meeting are shown to that meeting's readers, those items only."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events import EventStore
from kyosei_events.catalogue.coordination import Attendee, MeetingKind
from kyosei_events.catalogue.intake import ConsentPurpose
from kyosei_households import find
from kyosei_platform.api import LabelledValue, Timestamp, labelled
from kyosei_platform.application import not_found, today
from kyosei_platform.auth import Identity, Role

from ..domain.meeting import Meeting, may_read_record
from ..projections import cases
from ..views import visible_case_ids
from .commands import meeting_stream
from .projection import meeting_reshares, meetings


class MeetingSummary(BaseModel):
    """That a meeting took place: what the topic carries too, nothing of its record."""

    meeting_id: str
    case_id: str
    kind: LabelledValue
    confidentiality: str = Field(description="the kind's confidentiality rule")
    convening_agency: str
    participant_agencies: list[str]
    member_ids: list[str]
    scheduled_for: Timestamp
    held_on: str | None
    status: str = Field(description="scheduled, or held (the record is final)")
    consent_obtained: bool = Field(
        description="held with the consent of the persons concerned (false for a 支援会議 "
        "or 地域ケア会議, which do not rely on it, and before it is held)"
    )
    corrections: int
    version: int
    may_read_record: bool = Field(description="whether the caller may read its record")


class ItemView(BaseModel):
    item_id: str
    section: LabelledValue
    text: str
    responsible_agency: str | None
    due_on: date | None
    corrected: bool


class CorrectionView(BaseModel):
    correction_id: str
    item_id: str
    text: str | None
    reason: str | None
    corrected_by: str
    corrected_at: Timestamp


class ResharedItem(ItemView):
    from_meeting_id: str


class MeetingRecord(BaseModel):
    """What the meeting recorded, as it reads now (corrections applied), with the
    corrections themselves and where its items were re-shared."""

    erased: bool = Field(
        False, description="the household's personal data was erased: the record is gone"
    )
    attendees: list[Attendee]
    items: list[ItemView]
    corrections: list[CorrectionView]
    reshared_to: dict[str, list[str]] = Field(description="meeting id -> the item ids re-shared")


class MeetingView(MeetingSummary):
    record: MeetingRecord | None = Field(
        description="participants and auditors only; null for others and before it is held"
    )
    reshared_items: list[ResharedItem] = Field(
        description="items of earlier 支援会議 that their participants re-shared to this meeting"
    )


class CaseMeetings(BaseModel):
    case_id: str
    stage: LabelledValue = Field(
        description="confidential (支援会議: no member has consented to a 重層的支援会議 yet) "
        "or multi_layered (consent arrived: 重層的支援会議)"
    )
    consenting_members: list[str]
    meetings: list[MeetingSummary]


def _participants(row: Any) -> list[str]:
    return list(json.loads(row.participants))


def summary(row: Any, identity: Identity) -> MeetingSummary:
    kind = MeetingKind.of(row.kind)
    participants = _participants(row)
    return MeetingSummary(
        meeting_id=row.meeting_id,
        case_id=row.case_id,
        kind=labelled(kind),
        confidentiality=kind.confidentiality,
        convening_agency=row.convening_agency,
        participant_agencies=participants,
        member_ids=json.loads(row.member_ids),
        scheduled_for=row.scheduled_for,
        held_on=row.held_on,
        status=row.status,
        consent_obtained=row.consent_obtained,
        corrections=row.corrections,
        version=row.version,
        may_read_record=may_read_record(identity, participants),
    )


async def _case_row(conn: AsyncConnection, case_id: str) -> Any:
    return (await conn.execute(select(cases).where(cases.c.case_id == case_id))).first()


def _may_see(identity: Identity, row: Any, sees_case: bool) -> bool:
    """That a meeting took place: whoever sees its case (``visible_case_ids``, the rule
    of the case list), and its participants."""
    if identity.role is Role.OPERATOR:
        return False
    return sees_case or may_read_record(identity, _participants(row))


async def list_for_case(conn: AsyncConnection, identity: Identity, case_id: str) -> CaseMeetings:
    case = await _case_row(conn, case_id)
    rows = (
        await conn.execute(
            select(meetings).where(meetings.c.case_id == case_id).order_by(meetings.c.scheduled_for)
        )
    ).all()
    sees = case is not None and bool(await visible_case_ids(conn, identity, [case_id]))
    shown = [r for r in rows if _may_see(identity, r, sees)]
    if case is None or not (shown or sees):
        raise not_found("case", "ケース", case_id)
    consenting: list[str] = []
    household = await find(conn, case.household_id) if case.household_id else None
    if household is not None:
        on = today()
        consenting = sorted(
            {
                c.member_id
                for c in household.consents
                if c.member_id is not None
                and c.active_on(on)
                and ConsentPurpose.MULTI_LAYERED_MEETING in c.purposes
            }
        )
    stage = MeetingKind.MULTI_LAYERED if consenting else MeetingKind.CONFIDENTIAL
    return CaseMeetings(
        case_id=case_id,
        stage=labelled(stage),
        consenting_members=consenting,
        meetings=[summary(r, identity) for r in shown],
    )


async def list_meetings(
    conn: AsyncConnection, identity: Identity, *, case_id: str | None, limit: int
) -> list[MeetingSummary]:
    """Meetings the caller took part in (auditors: all; coordinators: all of the cases
    they see, i.e. all), newest first."""
    query = select(meetings).order_by(meetings.c.scheduled_for.desc())
    if case_id:
        query = query.where(meetings.c.case_id == case_id)
    rows = (await conn.execute(query)).all()
    seen = await visible_case_ids(conn, identity, {r.case_id for r in rows})
    shown = [r for r in rows if _may_see(identity, r, r.case_id in seen)]
    return [summary(r, identity) for r in shown[:limit]]


def _items(state: Meeting, ids: list[str] | None = None) -> list[ItemView]:
    corrected = {c.item_id for c in state.corrections}
    items = state.items()
    return [
        ItemView(
            item_id=i.item_id,
            section=labelled(i.section),
            text=i.text,
            responsible_agency=i.responsible_agency,
            due_on=i.due_on,
            corrected=i.item_id in corrected,
        )
        for i in items.values()
        if ids is None or i.item_id in ids
    ]


async def _load(store: EventStore, meeting_id: str) -> Meeting:
    events, _ = await store.load(meeting_stream(meeting_id))
    state = Meeting(meeting_id)
    for d in events:
        state.evolve(d.event)
    return state


def record_of(state: Meeting) -> MeetingRecord | None:
    if not state.held:
        return None
    if state.minutes is None:  # held, but the household's key was erased
        return MeetingRecord(erased=True, attendees=[], items=[], corrections=[], reshared_to={})
    targets = list(dict.fromkeys(r.to_meeting_id for r in state.reshares))
    return MeetingRecord(
        attendees=list(state.minutes.attendees),
        items=_items(state),
        corrections=[
            CorrectionView(
                correction_id=c.correction_id,
                item_id=c.item_id,
                text=c.text,
                reason=c.reason,
                corrected_by=c.corrected_by,
                corrected_at=c.corrected_at,
            )
            for c in state.corrections
        ],
        reshared_to={t: state.reshared_to(t) for t in targets},
    )


async def get_meeting(store: EventStore, identity: Identity, meeting_id: str) -> MeetingView:
    """One meeting; its record, from the event store, for those who may read it."""
    # The read model first, on a connection closed before the store is read (SQLite
    # allows one transaction at a time).
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(select(meetings).where(meetings.c.meeting_id == meeting_id))
        ).first()
        if row is None or not _may_see(
            identity, row, bool(await visible_case_ids(conn, identity, [row.case_id]))
        ):
            raise not_found("meeting", "会議", meeting_id)
        sources = (
            (
                await conn.execute(
                    select(meeting_reshares.c.meeting_id)
                    .where(meeting_reshares.c.to_meeting_id == meeting_id)
                    .distinct()
                )
            )
            .scalars()
            .all()
        )
    head = summary(row, identity)
    if not head.may_read_record:
        return MeetingView(**head.model_dump(), record=None, reshared_items=[])
    record = record_of(await _load(store, meeting_id))
    reshared: list[ResharedItem] = []
    for source_id in sorted(sources):
        source = await _load(store, source_id)
        reshared += [
            ResharedItem(**i.model_dump(), from_meeting_id=source_id)
            for i in _items(source, source.reshared_to(meeting_id))
        ]
    return MeetingView(**head.model_dump(), record=record, reshared_items=reshared)
