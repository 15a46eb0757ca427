"""Consultation commands (相談): receive at any window, link a household, record why it
is hard to help, decide the outcome (handled, information given, accompaniment,
referred, escalated; outreach is in commands/outreach.py), and the referral's closed
loop (つなぎ)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta

from pydantic import Field, field_validator
from sqlalchemy import select

from kyosei_events import DomainEvent, EventStore
from kyosei_events.catalogue.common import AgencyId, Concern, Id, UnmetNeed
from kyosei_events.catalogue.intake import Channel, ConsultationReceived, DeclineReason, Window
from kyosei_households import survivor_of
from kyosei_platform.api import Name, Note, RequestModel, ShortText, Text, UniqueList
from kyosei_platform.application import (
    Change,
    CommandContext,
    Rejected,
    forbidden,
    invalid,
    not_found,
    now,
    retry_on_conflict,
    stream_id,
    today,
)
from kyosei_platform.auth import Identity, Role

from ..access import may_read, members_of
from ..domain import consultation as domain
from ..domain import outcomes
from ..projections import referrals
from .agencies import agency_in


def stream(consultation_id: str) -> str:
    return stream_id("consultation", consultation_id)


class ReceiveConsultation(RequestModel):
    """相談受付: what a window records. Any concern is accepted, from anyone."""

    household_id: Id | None = Field(None, description="世帯 id, if known (link it later if not)")
    member_ids: UniqueList[Id] = Field(
        default_factory=list,
        max_length=30,
        description="the members it is about, if known (needs household_id); a consultation "
        "naming nobody concerns every member",
    )
    window: Window
    channel: Channel
    concerns: UniqueList[Concern] = Field(min_length=1, max_length=50)
    other_concern: Text | None = Field(None, description="required with concern 'other' (personal)")
    summary: Text = Field(description="相談内容 (personal)")
    caller_name: Name | None = Field(None, description="相談者名 (personal)")
    caller_contact: ShortText | None = Field(None, description="連絡先 (personal)")
    complex: bool = Field(False, description="複合・複雑: escalate to 多機関協働 at once")
    unmet_needs: UniqueList[UnmetNeed] = Field(
        default_factory=list,
        max_length=3,
        description="支援が届きにくい理由, one or more if known (can be recorded later)",
    )
    place_id: Id | None = Field(
        None,
        description="the receiving agency's community place it was received at; required "
        "with window community_place or channel drop_in",
    )
    brought_by: Name | None = Field(
        None,
        description="who brought it, in words (e.g. 長女, 隣家の方), with a channel "
        "brought_by_family / brought_by_neighbour / brought_by_agency (personal)",
    )
    brought_by_agency: AgencyId | None = Field(
        None, description="the agency that brought it; required with channel brought_by_agency"
    )
    escalation_reason: Text | None = None
    received_at: datetime | None = Field(None, description="when it was received; default now")

    @field_validator("received_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-24T10:00:00+09:00")
        if v is not None and v > now() + timedelta(minutes=5):
            raise ValueError("cannot be in the future")
        return v


class LinkHousehold(RequestModel):
    household_id: Id


class Refer(RequestModel):
    to_agency: AgencyId = Field(description="the agency asked to take it on")
    concerns: UniqueList[Concern] | None = Field(
        None,
        min_length=1,
        max_length=50,
        description="what the referral is for; default: all concerns",
    )
    note: Note = None


class Escalate(RequestModel):
    reason: Text = Field(description="なぜ多機関協働か")


class RecordUnmetNeeds(RequestModel):
    unmet_needs: UniqueList[UnmetNeed] = Field(
        max_length=3, description="支援が届きにくい理由; replaces what was recorded ([]: none)"
    )


class ContinueAccompaniment(RequestModel):
    review_on: date = Field(description="when the accompaniment is next reviewed (not past)")
    note: Note = None


class ReviewAccompaniment(RequestModel):
    next_review_on: date = Field(description="the next review date (not past)")
    note: Note = None


class DeclineReferral(RequestModel):
    reason: DeclineReason
    note: Note = None


def _missing(consultation_id: str) -> Rejected:
    return not_found("consultation", "相談", consultation_id)


async def open_consultation(
    store: EventStore, identity: Identity | None, consultation_id: str
) -> domain.Consultation:
    """A consultation the caller may read (its parties, coordinators once escalated,
    agencies the consent of every person it is about names, auditors); 404 otherwise."""
    events, _ = await store.load(stream(consultation_id))
    state = domain.Consultation(consultation_id)
    for d in events:
        state.evolve(d.event)
    if not state.exists:
        raise _missing(consultation_id)
    if identity is not None and not await may_read(
        store,
        identity,
        household_id=state.household_id,
        persons=state.member_ids,
        parties=state.parties(),
    ):
        raise _missing(consultation_id)
    return state


async def known_household(ctx: CommandContext, household_id: str) -> str:
    """A household id as it now is (following merges); 422 naming the field if unknown."""
    async with ctx.connect() as conn:
        survivor = await survivor_of(conn, household_id)
    if survivor is None:
        raise invalid(
            "household_id",
            "household_not_found",
            f"no household {household_id}: register it first, or leave household_id out "
            "and link it later",
            "該当する世帯がありません。"
            "先に世帯登録するか、household_id を空にして後で紐づけてください",
        )
    return survivor


def _subject(state: domain.Consultation) -> str:
    return state.household_id or state.consultation_id


async def receive_consultation(
    ctx: CommandContext,
    cmd: ReceiveConsultation,
    *,
    consultation_id: str | None = None,
    concern_report_id: str | None = None,
) -> domain.Consultation:
    """相談受付 at the acting agency. Never refused for being outside its field; a
    policy passes the id it derives from the event it handles, so a redelivery finds
    the consultation already there and records nothing twice."""
    household_id = await known_household(ctx, cmd.household_id) if cmd.household_id else None
    cid = consultation_id or str(uuid.uuid4())
    state = domain.Consultation(cid)
    if consultation_id is not None and await ctx.exists(stream(cid)):
        return state
    at = now()
    received = ConsultationReceived(
        consultation_id=cid,
        household_id=household_id,
        member_ids=cmd.member_ids,
        agency_id=ctx.agency_id,
        window=cmd.window,
        channel=cmd.channel,
        concerns=cmd.concerns,
        other_concern=cmd.other_concern,
        summary=cmd.summary,
        caller_name=cmd.caller_name,
        caller_contact=cmd.caller_contact,
        complex=cmd.complex,
        concern_report_id=concern_report_id,
        unmet_needs=list(dict.fromkeys(cmd.unmet_needs)),
        place_id=cmd.place_id,
        brought_by=cmd.brought_by,
        brought_by_agency=cmd.brought_by_agency,
        received_at=cmd.received_at or at,
    )
    members = await members_of(ctx, household_id)
    places = (
        frozenset((await agency_in(ctx, ctx.agency_id)).places) if cmd.place_id else frozenset()
    )
    events = domain.receive(received, cmd.escalation_reason, at, members, places)
    await ctx.save(Change(state, stream(cid), events, household_id or cid, expected=0))
    return state


def forbidden_unless_receiver(ctx: CommandContext, state: domain.Consultation) -> None:
    """Only the receiving agency decides a consultation's outcome (403 for others)."""
    if ctx.agency_id != state.agency_id:
        raise forbidden(
            "not_the_receiving_agency",
            f"only the receiving agency ({state.agency_id}) decides this consultation's outcome",
            "相談の対応を決められるのは受付機関だけです",
        )


async def _decide(
    ctx: CommandContext,
    state: domain.Consultation,
    if_match: int | None,
    decide: Callable[[domain.Consultation], DomainEvent],
    *,
    receiver_only: bool = True,
    subject: str | None = None,
) -> domain.Consultation:
    if receiver_only:
        forbidden_unless_receiver(ctx, state)
    event = decide(state)
    await ctx.save(
        Change(state, stream(state.consultation_id), [event], subject or _subject(state), if_match)
    )
    return state


async def _open(ctx: CommandContext, consultation_id: str) -> domain.Consultation:
    return await open_consultation(ctx.store, ctx.actor, consultation_id)


@retry_on_conflict
async def link_household(
    ctx: CommandContext, consultation_id: str, cmd: LinkHousehold, if_match: int | None = None
) -> domain.Consultation:
    """世帯との紐づけ of a consultation received without a household."""
    state = await _open(ctx, consultation_id)
    household_id = await known_household(ctx, cmd.household_id)
    return await _decide(
        ctx,
        state,
        if_match,
        lambda s: domain.link_household(s, household_id, now()),
        subject=household_id,
    )


@retry_on_conflict
async def handle_consultation(
    ctx: CommandContext, consultation_id: str, note: str | None, if_match: int | None = None
) -> domain.Consultation:
    """受付機関で対応 (an outcome)."""
    state = await _open(ctx, consultation_id)
    return await _decide(ctx, state, if_match, lambda s: domain.handle(s, note, now()))


@retry_on_conflict
async def record_unmet_needs(
    ctx: CommandContext, consultation_id: str, cmd: RecordUnmetNeeds, if_match: int | None = None
) -> domain.Consultation:
    """支援が届きにくい理由の記録 (at any time, by the receiving agency)."""
    return await _decide(
        ctx,
        await _open(ctx, consultation_id),
        if_match,
        lambda s: outcomes.record_unmet_needs(s, cmd.unmet_needs, now()),
    )


@retry_on_conflict
async def provide_information(
    ctx: CommandContext, consultation_id: str, note: str | None, if_match: int | None = None
) -> domain.Consultation:
    """情報提供・助言 (an outcome: closed)."""
    return await _decide(
        ctx,
        await _open(ctx, consultation_id),
        if_match,
        lambda s: outcomes.provide_information(s, note, now()),
    )


@retry_on_conflict
async def continue_accompaniment(
    ctx: CommandContext,
    consultation_id: str,
    cmd: ContinueAccompaniment,
    if_match: int | None = None,
) -> domain.Consultation:
    """伴走継続 (an outcome: open by design, reviewed on a date)."""
    return await _decide(
        ctx,
        await _open(ctx, consultation_id),
        if_match,
        lambda s: outcomes.continue_accompaniment(s, cmd.review_on, cmd.note, today(), now()),
    )


@retry_on_conflict
async def review_accompaniment(
    ctx: CommandContext, consultation_id: str, cmd: ReviewAccompaniment, if_match: int | None = None
) -> domain.Consultation:
    """伴走の振り返り: set the next review date."""
    return await _decide(
        ctx,
        await _open(ctx, consultation_id),
        if_match,
        lambda s: outcomes.review_accompaniment(s, cmd.next_review_on, cmd.note, today(), now()),
    )


@retry_on_conflict
async def refer_consultation(
    ctx: CommandContext, consultation_id: str, cmd: Refer, if_match: int | None = None
) -> domain.Consultation:
    """つなぎ (an outcome): the receiving agency answers it; declined, it comes back."""
    return await _decide(
        ctx,
        await _open(ctx, consultation_id),
        if_match,
        lambda s: domain.refer(s, str(uuid.uuid4()), cmd.to_agency, cmd.concerns, cmd.note, now()),
    )


@retry_on_conflict
async def escalate_consultation(
    ctx: CommandContext, consultation_id: str, cmd: Escalate, if_match: int | None = None
) -> domain.Consultation:
    """多機関協働へつなぐ (an outcome): coordination opens a case for it."""
    return await _decide(
        ctx,
        await _open(ctx, consultation_id),
        if_match,
        lambda s: domain.escalate(s, cmd.reason, now()),
    )


# -- referrals (つなぎ): live on their consultation's stream ---------------------------


async def consultation_of_referral(store: EventStore, referral_id: str) -> str:
    async with store.engine.connect() as conn:
        consultation_id = (
            await conn.execute(
                select(referrals.c.consultation_id).where(referrals.c.referral_id == referral_id)
            )
        ).scalar()
    if consultation_id is None:
        raise not_found("referral", "つなぎ", referral_id)
    return str(consultation_id)


async def open_referral(
    store: EventStore, identity: Identity | None, referral_id: str
) -> tuple[domain.Consultation, domain.Referral]:
    """A referral, for its two agencies and auditors; 404 for anyone else."""
    consultation_id = await consultation_of_referral(store, referral_id)
    state = await open_consultation(store, None, consultation_id)
    r = state.referrals[referral_id]
    if identity is not None and not (
        identity.role is Role.AUDITOR or identity.agency_id in (r.from_agency, r.to_agency)
    ):
        raise not_found("referral", "つなぎ", referral_id)
    return state, r


async def _answer(
    ctx: CommandContext,
    referral_id: str,
    if_match: int | None,
    decide: Callable[[domain.Consultation], DomainEvent],
) -> tuple[domain.Consultation, domain.Referral]:
    state, _ = await open_referral(ctx.store, ctx.actor, referral_id)
    await _decide(ctx, state, if_match, decide, receiver_only=False)
    return state, state.referrals[referral_id]


@retry_on_conflict
async def accept_referral(
    ctx: CommandContext, referral_id: str, if_match: int | None = None
) -> tuple[domain.Consultation, domain.Referral]:
    """つなぎ受理."""
    return await _answer(
        ctx, referral_id, if_match, lambda s: domain.accept(s, referral_id, ctx.agency_id, now())
    )


@retry_on_conflict
async def decline_referral(
    ctx: CommandContext, referral_id: str, cmd: DeclineReferral, if_match: int | None = None
) -> tuple[domain.Consultation, domain.Referral]:
    """つなぎ辞退, with the reason: the consultation goes back to its sender."""
    return await _answer(
        ctx,
        referral_id,
        if_match,
        lambda s: domain.decline(s, referral_id, ctx.agency_id, cmd.reason, cmd.note, now()),
    )


@retry_on_conflict
async def complete_referral(
    ctx: CommandContext, referral_id: str, note: str | None, if_match: int | None = None
) -> tuple[domain.Consultation, domain.Referral]:
    """つなぎ完了."""
    return await _answer(
        ctx,
        referral_id,
        if_match,
        lambda s: domain.complete(s, referral_id, ctx.agency_id, note, now()),
    )
