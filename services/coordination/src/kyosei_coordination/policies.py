"""Event policies of coordination: what it does when other services' events arrive.

- intake CaseEscalated: open a case (the same command a coordinator would use).
- intake ConsultationLinkedToHousehold: the case of that consultation, if any, learns
  its household (CaseLinkedToHousehold), so that the household's cases include it.
- intake's household events keep coordination's copy of the household directory, so
  that merges and consent are known here too (kyosei_households.feed).
"""

from __future__ import annotations

from typing import Any

from kyosei_events.catalogue.intake import CaseEscalated, ConsultationLinkedToHousehold
from kyosei_events.policy import Policy, PolicyContext, policy
from kyosei_households.feed import directory_policies
from kyosei_platform.application import CommandContext

from .commands import OpenCase, link_household, open_case


@policy(CaseEscalated)
async def case_escalated(e: CaseEscalated, ctx: PolicyContext) -> None:
    """CaseEscalated (intake) -> CaseOpened: every escalation gets a coordination case."""
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
    consultation has a case that did not know its household."""
    command = CommandContext.for_policy(ctx.uow.store, ctx.uow, ctx.caused_metadata())
    await link_household(command, e.consultation_id, e.household_id, subject=ctx.envelope.subject)


POLICIES: list[Policy[Any]] = [case_escalated, consultation_linked, *directory_policies()]
