"""Event policies of coordination: what it does when other services' events arrive.

- intake CaseEscalated: open a case, or, when the household (any of its records,
  merged or not) already has an open case, add the consultation to it
  (ConsultationAddedToCase): one open case per household. A redelivery records nothing.
- intake ConsultationLinkedToHousehold: the case of that consultation, if any, learns
  its household (CaseLinkedToHousehold), so that the household's cases include it; if
  the household already has another open case, the later case is merged into it
  (CaseMergedInto, and its consultations are added to the open case).
- intake OutreachStarted with origin ``coordination`` (``origin_ref``: the case), its
  OutreachEnded, and participation ParticipationMatched naming a case: the outcome
  reaches the case (RequestOutcomeReceived on its stream, for its timeline). Events
  about no known case record nothing; a redelivery records nothing.
- intake's household events keep coordination's copy of the household directory, so
  that merges and consent are known here too (kyosei_households.feed).
- intake MemberDied, MemberDeparted, MemberFacilityStayStarted: besides the directory,
  each open case of the member's household (any record, merged or not) that concerns
  the member is flagged for review (CaseReviewFlagged): ``parent_died`` (親亡き後) when
  the deceased was a parent of another living member the case concerns (such a death
  flags a case about the child alone too), else ``member_died``; ``member_departed``;
  ``facility_stay``. Keyed on intake's change id: a redelivery records nothing.
- intake MemberChangeRetracted: besides the directory, the flags that change raised are
  withdrawn (CaseReviewFlagWithdrawn).
- intake HouseholdMergedInto: besides the directory, when the two records each had an
  open case, the later case is merged into the earlier one (CaseMergedInto, its
  consultations added to the open case), so the household keeps one open case.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kyosei_events.catalogue.coordination import OutcomeKind
from kyosei_events.catalogue.intake import (
    CaseEscalated,
    ConsultationLinkedToHousehold,
    HouseholdMergedInto,
    MemberChange,
    MemberChangeRetracted,
    MemberDeparted,
    MemberDied,
    MemberFacilityStayStarted,
    OutreachEnded,
    OutreachOrigin,
    OutreachStarted,
)
from kyosei_events.catalogue.participation import ParticipationMatched
from kyosei_events.model import DomainEvent
from kyosei_events.policy import Policy, PolicyContext, policy
from kyosei_households import life_change
from kyosei_households.directory import record
from kyosei_households.feed import directory_policies
from kyosei_platform.application import CommandContext

from .board.outcomes import receive_outcome
from .board.projection import outreach_links
from .commands import OpenCase, link_household, merge_open_cases, open_case
from .lifecycle import flag_life_change, withdraw_flags


@policy(CaseEscalated)
async def case_escalated(e: CaseEscalated, ctx: PolicyContext) -> None:
    """CaseEscalated (intake) -> CaseOpened, or ConsultationAddedToCase on the
    household's open case."""
    command = CommandContext.for_policy(ctx.uow.store, ctx.uow, ctx.caused_metadata())
    await open_case(
        command,
        OpenCase(
            consultation_id=e.consultation_id,
            household_id=e.household_id,
            escalated_by=e.agency_id,
            concerns=e.concerns,
        ),
        subject=ctx.envelope.subject,
    )


@policy(ConsultationLinkedToHousehold)
async def consultation_linked(e: ConsultationLinkedToHousehold, ctx: PolicyContext) -> None:
    """ConsultationLinkedToHousehold (intake) -> CaseLinkedToHousehold, when the
    consultation has a case that did not know its household (and CaseMergedInto when
    that household has another open case)."""
    command = CommandContext.for_policy(ctx.uow.store, ctx.uow, ctx.caused_metadata())
    await link_household(command, e.consultation_id, e.household_id, subject=ctx.envelope.subject)


def _command(ctx: PolicyContext) -> CommandContext:
    return CommandContext.for_policy(ctx.uow.store, ctx.uow, ctx.caused_metadata())


async def _keep(e: DomainEvent, ctx: PolicyContext) -> None:
    """The household directory's copy first (as for every household event)."""
    await record(ctx.uow.conn, e, ctx.envelope.agency_id, ctx.envelope.staff_id)


async def _flag(e: MemberChange, ctx: PolicyContext) -> None:
    await _keep(e, ctx)
    change = life_change(e, 0)
    assert change is not None
    await flag_life_change(
        _command(ctx),
        household_id=e.household_id,
        member_id=e.member_id,
        change_id=e.change_id,
        kind=change.kind,
        occurred_on=change.on,
    )


@policy(MemberDied)
async def member_died(e: MemberDied, ctx: PolicyContext) -> None:
    """MemberDied (intake) -> the directory, and CaseReviewFlagged (parent_died or
    member_died) on the household's open cases that concern the member."""
    await _flag(e, ctx)


@policy(MemberDeparted)
async def member_departed(e: MemberDeparted, ctx: PolicyContext) -> None:
    """MemberDeparted (intake) -> the directory, and CaseReviewFlagged
    (member_departed)."""
    await _flag(e, ctx)


@policy(MemberFacilityStayStarted)
async def facility_stay_started(e: MemberFacilityStayStarted, ctx: PolicyContext) -> None:
    """MemberFacilityStayStarted (intake) -> the directory, and CaseReviewFlagged
    (facility_stay)."""
    await _flag(e, ctx)


@policy(MemberChangeRetracted)
async def member_change_retracted(e: MemberChangeRetracted, ctx: PolicyContext) -> None:
    """MemberChangeRetracted (intake) -> the directory, and CaseReviewFlagWithdrawn on
    each case the change flagged."""
    await _keep(e, ctx)
    await withdraw_flags(_command(ctx), e.retracted_change_id)


@policy(HouseholdMergedInto)
async def household_merged(e: HouseholdMergedInto, ctx: PolicyContext) -> None:
    """HouseholdMergedInto (intake) -> the directory; then, when both records had an
    open case, the later case is merged into the earlier (CaseMergedInto, its
    consultations added to the open case): one open case per household."""
    await _keep(e, ctx)
    await merge_open_cases(_command(ctx), e.into_household_id, subject=ctx.envelope.subject)


@policy(OutreachStarted)
async def outreach_started(e: OutreachStarted, ctx: PolicyContext) -> None:
    """OutreachStarted (intake) for a coordination request -> RequestOutcomeReceived
    outreach_started on the case ``origin_ref`` names."""
    if e.origin is not OutreachOrigin.COORDINATION or e.origin_ref is None:
        return
    await receive_outcome(
        _command(ctx),
        e.origin_ref,
        kind=OutcomeKind.OUTREACH_STARTED,
        ref_id=e.outreach_id,
        agency_id=e.agency_id,
        source_event_id=ctx.envelope.id,
    )


@policy(OutreachEnded)
async def outreach_ended(e: OutreachEnded, ctx: PolicyContext) -> None:
    """OutreachEnded (intake) of an outreach started for a case -> RequestOutcomeReceived
    outreach_ended on that case."""
    link = (
        await ctx.uow.conn.execute(
            select(outreach_links).where(outreach_links.c.outreach_id == e.outreach_id)
        )
    ).first()
    if link is None:
        return
    await receive_outcome(
        _command(ctx),
        link.case_id,
        kind=OutcomeKind.OUTREACH_ENDED,
        ref_id=e.outreach_id,
        agency_id=link.agency_id,
        source_event_id=ctx.envelope.id,
    )


@policy(ParticipationMatched)
async def participation_matched(e: ParticipationMatched, ctx: PolicyContext) -> None:
    """ParticipationMatched (participation) naming a case -> RequestOutcomeReceived
    participation_matched on it (the host agency as its agency)."""
    if e.case_id is None:
        return
    await receive_outcome(
        _command(ctx),
        e.case_id,
        kind=OutcomeKind.PARTICIPATION_MATCHED,
        ref_id=e.match_id,
        agency_id=e.host_agency_id,
        source_event_id=ctx.envelope.id,
    )


_LIFE_POLICIES: list[Policy[Any]] = [
    member_died,
    member_departed,
    facility_stay_started,
    member_change_retracted,
    household_merged,
]
_OWN = {p.event_type for p in _LIFE_POLICIES}

POLICIES: list[Policy[Any]] = [
    case_escalated,
    consultation_linked,
    outreach_started,
    outreach_ended,
    participation_matched,
    *_LIFE_POLICIES,
    *(p for p in directory_policies() if p.event_type not in _OWN),
]
