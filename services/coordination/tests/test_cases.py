"""Coordination on the in-memory broker: every escalation opens one case, and the
household directory kept from intake's events finds a merged household's case from
either record's id."""

from __future__ import annotations

from datetime import date

from kyosei_coordination import views
from kyosei_coordination.app import service
from kyosei_coordination.commands import OpenCase, case_id_for, open_case
from kyosei_events import EventStore
from kyosei_events.catalogue.intake import (
    ConsentGiven,
    ConsentPurpose,
    ConsultationLinkedToHousehold,
    HouseholdMergedInto,
    MemberAdded,
    MemberChangeRetracted,
    MemberDeparted,
    MemberDied,
    MemberFacilityStayStarted,
    MembersCombined,
)
from kyosei_events.projection import rebuild
from kyosei_households import find
from kyosei_platform.auth import Role
from kyosei_platform.testing import PolicyBus, acting_as

from .kit import COORDINATOR, NOW, escalated, registered


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


def linked(consultation_id: str, household_id: str) -> ConsultationLinkedToHousehold:
    return ConsultationLinkedToHousehold(
        consultation_id=consultation_id, household_id=household_id, linked_at=NOW
    )


async def test_a_case_learns_its_household_when_its_consultation_is_linked_later(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", registered("h-late"), registered("h-other"))
    await bus.publish("intake", escalated("c-late", None))
    assert await cases(store, "h-late") == []
    (event_id,) = await bus.publish("intake", linked("c-late", "h-late"))
    await bus.redeliver("intake", event_id)
    assert await cases(store, "h-late") == [case_id_for("c-late")]
    case = await store.read_stream(case_id_for("c-late"))
    assert [r.event_type for r in case] == ["CaseOpened", "CaseLinkedToHousehold"]
    # A consultation that was not escalated has no case: nothing is recorded for it.
    await bus.publish("intake", linked("c-never-escalated", "h-late"))
    assert not await store.read_stream(case_id_for("c-never-escalated"))
    # The household it learned is followed through a later merge.
    await bus.publish(
        "intake",
        HouseholdMergedInto(household_id="h-late", into_household_id="h-other", merged_at=NOW),
    )
    assert await cases(store, "h-other") == [case_id_for("c-late")]
    # The read model rebuilt from the case streams holds the same.
    maintenance = EventStore(store.engine, store.vault, name=store.name)
    for make in service.projections:
        assert await rebuild(maintenance, make()) == 2  # CaseOpened, CaseLinkedToHousehold
    assert await cases(store, "h-late") == [case_id_for("c-late")]


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
        "coordination.plans",
        "coordination.community_issues",
        "coordination.board",
    ]

    maintenance = EventStore(store.engine, store.vault, name=store.name)
    for make in service.projections:
        assert await rebuild(maintenance, make()) == 1  # CaseOpened
    async with store.engine.connect() as conn:
        assert await find(conn, "h-1") is not None
    assert await cases(store, "h-1") == [case_id_for("c-1")]


async def test_the_directory_keeps_members_life_changes_and_combined_people(
    bus: PolicyBus, store: EventStore
) -> None:
    """Each life change arrives as its own event on intake's topic; coordination's copy
    of the directory keeps it (a death, a move, a facility stay), and a merge that
    combines two ids of one person."""
    died_on = date(2026, 11, 20)
    await bus.publish(
        "intake",
        registered("h-1"),
        MemberAdded(household_id="h-1", member_id="mother", name="松戸 ハル", relationship="head"),
        MemberAdded(household_id="h-1", member_id="son", name="松戸 一郎", relationship="child"),
        MemberFacilityStayStarted(
            change_id="c-1",
            household_id="h-1",
            member_id="mother",
            facility="hospital",
            started_on=date(2026, 11, 1),
            recorded_at=NOW,
        ),
        MemberDied(
            change_id="c-2",
            household_id="h-1",
            member_id="mother",
            died_on=died_on,
            recorded_at=NOW,
        ),
        registered("h-2"),
        MemberAdded(household_id="h-2", member_id="son-2", name="松戸一郎", relationship="head"),
        MemberDeparted(
            change_id="c-3",
            household_id="h-2",
            member_id="son-2",
            reason="moved_out",
            departed_on=date(2026, 11, 5),
            recorded_at=NOW,
        ),
        HouseholdMergedInto(household_id="h-2", into_household_id="h-1", merged_at=NOW),
        MembersCombined(
            household_id="h-1",
            member_id="son",
            same_member_id="son-2",
            merged_household_id="h-2",
            matched_by="name_and_birth_date",
            combined_at=NOW,
        ),
    )
    (retraction,) = await bus.publish(
        "intake",
        MemberChangeRetracted(
            household_id="h-1",
            member_id="son",
            retracted_change_id="c-3",
            reason="誤記録",
            retracted_at=NOW,
        ),
    )
    await bus.redeliver("intake", retraction)
    async with store.engine.connect() as conn:
        household = await find(conn, "h-2")
    assert household is not None and household.people == {"mother", "son"}
    mother = household.status("mother")
    assert mother.deceased_on == died_on and mother.facility is None
    assert household.status("mother", on=date(2026, 11, 10)).facility == "hospital"
    assert household.status("son").living_in_household  # the move was retracted
    assert [c.kind for m in household.members for c in m.changes] == [
        "facility_started",
        "died",
        "departed",
    ]
