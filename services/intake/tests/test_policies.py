"""Intake's policies on the in-memory broker: the same commands staff use, for events
that community and coordination publish. A redelivered event records nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from kyosei_events import EventStore
from kyosei_events.catalogue.community import ConcernNoticed
from kyosei_events.catalogue.coordination import OutreachRequested
from kyosei_intake.commands import households
from kyosei_intake.commands.consultations import open_consultation
from kyosei_intake.commands.outreach import open_outreach
from kyosei_intake.policies import derived_id
from kyosei_intake.projections import consultations, outreach_cases
from kyosei_platform.testing import PolicyBus, acting_as

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def noticed(**changes: object) -> ConcernNoticed:
    base: dict[str, object] = {
        "concern_id": "n-1",
        "noticed_by": "neighbour",
        "reporter_link": "may_contact",
        "reporter_name": "隣の田中",
        "reporter_contact": "090-0000-0000",
        "concerns": ["hoarding", "other"],
        "description": "庭にごみが積まれ、夜も明かりがつかない",
        "person_asked_for_help": True,
        "forward_to": "madoguchi",
        "noticed_at": NOW,
    }
    return ConcernNoticed.model_validate(base | changes)


async def rows(store: EventStore, table: object) -> list[object]:
    async with store.engine.connect() as conn:
        return list(await conn.execute(select(table)))  # type: ignore[call-overload]


async def test_a_residents_concern_with_a_request_for_help_is_a_consultation(
    bus: PolicyBus, store: EventStore
) -> None:
    (event_id,) = await bus.publish("community", noticed())
    await bus.redeliver("community", event_id)
    assert len(await rows(store, consultations)) == 1
    received = await open_consultation(store, None, derived_id("consultation", "n-1"))
    assert received.agency_id == "madoguchi" and received.channel.value == "community"
    # その他 is in the concerns, so the words go with it; the reporter agreed to contact.
    assert received.other_concern == "庭にごみが積まれ、夜も明かりがつかない"
    assert (received.caller_name, received.caller_contact) == ("隣の田中", "090-0000-0000")
    assert received.concern_report_id == "n-1"


async def test_without_a_request_for_help_it_is_outreach_naming_the_reporter_as_agreed(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish(
        "community",
        noticed(person_asked_for_help=False, reporter_link="name_only", concerns=["hoarding"]),
    )
    assert len(await rows(store, outreach_cases)) == 1
    case = await open_outreach(store, None, derived_id("outreach", "n-1"))
    assert case.origin is not None and case.origin.value == "community"
    assert case.reporter_name == "隣の田中" and case.reporter_contact is None


async def test_coordinations_request_starts_outreach_once(
    bus: PolicyBus, store: EventStore
) -> None:
    request = OutreachRequested(
        request_id="r-1",
        case_id="case-1",
        outreach_agency="outreach-team",
        concerns=["withdrawal"],
        reason="20年ひきこもり、母の死後の見守り",
        requested_at=NOW,
    )
    (event_id,) = await bus.publish("coordination", request)
    await bus.redeliver("coordination", event_id)
    assert len(await rows(store, outreach_cases)) == 1
    case = await open_outreach(store, None, derived_id("outreach", "r-1"))
    assert case.agency_id == "outreach-team" and case.origin_ref == "case-1"


async def test_a_request_the_domain_refuses_is_dead_lettered_with_the_refusal(
    bus: PolicyBus, store: EventStore
) -> None:
    registered = await households.register_household(
        acting_as(store, "houkatsu"),
        households.RegisterHousehold(members=[households.MemberIn(name="松戸 一郎")]),
    )
    request = OutreachRequested(
        request_id="r-2",
        case_id="case-2",
        household_id=registered.household_id,
        member_id="m-nobody",
        outreach_agency="outreach-team",
        concerns=["withdrawal"],
        reason="見守り",
        requested_at=NOW,
    )
    await bus.publish("coordination", request)
    assert await rows(store, outreach_cases) == []
    (reason,) = bus.dead_letter_reasons()
    assert "no member m-nobody" in reason
