"""Coordination on the in-memory broker: every escalation opens one case, and the
household directory kept from intake's events finds a merged household's case from
either record's id."""

from __future__ import annotations

from datetime import UTC, datetime

from kyosei_coordination import views
from kyosei_coordination.app import service
from kyosei_coordination.commands import OpenCase, case_id_for, open_case
from kyosei_events import EventStore
from kyosei_events.catalogue.intake import (
    CaseEscalated,
    ConsentGiven,
    ConsentPurpose,
    HouseholdMergedInto,
    HouseholdRegistered,
    MemberAdded,
)
from kyosei_events.projection import rebuild
from kyosei_households import find
from kyosei_platform.auth import Identity, Role
from kyosei_platform.testing import PolicyBus, acting_as

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
COORDINATOR = Identity("matsudo-city", "coord-1", Role.COORDINATOR)


def escalated(consultation_id: str, household_id: str | None) -> CaseEscalated:
    return CaseEscalated(
        consultation_id=consultation_id,
        household_id=household_id,
        agency_id="houkatsu",
        concerns=["care", "withdrawal"],
        reason="8050: 母の認知症と息子のひきこもり",
        escalated_at=NOW,
    )


def registered(household_id: str) -> HouseholdRegistered:
    return HouseholdRegistered(
        household_id=household_id, registered_by="houkatsu", registered_at=NOW
    )


async def cases(store: EventStore, household_id: str) -> list[str]:
    async with store.engine.connect() as conn:
        found = await views.list_cases(
            conn, COORDINATOR, household_id=household_id, consultation_id=None, limit=10
        )
    return [c.case_id for c in found]


async def test_an_escalation_opens_one_case_however_often_it_arrives(
    bus: PolicyBus, store: EventStore
) -> None:
    (event_id,) = await bus.publish("intake", escalated("c-1", "h-1"))
    await bus.redeliver("intake", event_id)
    await bus.publish("intake", escalated("c-1", "h-1"))  # escalated again: same case
    assert await cases(store, "h-1") == [case_id_for("c-1")]


async def test_a_merged_households_case_is_found_from_either_record(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", registered("h-survivor"), registered("h-duplicate"))
    await bus.publish("intake", escalated("c-2", "h-duplicate"))
    assert await cases(store, "h-survivor") == []
    await bus.publish(
        "intake",
        HouseholdMergedInto(
            household_id="h-duplicate", into_household_id="h-survivor", merged_at=NOW
        ),
    )
    assert await cases(store, "h-survivor") == [case_id_for("c-2")]
    assert await cases(store, "h-duplicate") == [case_id_for("c-2")]


async def test_the_directory_knows_members_and_each_persons_consent(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish(
        "intake",
        registered("h-1"),
        MemberAdded(household_id="h-1", member_id="m-1", name="松戸 ハル", relationship="head"),
        ConsentGiven(
            consent_id="k-1",
            household_id="h-1",
            member_id="m-1",
            given_by="person",
            agencies=["matsudo-city"],
            purposes=["information_sharing", "multi_layered_meeting"],
            given_on=NOW.date(),
            recorded_at=NOW,
        ),
    )
    async with store.engine.connect() as conn:
        household = await find(conn, "h-1")
    assert household is not None and household.member_ids == {"m-1"}
    meeting = ConsentPurpose.MULTI_LAYERED_MEETING
    assert household.consenting("matsudo-city", meeting, NOW.date()) == {"m-1"}
    assert household.consenting("another-agency", meeting, NOW.date()) == set()


async def test_a_coordinator_may_open_a_case_through_the_same_command(store: EventStore) -> None:
    ctx = acting_as(store, "matsudo-city", Role.COORDINATOR)
    command = OpenCase(consultation_id="c-3", escalated_by="houkatsu", concerns=["hardship"])
    opened = await open_case(ctx, command, subject="c-3")
    again = await open_case(ctx, command, subject="c-3")
    assert opened.case_id == again.case_id and again.version == 1


async def test_a_rebuild_keeps_the_directory_fed_by_intakes_events(
    bus: PolicyBus, store: EventStore
) -> None:
    """`kyosei rebuild coordination` replays coordination's own log into its read
    models (the case list); the household directory comes from intake's events, which
    are not in that log, so the rebuild leaves it as it is."""
    await bus.publish("intake", registered("h-1"))
    await bus.publish("intake", escalated("c-1", "h-1"))
    assert [make().name for make in service.projections] == [
        "coordination.cases",
        "coordination.meetings",
    ]

    maintenance = EventStore(store.engine, store.vault, name=store.name)
    for make in service.projections:
        assert await rebuild(maintenance, make()) == 1  # CaseOpened
    async with store.engine.connect() as conn:
        assert await find(conn, "h-1") is not None
    assert await cases(store, "h-1") == [case_id_for("c-1")]
