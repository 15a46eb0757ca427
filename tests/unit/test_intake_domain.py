"""Intake decisions, pure: no database, no broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kyosei_events.catalogue.intake import CaseEscalated, ConsultationReceived
from kyosei_intake import domain

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def received(**changes: object) -> ConsultationReceived:
    base: dict[str, object] = {
        "consultation_id": "c-1",
        "household_id": "h-1",
        "agency_id": "madoguchi",
        "window": "welfare_general",
        "channel": "visit",
        "concerns": ["hoarding"],
        "summary": "隣人から、ごみ屋敷の住人が訪問を拒んでいると",
        "received_at": NOW,
    }
    return ConsultationReceived.model_validate(base | changes)


def test_a_plain_consultation_is_recorded_not_escalated() -> None:
    events = domain.receive(received(), None, NOW)
    assert [type(e) for e in events] == [ConsultationReceived]


def test_a_complex_consultation_is_escalated_in_the_same_step() -> None:
    events = domain.receive(received(complex=True, concerns=["care", "withdrawal"]), "8050", NOW)
    assert [type(e) for e in events] == [ConsultationReceived, CaseEscalated]
    escalated = events[1]
    assert isinstance(escalated, CaseEscalated)
    assert escalated.reason == "8050" and escalated.concerns == ["care", "withdrawal"]


def test_escalating_twice_is_refused() -> None:
    state = domain.Consultation("c-1")
    for e in domain.receive(received(), None, NOW):
        state.evolve(e)
    state.evolve(domain.escalate(state, "複合課題", NOW))
    assert state.status is domain.Status.ESCALATED and state.version == 2
    with pytest.raises(domain.AlreadyEscalated):
        domain.escalate(state, "again", NOW)


def test_any_concern_is_accepted_at_any_window() -> None:
    # 断らない相談: every concern at every window validates.
    from kyosei_events.catalogue.common import Concern
    from kyosei_events.catalogue.intake import Window

    for window in Window:
        for concern in Concern:
            assert received(window=window, concerns=[concern]).window is window
