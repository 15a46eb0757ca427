"""Coordination's application layer: one function per command; routes and event
policies both call these.

One open case per household: the escalation policy and a coordinator's direct opening
both look for the household's open case (any of its records, merged or not) and
decide in one transaction that holds the household's lock (PostgreSQL: an advisory
lock on the household's surviving record; SQLite: the one write lock), so two
openings for one household at the same moment cannot both open a case."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import Field
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events.catalogue.common import AgencyId, Concern, Id
from kyosei_events.catalogue.coordination import ConsultationAddedToCase
from kyosei_events.direct import fetch
from kyosei_events.model import DomainEvent
from kyosei_households import find, same_household, survivor_of
from kyosei_platform.api import RequestModel, Text, UniqueList
from kyosei_platform.application import (
    Change,
    CommandContext,
    Rejected,
    forbidden,
    invalid,
    not_found,
    now,
    retry_on_conflict,
    wrong_state,
)
from kyosei_platform.identity import Role

from .domain import case as domain
from .projections import case_consultations, cases

T = TypeVar("T")


def case_id_for(consultation_id: str) -> str:
    """The case an escalated consultation opens (when its household has none open)."""
    return f"case-{consultation_id}"


def new_case_id() -> str:
    """A case a coordinator opens directly."""
    return f"case-{uuid.uuid4().hex}"


def stream(case_id: str) -> str:
    # The case id already names its kind ("case-…"): it is the stream's name.
    return case_id


class OpenCase(RequestModel):
    """Open a case for an escalated consultation."""

    consultation_id: Id
    household_id: Id | None = None
    escalated_by: AgencyId
    concerns: UniqueList[Concern] = Field(min_length=1, max_length=50)


class OpenCaseDirectly(RequestModel):
    """A coordinator opens a case for a household without an escalation."""

    household_id: Id = Field(description="any record of the household, merged or not")
    main_agency: AgencyId = Field(description="the main coordinating agency (主担当機関)")
    member_ids: UniqueList[Id] = Field(
        default_factory=list,
        max_length=50,
        description="the members it concerns (none: the whole household)",
    )
    concerns: UniqueList[Concern] = Field(min_length=1, max_length=50)
    reason: Text = Field(description="why the case is opened (personal)")


class ChangeMainAgency(RequestModel):
    """主担当機関変更: another agency coordinates the case."""

    main_agency: AgencyId
    reason: Text | None = Field(None, description="why (personal)")


class ChangeMembers(RequestModel):
    """対象者変更: the members of the household the case concerns (none: all)."""

    member_ids: UniqueList[Id] = Field(max_length=50)


def _case(case_id: str) -> Callable[[], domain.Case]:
    return lambda: domain.Case(case_id)


async def _lock_household(conn: AsyncConnection, household_id: str) -> None:
    """Hold the household's case lock until the transaction ends (PostgreSQL; SQLite
    transactions are serial already). Keyed on the surviving record, so two records
    of a merged household share it."""
    if conn.dialect.name != "postgresql":
        return
    key = await survivor_of(conn, household_id) or household_id
    await conn.execute(
        select(func.pg_advisory_xact_lock(func.hashtext(f"coordination.open-case:{key}")))
    )


async def open_case_of(conn: AsyncConnection, household_id: str) -> str | None:
    """The open case of the household ``household_id`` belongs to, if any."""
    row = (
        await conn.execute(
            select(cases.c.case_id)
            .where(
                cases.c.household_id.in_(await same_household(conn, household_id)),
                cases.c.status == domain.OPEN,
            )
            .order_by(cases.c.opened_at)
            .limit(1)
        )
    ).first()
    return row.case_id if row else None


# Built once, the consultation bound at execution.
_CASE_OF_CONSULTATION = select(case_consultations.c.case_id).where(
    case_consultations.c.consultation_id == bindparam("consultation_id")
)


async def case_of_consultation(conn: AsyncConnection, consultation_id: str) -> str | None:
    rows = await fetch(conn, _CASE_OF_CONSULTATION, {"consultation_id": consultation_id})
    return str(rows[0][0]) if rows else None


async def _in_one_transaction(
    ctx: CommandContext, run: Callable[[CommandContext], Awaitable[T]]
) -> T:
    """``run`` with a context whose reads and appends share one transaction (a
    policy's already does)."""
    if ctx.uow is not None:
        return await run(ctx)
    async with ctx.store.unit_of_work() as uow:
        return await run(dataclasses.replace(ctx, uow=uow))


async def open_case(ctx: CommandContext, cmd: OpenCase, subject: str) -> domain.Case:
    """ケース開始 for an escalated consultation: a new case, or, when the household
    already has an open case, the consultation is added to it (ConsultationAddedToCase).
    Nothing is recorded when the consultation is already behind a case (redelivery)."""

    async def run(ctx: CommandContext) -> domain.Case:
        assert ctx.uow is not None
        conn = ctx.uow.conn
        if cmd.household_id is not None:
            await _lock_household(conn, cmd.household_id)
        known = await case_of_consultation(conn, cmd.consultation_id)
        if known is not None:
            return await ctx.load(stream(known), _case(known))
        open_id = await open_case_of(conn, cmd.household_id) if cmd.household_id else None
        if open_id is not None:
            state = await ctx.load(stream(open_id), _case(open_id))
            events = domain.add_consultation(
                state,
                consultation_id=cmd.consultation_id,
                household_id=cmd.household_id,
                escalated_by=cmd.escalated_by,
                concerns=cmd.concerns,
                now=now(),
            )
            case_id = open_id
        else:
            case_id = case_id_for(cmd.consultation_id)
            state = await ctx.load(stream(case_id), _case(case_id))
            events = domain.open_case(
                state,
                household_id=cmd.household_id,
                consultation_id=cmd.consultation_id,
                escalated_by=cmd.escalated_by,
                main_agency=cmd.escalated_by,
                concerns=cmd.concerns,
                now=now(),
            )
        if events:
            await ctx.save(Change(state, stream(case_id), events, subject))
        return state

    return await _in_one_transaction(ctx, run)


def _coordinator(ctx: CommandContext) -> None:
    if ctx.actor is not None and ctx.actor.role is not Role.COORDINATOR:
        raise forbidden(
            "coordinator_only",
            "only a coordinator may open a case or change its agency and members",
            "ケースの開始・主担当機関・対象者の変更はコーディネーターのみが行えます",
        )


async def _members_of(conn: AsyncConnection, household_id: str) -> set[str] | None:
    household = await find(conn, household_id)
    return None if household is None else set(household.member_ids)


@retry_on_conflict
async def open_case_directly(ctx: CommandContext, cmd: OpenCaseDirectly) -> domain.Case:
    """ケース開始 by a coordinator. The household must be known (422 naming
    household_id), the members its own (422 naming member_ids), and it must have no
    open case (409 case_already_open, naming that case)."""
    _coordinator(ctx)

    async def run(ctx: CommandContext) -> domain.Case:
        assert ctx.uow is not None
        conn = ctx.uow.conn
        await _lock_household(conn, cmd.household_id)
        members = await _members_of(conn, cmd.household_id)
        if members is None:
            raise invalid(
                "household_id",
                "unknown_household",
                f"no household {cmd.household_id} is known",
                f"世帯{cmd.household_id}は登録されていません",
            )
        outside = domain.members_outside(members, cmd.member_ids)
        if outside is not None:
            raise outside
        open_id = await open_case_of(conn, cmd.household_id)
        if open_id is not None:
            raise case_already_open(open_id)
        case_id = new_case_id()
        state = domain.Case(case_id)
        events = domain.open_case(
            state,
            household_id=cmd.household_id,
            consultation_id=None,
            escalated_by=None,
            opened_by=ctx.agency_id,
            main_agency=cmd.main_agency,
            member_ids=cmd.member_ids,
            concerns=cmd.concerns,
            reason=cmd.reason,
            now=now(),
        )
        await ctx.save(Change(state, stream(case_id), events, cmd.household_id, expected=0))
        return state

    return await _in_one_transaction(ctx, run)


def case_already_open(case_id: str) -> Rejected:
    """409: one open case per household; the message names the open case."""
    return wrong_state(
        "case_already_open",
        f"the household already has an open case, {case_id}",
        f"この世帯には開始済みのケース{case_id}があります",
        "work on that case instead of opening another",
        "新たに開始せず、そのケースで対応してください",
    )


async def _get(ctx: CommandContext, case_id: str) -> domain.Case:
    return await ctx.get(stream(case_id), _case(case_id), not_found("case", "ケース", case_id))


@retry_on_conflict
async def change_main_agency(
    ctx: CommandContext, case_id: str, cmd: ChangeMainAgency, if_match: int | None = None
) -> domain.Case:
    """主担当機関変更 (coordinator only; nothing when it already is the main agency)."""
    _coordinator(ctx)
    state = await _get(ctx, case_id)
    events = domain.change_main_agency(
        state, main_agency=cmd.main_agency, reason=cmd.reason, now=now()
    )
    if events:
        await ctx.save(Change(state, stream(case_id), events, subject_of(state), if_match))
    return state


@retry_on_conflict
async def change_members(
    ctx: CommandContext, case_id: str, cmd: ChangeMembers, if_match: int | None = None
) -> domain.Case:
    """対象者変更 (coordinator only): the members must belong to the case's household
    (422 naming member_ids; a case whose household is not known yet names none)."""
    _coordinator(ctx)
    state = await _get(ctx, case_id)
    async with ctx.connect() as conn:
        members = await _members_of(conn, state.household_id) if state.household_id else None
    outside = domain.members_outside(members or set(), cmd.member_ids)
    if outside is not None:
        raise outside
    events = domain.change_members(state, member_ids=cmd.member_ids, now=now())
    if events:
        await ctx.save(Change(state, stream(case_id), events, subject_of(state), if_match))
    return state


def subject_of(state: domain.Case) -> str:
    """The subject of the case's events (whose key seals their personal fields; a stream's
    first subject is also its Kafka key): its household, else its consultation, else it."""
    return state.household_id or state.consultation_id or state.case_id


async def link_household(
    ctx: CommandContext, consultation_id: str, household_id: str, subject: str
) -> domain.Case:
    """ケースの世帯判明: the case of ``consultation_id``, if there is one, learns its
    household. When that household already has another open case, the later case is
    merged into it (CaseMergedInto; its consultations are added to the open case)."""

    async def run(ctx: CommandContext) -> domain.Case:
        assert ctx.uow is not None
        await _lock_household(ctx.uow.conn, household_id)
        case_id = case_id_for(consultation_id)
        state = await ctx.load(stream(case_id), _case(case_id))
        events = domain.link_household(state, household_id=household_id, now=now())
        if not events:
            return state
        changes = []
        open_id = await open_case_of(ctx.uow.conn, household_id)
        if open_id is not None and open_id != case_id:
            target = await ctx.load(stream(open_id), _case(open_id))
            merged, added = domain.merge_into(state, target, household_id=household_id, now=now())
            events += merged
            if added:
                changes.append(Change(target, stream(open_id), added, subject))
        await ctx.save(Change(state, stream(case_id), events, subject), *changes)
        return state

    return await _in_one_transaction(ctx, run)


async def merge_open_cases(ctx: CommandContext, household_id: str, subject: str) -> list[str]:
    """世帯統合の後: when two records that each had an open case turn out to be one
    household, the one household keeps one open case. The case opened first stays; each
    later one is merged into it (CaseMergedInto, and its consultations are added to the
    open case), as when a case learns a household that has one. Returns the ids of the
    cases merged (none when the household had at most one open case, or on redelivery).
    Called after the household directory has recorded the merge."""

    async def run(ctx: CommandContext) -> list[str]:
        assert ctx.uow is not None
        conn = ctx.uow.conn
        await _lock_household(conn, household_id)
        rows = (
            await conn.execute(
                select(cases.c.case_id)
                .where(
                    cases.c.household_id.in_(await same_household(conn, household_id)),
                    cases.c.status == domain.OPEN,
                )
                .order_by(cases.c.opened_at, cases.c.case_id)
            )
        ).all()
        if len(rows) < 2:
            return []
        keep_id = rows[0].case_id
        keep = await ctx.load(stream(keep_id), _case(keep_id))
        survivor = await survivor_of(conn, household_id) or household_id
        merged_ids: list[str] = []
        changes: list[Change] = []
        added_to_keep: list[DomainEvent] = []
        for row in rows[1:]:
            later = await ctx.load(stream(row.case_id), _case(row.case_id))
            merged, added = domain.merge_into(later, keep, household_id=survivor, now=now())
            if not merged:
                continue
            # Seen by the next later case's merge, so no consultation is added twice
            # (saving evolves the state with the same events and skips known ids).
            keep.consultation_ids += [
                e.consultation_id for e in added if isinstance(e, ConsultationAddedToCase)
            ]
            added_to_keep += added
            changes.append(Change(later, stream(row.case_id), merged, subject))
            merged_ids.append(row.case_id)
        if added_to_keep:
            changes.append(Change(keep, stream(keep_id), added_to_keep, subject))
        if changes:
            await ctx.save(*changes)
        return merged_ids

    return await _in_one_transaction(ctx, run)
