"""Event policies of coordination: what it does when other services' events arrive.

- intake CaseEscalated: open a case, or, when the household (any of its records,
  merged or not) already has an open case, add the consultation to it
  (ConsultationAddedToCase): one open case per household. A redelivery records nothing.
- intake ConsultationLinkedToHousehold: the case of that consultation, if any, learns
  its household (CaseLinkedToHousehold), so that the household's cases include it; if
  the household already has another open case, the later case is merged into it
  (CaseMergedInto, and its consultations are added to the open case).
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


POLICIES: list[Policy[Any]] = [case_escalated, consultation_linked, *directory_policies()]
