"""One open case per household: escalations of one household (any of its records)
land on the same case; a coordinator opens one directly, names its main coordinating
agency and the members it concerns; a case that learns a household which already has
an open case is merged into it."""

from __future__ import annotations

import pytest

from kyosei_coordination import commands, views
from kyosei_coordination.app import service
from kyosei_coordination.commands import (
    ChangeMainAgency,
    ChangeMembers,
    OpenCaseDirectly,
    case_id_for,
)
from kyosei_events import EventStore
from kyosei_events.catalogue.intake import (
    ConsultationLinkedToHousehold,
    HouseholdMergedInto,
    MemberAdded,
)
from kyosei_events.projection import rebuild
from kyosei_platform.application import PreconditionFailed, Rejected
from kyosei_platform.auth import Identity, Role
from kyosei_platform.testing import PolicyBus, acting_as

from .kit import COORDINATOR, NOW, case, registered
from .kit import escalated as escalation


def escalated(consultation_id: str, household_id: str | None, agency: str = "houkatsu"):
    concerns = ["care"] if agency == "houkatsu" else ["withdrawal", "hardship"]
    return escalation(consultation_id, household_id, agency, concerns)


def household(household_id: str, *members: str) -> list:
    return [
        registered(household_id),
        *(
            MemberAdded(household_id=household_id, member_id=m, name="松戸", relationship="child")
            for m in members
        ),
    ]


async def open_cases(store: EventStore, household_id: str) -> list[views.CaseView]:
    async with store.engine.connect() as conn:
        return await views.list_cases(
            conn,
            COORDINATOR,
            household_id=household_id,
            consultation_id=None,
            limit=10,
            status="open",
        )


def consultations(view: views.CaseView) -> list[str]:
    return [c.consultation_id for c in view.consultations]


async def test_two_escalations_of_one_household_make_one_case_with_both_consultations(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household("h-1"))
    await bus.publish("intake", escalated("c-1", "h-1"))
    (second,) = await bus.publish("intake", escalated("c-2", "h-1", agency="hikikomori-center"))
    await bus.redeliver("intake", second)  # at-least-once: nothing more
    await bus.publish("intake", escalated("c-2", "h-1", agency="hikikomori-center"))

    (only,) = await open_cases(store, "h-1")
    assert only.case_id == case_id_for("c-1")
    assert consultations(only) == ["c-1", "c-2"]
    assert [c.escalated_by for c in only.consultations] == ["houkatsu", "hikikomori-center"]
    assert [c.value for c in only.concerns] == ["care", "withdrawal", "hardship"]
    assert only.main_agency == "houkatsu"
    assert not await store.read_stream(case_id_for("c-2"))
    recorded = await store.read_stream(case_id_for("c-1"))
    assert [r.event_type for r in recorded] == ["CaseOpened", "ConsultationAddedToCase"]
    # The second agency sees the case its consultation went to; another does not.
    async with store.engine.connect() as conn:
        center = Identity("hikikomori-center", "s-1", Role.STAFF)
        assert (await views.get_case(conn, center, only.case_id)).case_id == only.case_id
        with pytest.raises(Rejected):
            await views.get_case(conn, Identity("other", "s-2", Role.STAFF), only.case_id)
        # The case is found from either consultation.
        found = await views.list_cases(
            conn, COORDINATOR, household_id=None, consultation_id="c-2", limit=10
        )
    assert [c.case_id for c in found] == [only.case_id]


async def test_escalations_of_two_records_of_a_merged_household_make_one_case(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household("h-survivor"), *household("h-duplicate"))
    await bus.publish(
        "intake",
        HouseholdMergedInto(
            household_id="h-duplicate", into_household_id="h-survivor", merged_at=NOW
        ),
    )
    (first,) = await bus.publish("intake", escalated("c-1", "h-duplicate"))
    await bus.publish("intake", escalated("c-2", "h-survivor", agency="hikikomori-center"))
    await bus.redeliver("intake", first)

    for record in ("h-survivor", "h-duplicate"):
        (only,) = await open_cases(store, record)
        assert only.case_id == case_id_for("c-1")
        assert consultations(only) == ["c-1", "c-2"]
    # The read model rebuilt from the log holds the same.
    maintenance = EventStore(store.engine, store.vault, name=store.name)
    for make in service.projections:
        await rebuild(maintenance, make())
    (only,) = await open_cases(store, "h-survivor")
    assert consultations(only) == ["c-1", "c-2"]


async def test_a_case_that_learns_a_household_with_an_open_case_is_merged_into_it(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household("h-1"))
    await bus.publish("intake", escalated("c-open", "h-1"))
    await bus.publish("intake", escalated("c-late", None, agency="hikikomori-center"))
    link = ConsultationLinkedToHousehold(
        consultation_id="c-late", household_id="h-1", linked_at=NOW
    )
    (event_id,) = await bus.publish("intake", link)
    await bus.redeliver("intake", event_id)

    (only,) = await open_cases(store, "h-1")
    assert only.case_id == case_id_for("c-open")
    assert consultations(only) == ["c-open", "c-late"]
    late = await case(store, case_id_for("c-late"))
    assert (late.status, late.merged_into, late.household_id) == (
        "merged",
        case_id_for("c-open"),
        "h-1",
    )
    assert late.consultations == []
    assert [r.event_type for r in await store.read_stream(case_id_for("c-late"))] == [
        "CaseOpened",
        "CaseLinkedToHousehold",
        "CaseMergedInto",
    ]
    # A later escalation of the late consultation again lands nowhere new.
    await bus.publish("intake", escalated("c-late", None, agency="hikikomori-center"))
    assert consultations(await case(store, case_id_for("c-open"))) == ["c-open", "c-late"]
    # The merged case takes no more changes.
    ctx = acting_as(store, "matsudo-city", Role.COORDINATOR)
    with pytest.raises(Rejected) as refused:
        await commands.change_main_agency(
            ctx, case_id_for("c-late"), ChangeMainAgency(main_agency="houkatsu")
        )
    assert refused.value.code == "case_not_open"


def direct(household_id: str = "h-1", **changes: object) -> OpenCaseDirectly:
    fields: dict[str, object] = {
        "household_id": household_id,
        "main_agency": "houkatsu",
        "member_ids": ["m-son"],
        "concerns": ["withdrawal"],
        "reason": "民生委員から: 息子が長くひきこもっている",
        **changes,
    }
    return OpenCaseDirectly.model_validate(fields)


async def test_a_coordinator_opens_a_case_directly_and_a_second_is_refused(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household("h-1", "m-mother", "m-son"), *household("h-2"))
    coordinator = acting_as(store, "matsudo-city", Role.COORDINATOR)
    opened = await commands.open_case_directly(coordinator, direct())
    view = await case(store, opened.case_id)
    assert (view.main_agency, view.member_ids, view.opened_by) == (
        "houkatsu",
        ["m-son"],
        "matsudo-city",
    )
    assert (view.consultation_id, view.consultations, view.status) == (None, [], "open")

    with pytest.raises(Rejected) as refused:
        await commands.open_case_directly(coordinator, direct(member_ids=[]))
    assert (refused.value.status, refused.value.code) == (409, "case_already_open")
    assert opened.case_id in refused.value.message

    # A later escalation of the household joins the directly opened case.
    await bus.publish("intake", escalated("c-9", "h-1"))
    assert consultations(await case(store, opened.case_id)) == ["c-9"]
    assert not await store.read_stream(case_id_for("c-9"))

    # Only a coordinator; only the household's members; only a known household.
    staff = acting_as(store, "houkatsu", Role.STAFF)
    with pytest.raises(Rejected) as refused:
        await commands.open_case_directly(staff, direct("h-2", member_ids=[]))
    assert refused.value.status == 403
    with pytest.raises(Rejected) as refused:
        await commands.open_case_directly(coordinator, direct("h-2", member_ids=["m-son"]))
    assert (refused.value.status, refused.value.field) == (422, "member_ids")
    with pytest.raises(Rejected) as refused:
        await commands.open_case_directly(coordinator, direct("h-unknown", member_ids=[]))
    assert (refused.value.status, refused.value.field) == (422, "household_id")
    assert await open_cases(store, "h-2") == []


async def test_a_coordinator_changes_the_main_agency_and_the_members(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household("h-1", "m-mother", "m-son"))
    await bus.publish("intake", escalated("c-1", "h-1"))
    coordinator = acting_as(store, "matsudo-city", Role.COORDINATOR)
    case_id = case_id_for("c-1")

    changed = await commands.change_main_agency(
        coordinator,
        case_id,
        ChangeMainAgency(main_agency="hikikomori-center", reason="息子の支援が中心に"),
        1,
    )
    assert changed.version == 2
    # The same agency again records nothing.
    await commands.change_main_agency(
        coordinator, case_id, ChangeMainAgency(main_agency="hikikomori-center")
    )
    await commands.change_members(coordinator, case_id, ChangeMembers(member_ids=["m-son"]), 2)
    view = await case(store, case_id)
    assert (view.main_agency, view.member_ids, view.version) == (
        "hikikomori-center",
        ["m-son"],
        3,
    )
    # The new main agency sees the case.
    async with store.engine.connect() as conn:
        center = Identity("hikikomori-center", "s-1", Role.STAFF)
        assert (await views.get_case(conn, center, case_id)).version == 3

    with pytest.raises(PreconditionFailed) as stale:
        await commands.change_members(coordinator, case_id, ChangeMembers(member_ids=[]), 2)
    assert stale.value.current == 3
    with pytest.raises(Rejected) as refused:
        await commands.change_members(
            coordinator, case_id, ChangeMembers(member_ids=["m-stranger"])
        )
    assert (refused.value.status, refused.value.field) == (422, "member_ids")
    staff = acting_as(store, "houkatsu", Role.STAFF)
    with pytest.raises(Rejected) as refused:
        await commands.change_members(staff, case_id, ChangeMembers(member_ids=[]))
    assert refused.value.status == 403
    recorded = await store.read_stream(case_id)
    assert [r.event_type for r in recorded] == [
        "CaseOpened",
        "CaseMainAgencyChanged",
        "CaseMembersChanged",
    ]


async def test_two_records_each_with_an_open_case_keep_one_open_case_once_merged(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household("h-survivor"), *household("h-duplicate"))
    await bus.publish("intake", escalated("c-first", "h-survivor"))
    await bus.publish("intake", escalated("c-second", "h-duplicate", agency="hikikomori-center"))
    assert len(await open_cases(store, "h-survivor")) == 1
    assert len(await open_cases(store, "h-duplicate")) == 1

    (merged,) = await bus.publish(
        "intake",
        HouseholdMergedInto(
            household_id="h-duplicate", into_household_id="h-survivor", merged_at=NOW
        ),
    )
    await bus.redeliver("intake", merged)

    for record in ("h-survivor", "h-duplicate"):
        (only,) = await open_cases(store, record)
        assert only.case_id == case_id_for("c-first")
        assert consultations(only) == ["c-first", "c-second"]
    later = await case(store, case_id_for("c-second"))
    assert later.status == "merged" and later.merged_into == case_id_for("c-first")
    # Redelivered, the merge recorded nothing more; rebuilt, the read model agrees.
    events, _ = await store.load(case_id_for("c-second"))
    assert [d.event.event_type for d in events].count("CaseMergedInto") == 1
    maintenance = EventStore(store.engine, store.vault, name=store.name)
    for make in service.projections:
        await rebuild(maintenance, make())
    (only,) = await open_cases(store, "h-duplicate")
    assert consultations(only) == ["c-first", "c-second"]
