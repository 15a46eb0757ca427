"""A case's life after it opens: members' life changes flag it for review, the support
of some members ends (本人分の終結), the case is closed (終結) and reopened (再開).

Writes are by a coordinator or staff of the case's main coordinating agency (else
403). Life changes arrive as intake's events (see :mod:`kyosei_coordination.policies`):
each open case of the member's household (any of its records) that concerns the member
is flagged with the reason, keyed on intake's change id (a redelivery records nothing);
a retraction of the change withdraws the flag."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sqlalchemy import select

from kyosei_events.catalogue.common import AgencyId, Id
from kyosei_events.catalogue.coordination import ClosingReason
from kyosei_households import find, same_household
from kyosei_platform.api import Note, RequestModel, Text, UniqueList
from kyosei_platform.application import (
    Change,
    CommandContext,
    forbidden,
    now,
    retry_on_conflict,
    today,
)
from kyosei_platform.identity import Role

from .commands import (
    _case,
    _get,
    _in_one_transaction,
    _lock_household,
    case_already_open,
    open_case_of,
    stream,
    subject_of,
)
from .domain import case as domain
from .projections import case_review_flags, cases


class EndMemberSupport(RequestModel):
    """本人分の終結: the support of some members ends; the case goes on for the others."""

    member_ids: UniqueList[Id] = Field(min_length=1, max_length=30)
    reason: ClosingReason
    handed_to: AgencyId | None = Field(
        None, description="required for handed_to_agency and handed_to_prefecture only"
    )
    note: Note = None
    ended_on: date = Field(description="never in the future")


class CloseCase(RequestModel):
    """終結: the case is closed, with the reason."""

    reason: ClosingReason
    handed_to: AgencyId | None = Field(
        None, description="required for handed_to_agency and handed_to_prefecture only"
    )
    note: Note = None
    closed_on: date = Field(description="never in the future")


class ReopenCase(RequestModel):
    """再開: a closed case is open again."""

    reason: Text = Field(description="why support resumes (personal)")


def _may_write(ctx: CommandContext, state: domain.Case) -> None:
    actor = ctx.actor
    if actor is None or actor.role is Role.COORDINATOR:
        return
    if actor.role is Role.STAFF and actor.agency_id == state.main_agency:
        return
    raise forbidden(
        "coordinator_or_main_agency_only",
        "only a coordinator or staff of the case's main coordinating agency may end, close "
        "or reopen it",
        "ケースの終結・再開はコーディネーターまたは主担当機関の職員のみが行えます",
    )


async def _writable(ctx: CommandContext, case_id: str) -> domain.Case:
    state = await _get(ctx, case_id)
    _may_write(ctx, state)
    return state


@retry_on_conflict
async def end_member_support(
    ctx: CommandContext, case_id: str, cmd: EndMemberSupport, if_match: int | None = None
) -> domain.Case:
    """本人分の終結 (MemberSupportEnded)."""
    state = await _writable(ctx, case_id)
    async with ctx.connect() as conn:
        household = await find(conn, state.household_id) if state.household_id else None
    events = domain.end_member_support(
        state,
        household,
        member_ids=cmd.member_ids,
        reason=cmd.reason,
        handed_to=cmd.handed_to,
        note=cmd.note,
        ended_on=cmd.ended_on,
        today=today(),
        ended_by=ctx.agency_id,
        now=now(),
    )
    await ctx.save(Change(state, stream(case_id), events, subject_of(state), if_match))
    return state


@retry_on_conflict
async def close_case(
    ctx: CommandContext, case_id: str, cmd: CloseCase, if_match: int | None = None
) -> domain.Case:
    """終結 (CaseClosed): from now on the household has no open case."""
    state = await _writable(ctx, case_id)
    events = domain.close(
        state,
        reason=cmd.reason,
        handed_to=cmd.handed_to,
        note=cmd.note,
        closed_on=cmd.closed_on,
        today=today(),
        closed_by=ctx.agency_id,
        now=now(),
    )
    await ctx.save(Change(state, stream(case_id), events, subject_of(state), if_match))
    return state


@retry_on_conflict
async def reopen_case(
    ctx: CommandContext, case_id: str, cmd: ReopenCase, if_match: int | None = None
) -> domain.Case:
    """再開 (CaseReopened): only a closed case (409 case_not_closed), and only while its
    household has no other open case (409 case_already_open, naming it)."""

    async def run(ctx: CommandContext) -> domain.Case:
        assert ctx.uow is not None
        state = await _writable(ctx, case_id)
        events = domain.reopen(state, reason=cmd.reason, reopened_by=ctx.agency_id, now=now())
        if state.household_id is not None:
            await _lock_household(ctx.uow.conn, state.household_id)
            other = await open_case_of(ctx.uow.conn, state.household_id)
            if other is not None and other != case_id:
                raise case_already_open(other)
        await ctx.save(Change(state, stream(case_id), events, subject_of(state), if_match))
        return state

    return await _in_one_transaction(ctx, run)


# -- life changes (from intake's events, in the policy's transaction) --------------------


async def flag_life_change(
    ctx: CommandContext,
    *,
    household_id: str,
    member_id: str,
    change_id: str,
    kind: str,
    occurred_on: date,
) -> list[str]:
    """見直しフラグ on each open case of the household that the change concerns; the
    ids of the cases flagged."""
    assert ctx.uow is not None
    conn = ctx.uow.conn
    household = await find(conn, household_id)
    if household is None:
        return []
    rows = await conn.execute(
        select(cases.c.case_id)
        .where(
            cases.c.household_id.in_(await same_household(conn, household_id)),
            cases.c.status == domain.OPEN,
        )
        .order_by(cases.c.case_id)
    )
    changes = []
    for (case_id,) in rows.all():
        state = await ctx.load(stream(case_id), _case(case_id))
        reason = domain.review_reason(state, household, member_id, kind)
        if reason is None:
            continue
        events = domain.flag_review(
            state,
            change_id=change_id,
            member_id=member_id,
            reason=reason,
            occurred_on=occurred_on,
            now=now(),
        )
        if events:
            changes.append(Change(state, stream(case_id), events, subject_of(state)))
    if changes:
        await ctx.save(*changes)
    return [c.stream for c in changes]


async def withdraw_flags(ctx: CommandContext, change_id: str) -> list[str]:
    """見直しフラグ取消 on every case the retracted change flagged; their ids."""
    assert ctx.uow is not None
    rows = await ctx.uow.conn.execute(
        select(case_review_flags.c.case_id)
        .where(
            case_review_flags.c.change_id == change_id,
            case_review_flags.c.withdrawn.is_(False),
        )
        .order_by(case_review_flags.c.case_id)
    )
    changes = []
    for (case_id,) in rows.all():
        state = await ctx.load(stream(case_id), _case(case_id))
        events = domain.withdraw_flag(state, change_id=change_id, now=now())
        if events:
            changes.append(Change(state, stream(case_id), events, subject_of(state)))
    if changes:
        await ctx.save(*changes)
    return [c.stream for c in changes]
