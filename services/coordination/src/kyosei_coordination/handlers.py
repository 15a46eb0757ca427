"""Event policies of coordination: what it does when other services' events arrive."""

from __future__ import annotations

from datetime import UTC, datetime

from kyosei_events import Delivery, NewEvent, UnitOfWork
from kyosei_events.catalogue.coordination import CaseOpened
from kyosei_events.catalogue.intake import CaseEscalated
from kyosei_events.consumer import Handler


def case_id_for(consultation_id: str) -> str:
    # One case per escalated consultation: a second delivery lands on the same stream.
    return f"case-{consultation_id}"


async def open_case(delivery: Delivery, uow: UnitOfWork) -> None:
    """CaseEscalated (intake) -> CaseOpened: every escalation gets a coordination case."""
    escalated = delivery.event
    assert isinstance(escalated, CaseEscalated)
    case_id = case_id_for(escalated.consultation_id)
    opened = CaseOpened(
        case_id=case_id,
        household_id=escalated.household_id,
        consultation_id=escalated.consultation_id,
        escalated_by=escalated.agency_id,
        concerns=escalated.concerns,
        opened_at=datetime.now(UTC),
    )
    if await uow.stream_version(case_id) > 0:
        # A second escalation of the same consultation: the case is already open.
        return
    await uow.append(
        case_id,
        [NewEvent(opened, delivery.envelope.subject, delivery.caused_metadata())],
        expected_version=0,
    )


POLICIES: dict[str, Handler] = {CaseEscalated.event_type: open_case}
