"""Meeting commands: one function per command, called by the routes (and by policies,
should one ever need to)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import Field

from kyosei_events.catalogue.common import AgencyId, Id
from kyosei_events.catalogue.coordination import (
    Attendee,
    ItemSection,
    MeetingItem,
    MeetingKind,
    Minutes,
)
from kyosei_events.catalogue.intake import ConsentPurpose
from kyosei_households import find
from kyosei_platform.api import Name, RequestModel, ShortText, Text, UniqueList
from kyosei_platform.application import (
    Change,
    CommandContext,
    not_found,
    now,
    retry_on_conflict,
    stream_id,
    today,
)
from kyosei_platform.identity import Role

from ..commands import stream as case_stream
from ..domain import case as case_domain
from ..domain import meeting as domain

# The consent a kind needs from each person concerned, for each participant agency.
CONSENT_PURPOSE = {
    MeetingKind.MULTI_LAYERED: ConsentPurpose.MULTI_LAYERED_MEETING,
    MeetingKind.CASE_CONFERENCE: ConsentPurpose.INFORMATION_SHARING,
}


def meeting_stream(meeting_id: str) -> str:
    return stream_id("meeting", meeting_id)


def new_id() -> str:
    return uuid.uuid4().hex


class ScheduleMeeting(RequestModel):
    """Schedule a meeting about the case. The caller's agency convenes it and takes part."""

    kind: MeetingKind = Field(
        description="confidential (支援会議, no consent needed), multi_layered "
        "(重層的支援会議, consent needed), community_care (地域ケア会議), case_conference"
    )
    scheduled_for: datetime
    participant_agencies: UniqueList[AgencyId] = Field(
        max_length=100,
        description="the agencies taking part besides the convening one (at least one)",
    )
    member_ids: UniqueList[Id] = Field(
        default_factory=list,
        max_length=30,
        description="the members it concerns (none: the whole household); a kind that "
        "needs consent needs each one's",
    )


class AttendeeInput(RequestModel):
    """Someone who attended (出席者): their agency, name and role."""

    agency_id: AgencyId
    name: Name
    role: ShortText | None = None


class ItemInput(RequestModel):
    item_id: Id | None = Field(None, description="default: item-1, item-2, … in order")
    section: ItemSection
    text: Text
    responsible_agency: AgencyId | None = None
    due_on: date | None = None


class MinutesInput(RequestModel):
    attendees: Annotated[list[AttendeeInput], Field(min_length=1, max_length=200)]
    items: list[ItemInput] = Field(default_factory=list, max_length=500)

    def minutes(self) -> Minutes:
        return Minutes(
            attendees=[Attendee(**a.model_dump()) for a in self.attendees],
            items=[
                MeetingItem(
                    item_id=i.item_id or f"item-{n}",
                    section=i.section,
                    text=i.text,
                    responsible_agency=i.responsible_agency,
                    due_on=i.due_on,
                )
                for n, i in enumerate(self.items, 1)
            ],
        )


class HoldMeeting(RequestModel):
    """The meeting was held: its record (attendance, items) is finalised."""

    held_on: date
    minutes: MinutesInput


class CorrectItem(RequestModel):
    """Correct one item of a held meeting's record (the record itself never changes)."""

    item_id: Id
    text: Text = Field(description="the item as it should read (personal)")
    reason: Text = Field(description="why it is corrected (personal)")


class ReshareItems(RequestModel):
    """Re-share items of a held 支援会議 to a later consented meeting of the same case."""

    to_meeting_id: Id
    item_ids: UniqueList[Id] = Field(min_length=1, max_length=500)


async def _case(ctx: CommandContext, case_id: str) -> case_domain.Case:
    missing = not_found("case", "ケース", case_id)
    state = await ctx.get(case_stream(case_id), lambda: case_domain.Case(case_id), missing)
    actor = ctx.actor
    if actor is not None and not (
        actor.role is Role.COORDINATOR or state.concerns_agency(actor.agency_id)
    ):
        raise missing
    return state


async def _without_consent(
    ctx: CommandContext, household_id: str | None, cmd: ScheduleMeeting, agencies: list[str]
) -> frozenset[str]:
    """The persons concerned who have not consented for every participant agency."""
    purpose = CONSENT_PURPOSE.get(cmd.kind)
    if purpose is None:
        return frozenset()
    async with ctx.connect() as conn:
        household = await find(conn, household_id) if household_id else None
    if household is None:
        return frozenset({"(the case's household is not known yet)"})
    concerned = frozenset(cmd.member_ids) or household.member_ids
    if not concerned:
        return frozenset({"(the household has no members recorded)"})
    on = today()
    consenting = frozenset.intersection(*(household.consenting(a, purpose, on) for a in agencies))
    return concerned - consenting


@retry_on_conflict
async def schedule_meeting(
    ctx: CommandContext, case_id: str, cmd: ScheduleMeeting
) -> domain.Meeting:
    """会議予定: a meeting of the case, convened by the caller's agency."""
    case = await _case(ctx, case_id)
    state = domain.Meeting(new_id())
    agencies = list(dict.fromkeys([ctx.agency_id, *cmd.participant_agencies]))
    events = domain.schedule(
        state,
        case_id=case_id,
        household_id=case.household_id,
        kind=cmd.kind,
        convening_agency=ctx.agency_id,
        participant_agencies=cmd.participant_agencies,
        member_ids=cmd.member_ids,
        scheduled_for=cmd.scheduled_for,
        without_consent=await _without_consent(ctx, case.household_id, cmd, agencies)
        if cmd.participant_agencies
        else frozenset(),
        now=now(),
    )
    subject = case.household_id or case_id
    await ctx.save(Change(state, meeting_stream(state.meeting_id), events, subject))
    return state


async def _meeting(ctx: CommandContext, meeting_id: str) -> domain.Meeting:
    state = await ctx.load(meeting_stream(meeting_id), lambda: domain.Meeting(meeting_id))
    # A meeting the caller does not take part in is not told about (404, not 403).
    if not state.exists or (ctx.actor is not None and ctx.agency_id not in state.participants):
        raise not_found("meeting", "会議", meeting_id)
    return state


def subject_of(state: domain.Meeting) -> str:
    return state.household_id or state.case_id


@retry_on_conflict
async def hold_meeting(
    ctx: CommandContext, meeting_id: str, cmd: HoldMeeting, expected: int | None = None
) -> domain.Meeting:
    """支援会議開催: finalise the record; from now on only corrections are added."""
    state = await _meeting(ctx, meeting_id)
    events = domain.hold(
        state,
        agency_id=ctx.agency_id,
        held_on=cmd.held_on,
        minutes=cmd.minutes.minutes(),
        now=now(),
    )
    await ctx.save(Change(state, meeting_stream(meeting_id), events, subject_of(state), expected))
    return state


@retry_on_conflict
async def correct_item(ctx: CommandContext, meeting_id: str, cmd: CorrectItem) -> domain.Meeting:
    """会議録訂正: a new event referring to the finalised record's item."""
    state = await _meeting(ctx, meeting_id)
    events = domain.correct(
        state,
        agency_id=ctx.agency_id,
        correction_id=new_id(),
        item_id=cmd.item_id,
        text=cmd.text,
        reason=cmd.reason,
        now=now(),
    )
    await ctx.save(Change(state, meeting_stream(meeting_id), events, subject_of(state)))
    return state


@retry_on_conflict
async def reshare_items(ctx: CommandContext, meeting_id: str, cmd: ReshareItems) -> domain.Meeting:
    """会議内容の再共有: the hand-off from a 支援会議 to a consented meeting, item by item."""
    source = await _meeting(ctx, meeting_id)
    target = await ctx.load(
        meeting_stream(cmd.to_meeting_id), lambda: domain.Meeting(cmd.to_meeting_id)
    )
    events = domain.reshare(
        source,
        target,
        agency_id=ctx.agency_id,
        reshare_id=new_id(),
        item_ids=cmd.item_ids,
        now=now(),
    )
    if events:
        await ctx.save(Change(source, meeting_stream(meeting_id), events, subject_of(source)))
    return source
