"""Event policies of coordination: what it does when other services' events arrive.

- intake CaseEscalated: open a case (the same command a coordinator would use).
- intake's household events keep coordination's copy of the household directory, so
  that merges and consent are known here too (kyosei_households.feed).
"""

from __future__ import annotations

from typing import Any

from kyosei_events.catalogue.intake import CaseEscalated
from kyosei_events.policy import Policy, PolicyContext, policy
from kyosei_households.feed import directory_policies
from kyosei_platform.application import CommandContext

from .commands import OpenCase, open_case


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


POLICIES: list[Policy[Any]] = [case_escalated, *directory_policies()]
