"""Event policies of coordination: what it does when other services' events arrive."""

from __future__ import annotations

from datetime import UTC, datetime

from kyosei_events import NewEvent, PolicyContext, policy
from kyosei_events.catalogue.coordination import CaseOpened
from kyosei_events.catalogue.intake import CaseEscalated


def case_id_for(consultation_id: str) -> str:
    # One case per escalated consultation: a second delivery lands on the same stream.
    return f"case-{consultation_id}"


@policy(CaseEscalated)
async def open_case(escalated: CaseEscalated, ctx: PolicyContext) -> None:
    """CaseEscalated (intake) -> CaseOpened: every escalation gets a coordination case."""
    case_id = case_id_for(escalated.consultation_id)
    opened = CaseOpened(
        case_id=case_id,
        household_id=escalated.household_id,
        consultation_id=escalated.consultation_id,
        escalated_by=escalated.agency_id,
        concerns=escalated.concerns,
        opened_at=datetime.now(UTC),
    )
    if await ctx.uow.stream_version(case_id) > 0:
        # A second escalation of the same consultation: the case is already open.
        return
    await ctx.uow.append(
        case_id,
        [NewEvent(opened, ctx.envelope.subject, ctx.caused_metadata())],
        expected_version=0,
    )
