"""Outreach commands (アウトリーチ): start a case (on a staff decision, a resident's
気づき, a coordination request or a consultation that goes to outreach), record contact
attempts, the relationship's stage, and its end."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, field_validator

from kyosei_events import DomainEvent, EventStore
from kyosei_events.catalogue.common import Concern, Id
from kyosei_events.catalogue.intake import (
    ContactMethod,
    ContactResult,
    OutreachEndReason,
    OutreachOrigin,
    OutreachStarted,
    RelationshipStage,
)
from kyosei_platform.api import Note, RequestModel, ShortText, Text, UniqueList
from kyosei_platform.application import (
    Change,
    CommandContext,
    forbidden,
    not_found,
    now,
    retry_on_conflict,
    stream_id,
)
from kyosei_platform.auth import Identity

from ..access import may_read, members_of, open_household
from ..domain import consultation as consultations
from ..domain import outcomes
from ..domain import outreach as domain
from .consultations import forbidden_unless_receiver, known_household, open_consultation
from .consultations import stream as consultation_stream


def stream(outreach_id: str) -> str:
    return stream_id("outreach", outreach_id)


class StartOutreach(RequestModel):
    household_id: Id | None = Field(None, description="世帯 id, if registered")
    member_id: Id | None = Field(
        None, description="the member to reach, if registered (needs household_id)"
    )
    location: ShortText | None = Field(None, description="where to go (personal)")
    concerns: UniqueList[Concern] = Field(min_length=1, max_length=50)
    reason: Text = Field(description="why (personal)")


class Origin(BaseModel):
    """Where an outreach case came from when it was not a staff decision."""

    origin: OutreachOrigin
    origin_ref: Id | None = None
    reporter_name: str | None = None
    reporter_contact: str | None = None


STAFF_DECISION = Origin(origin=OutreachOrigin.STAFF)


class MoveToOutreach(RequestModel):
    """アウトリーチへ: start an outreach case from a consultation (at the receiving agency)."""

    member_id: Id | None = Field(
        None,
        description="the member to reach; default: the member the consultation is about, "
        "if it names exactly one",
    )
    location: ShortText | None = Field(None, description="where to go (personal)")
    concerns: UniqueList[Concern] | None = Field(
        None, min_length=1, max_length=50, description="default: the consultation's concerns"
    )
    reason: Text | None = Field(None, description="why (personal); default: its summary")


class RecordContact(RequestModel):
    method: ContactMethod
    result: ContactResult
    note: Note = None
    contacted_at: datetime | None = Field(None, description="default: now")

    @field_validator("contacted_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-24T10:00:00+09:00")
        if v is not None and v > now() + timedelta(minutes=5):
            raise ValueError("cannot be in the future")
        return v


class ChangeStage(RequestModel):
    stage: RelationshipStage
    note: Note = None


class EndOutreach(RequestModel):
    reason: OutreachEndReason
    note: Note = None


async def open_outreach(
    store: EventStore, identity: Identity | None, outreach_id: str
) -> domain.Outreach:
    """An outreach case, for its agency, auditors, and agencies the consent of the
    person it is about names; 404 for anyone else."""
    events, _ = await store.load(stream(outreach_id))
    state = domain.Outreach(outreach_id)
    for d in events:
        state.evolve(d.event)
    missing = not_found("outreach", "アウトリーチ", outreach_id)
    if not state.exists:
        raise missing
    if identity is not None and not await may_read(
        store,
        identity,
        household_id=state.household_id,
        persons=[state.member_id] if state.member_id else [],
        parties={state.agency_id},
    ):
        raise missing
    return state


async def start_outreach(
    ctx: CommandContext,
    cmd: StartOutreach,
    origin: Origin = STAFF_DECISION,
    *,
    outreach_id: str | None = None,
) -> domain.Outreach:
    """アウトリーチ開始 at the acting agency. A policy passes the id it derives from the
    event it handles, so a redelivery starts nothing twice. A refusal of consent never
    stops outreach."""
    household_id = await known_household(ctx, cmd.household_id) if cmd.household_id else None
    if household_id is not None and ctx.actor is not None:
        await open_household(ctx.store, ctx.actor, household_id)  # the caller reads it
    oid = outreach_id or str(uuid.uuid4())
    state = domain.Outreach(oid)
    if outreach_id is not None and await ctx.exists(stream(oid)):
        return state
    started = domain.start(
        OutreachStarted(
            outreach_id=oid,
            household_id=household_id,
            member_id=cmd.member_id,
            agency_id=ctx.agency_id,
            concerns=cmd.concerns,
            reason=cmd.reason,
            location=cmd.location,
            started_at=now(),
            **origin.model_dump(),
        ),
        await members_of(ctx, household_id),
    )
    await ctx.save(Change(state, stream(oid), [started], household_id or oid, expected=0))
    return state


@retry_on_conflict
async def move_to_outreach(
    ctx: CommandContext, consultation_id: str, cmd: MoveToOutreach, if_match: int | None = None
) -> tuple[consultations.Consultation, domain.Outreach]:
    """アウトリーチへ (an outcome of the consultation): one transaction appends the
    consultation's outcome, naming the outreach, and the outreach case, naming the
    consultation (origin ``consultation``)."""
    consultation = await open_consultation(ctx.store, ctx.actor, consultation_id)
    forbidden_unless_receiver(ctx, consultation)
    oid = str(uuid.uuid4())
    at = now()
    moved = outcomes.move_to_outreach(consultation, oid, at)
    household_id = consultation.household_id
    default_member = consultation.member_ids[0] if len(consultation.member_ids) == 1 else None
    started = domain.start(
        OutreachStarted(
            outreach_id=oid,
            household_id=household_id,
            member_id=(cmd.member_id or default_member) if household_id else None,
            agency_id=ctx.agency_id,
            origin=OutreachOrigin.CONSULTATION,
            origin_ref=consultation_id,
            concerns=list(dict.fromkeys(cmd.concerns or consultation.concerns)),
            reason=cmd.reason or consultation.summary or "",
            location=cmd.location,
            reporter_name=None,
            reporter_contact=None,
            started_at=at,
        ),
        await members_of(ctx, household_id),
    )
    outreach = domain.Outreach(oid)
    subject = household_id or consultation_id
    await ctx.save(
        Change(consultation, consultation_stream(consultation_id), [moved], subject, if_match),
        Change(outreach, stream(oid), [started], subject, expected=0),
    )
    return consultation, outreach


async def _record(
    ctx: CommandContext,
    outreach_id: str,
    if_match: int | None,
    decide: Callable[[domain.Outreach], DomainEvent],
) -> domain.Outreach:
    state = await open_outreach(ctx.store, ctx.actor, outreach_id)
    if ctx.agency_id != state.agency_id:
        raise forbidden(
            "not_the_outreach_agency",
            f"only the agency running this outreach ({state.agency_id}) records on it",
            "このアウトリーチを記録できるのは担当機関だけです",
        )
    subject = state.household_id or state.outreach_id
    await ctx.save(Change(state, stream(outreach_id), [decide(state)], subject, if_match))
    return state


@retry_on_conflict
async def record_contact(
    ctx: CommandContext, outreach_id: str, cmd: RecordContact, if_match: int | None = None
) -> domain.Outreach:
    """訪問・接触記録."""
    return await _record(
        ctx,
        outreach_id,
        if_match,
        lambda s: domain.record_contact(
            s, cmd.method, cmd.result, cmd.note, cmd.contacted_at or now()
        ),
    )


@retry_on_conflict
async def change_stage(
    ctx: CommandContext, outreach_id: str, cmd: ChangeStage, if_match: int | None = None
) -> domain.Outreach:
    """関係づくりの段階."""
    return await _record(
        ctx, outreach_id, if_match, lambda s: domain.change_stage(s, cmd.stage, cmd.note, now())
    )


@retry_on_conflict
async def end_outreach(
    ctx: CommandContext, outreach_id: str, cmd: EndOutreach, if_match: int | None = None
) -> domain.Outreach:
    """アウトリーチ終了 (optional)."""
    return await _record(
        ctx, outreach_id, if_match, lambda s: domain.end(s, cmd.reason, cmd.note, now())
    )
