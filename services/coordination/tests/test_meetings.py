"""Meetings over coordination's HTTP routes (ASGI: the real auth and error envelope) on
a local store, with the bytes its real outbox relay publishes: scheduling and its
refusals, the final record and corrections, the re-share hand-off, and the property
that no non-participant ever reads a 支援会議's record."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kyosei_coordination.app import service
from kyosei_coordination.commands import OpenCase, open_case
from kyosei_coordination.meetings.projection import meeting_reshares, meetings
from kyosei_events.catalogue.coordination import SupportMeetingHeld
from kyosei_events.model import travels, upcast
from kyosei_platform.auth import Role
from kyosei_platform.testing import acting_as

from .kit import CITY, Coordination, body, coordination


def minutes(tag: str, attendees: list[str]) -> dict[str, Any]:
    """A record whose every item carries ``tag`` (to look for it where it must not be)."""
    return {
        "attendees": [{"agency_id": a, "name": f"{a} 担当"} for a in attendees],
        "items": [
            {"item_id": "info", "section": "information", "text": f"{tag}-info 母の認知症が進行"},
            {"item_id": "concern", "section": "concern", "text": f"{tag}-concern セルフネグレクト"},
            {
                "item_id": "next",
                "section": "next_step",
                "text": f"{tag}-next 訪問を続ける",
                "responsible_agency": attendees[0],
            },
        ],
    }


async def a_support_meeting(
    c: Coordination, case_id: str, participants: list[str], tag: str
) -> str:
    city = c.client(CITY, Role.COORDINATOR)
    meeting = body(
        await city.post(
            f"/cases/{case_id}/meetings",
            json={
                "kind": "confidential",
                "scheduled_for": "2026-11-26T10:00:00+09:00",
                "participant_agencies": participants,
            },
        ),
        201,
    )
    held = body(
        await city.post(
            f"/meetings/{meeting['meeting_id']}/held",
            json={"held_on": "2026-11-26", "minutes": minutes(tag, [CITY, *participants[:1]])},
        ),
        200,
    )
    assert held["status"] == "held" and len(held["record"]["items"]) == 3
    return str(meeting["meeting_id"])


async def test_a_support_meeting_is_held_without_consent_and_read_only_by_participants(
    tmp_path: Path,
) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        case_id = await c.case("c-1", "h-1")
        meeting_id = await a_support_meeting(c, case_id, ["houkatsu", "welfare"], "TAG1")

        for reader in (c.client("houkatsu"), c.client("welfare"), c.client("audit", Role.AUDITOR)):
            seen = body(await reader.get(f"/meetings/{meeting_id}"), 200)
            assert "TAG1-info" in seen["record"]["items"][0]["text"]
        # A coordinator of another agency sees that it took place, not what it recorded.
        other = body(
            await c.client("kashiwa-city", Role.COORDINATOR).get(f"/meetings/{meeting_id}"), 200
        )
        assert other["record"] is None and other["may_read_record"] is False
        assert "TAG1" not in json.dumps(other)
        # Staff of an agency that took no part: not even told it exists.
        stranger = c.client("clinic")
        assert (await stranger.get(f"/meetings/{meeting_id}")).status_code == 404
        assert (await stranger.get(f"/cases/{case_id}/meetings")).status_code == 404
        assert (
            await c.client("ops", Role.OPERATOR).get(f"/meetings/{meeting_id}")
        ).status_code == 403
        # On the topic: the fact only.
        wire = await c.relay()
        assert b"TAG1" not in wire
        published = [json.loads(v) for v, *_ in c.broker.sent]
        held = [p for p in published if p.get("meeting_id") == meeting_id and "held_on" in p]
        assert held and held[0]["participant_agencies"] == [CITY, "houkatsu", "welfare"]
        assert held[0]["consent_obtained"] is False


async def test_a_meeting_needs_participants_and_a_consented_kind_needs_consent(
    tmp_path: Path,
) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        case_id = await c.case("c-1", "h-1")
        city = c.client(CITY, Role.COORDINATOR)
        request = {"kind": "confidential", "scheduled_for": "2026-11-26T10:00:00+09:00"}
        empty = body(
            await city.post(
                f"/cases/{case_id}/meetings", json={**request, "participant_agencies": []}
            ),
            422,
        )
        assert empty["error"]["fields"][0]["field"] == "participant_agencies"
        assert empty["error"]["fields"][0]["problem_ja"]
        only_us = {**request, "participant_agencies": [CITY]}
        alone = body(await city.post(f"/cases/{case_id}/meetings", json=only_us), 422)
        assert alone["error"]["fields"][0]["field"] == "participant_agencies"
        consented = {**request, "kind": "multi_layered", "participant_agencies": ["houkatsu"]}
        refused = body(await city.post(f"/cases/{case_id}/meetings", json=consented), 409)
        assert refused["error"]["code"] == "consent_required"
        assert "mother" in refused["error"]["message"] and refused["error"]["message_ja"]
        await c.consent("h-1", "mother", [CITY, "houkatsu"])
        about_mother = {**consented, "member_ids": ["mother"]}
        body(await city.post(f"/cases/{case_id}/meetings", json=about_mother), 201)
        # The son has not consented: a meeting about the whole household is still refused.
        assert (await city.post(f"/cases/{case_id}/meetings", json=consented)).status_code == 409
        stage = body(await city.get(f"/cases/{case_id}/meetings"), 200)
        assert stage["stage"]["value"] == "multi_layered" and stage["consenting_members"] == [
            "mother"
        ]
        assert (await city.post("/cases/case-nope/meetings", json=about_mother)).status_code == 404


async def test_a_held_record_is_final_and_corrections_are_new_entries(tmp_path: Path) -> None:
    async with coordination(tmp_path) as c:
        case_id = await c.case("c-1", None)
        meeting_id = await a_support_meeting(c, case_id, ["houkatsu"], "TAG2")
        city = c.client(CITY, Role.COORDINATOR)
        again = {"held_on": "2026-11-27", "minutes": minutes("X", [CITY])}
        final = body(await city.post(f"/meetings/{meeting_id}/held", json=again), 409)
        assert final["error"]["code"] == "meeting_record_final"
        corrected = body(
            await c.client("houkatsu").post(
                f"/meetings/{meeting_id}/corrections",
                json={"item_id": "info", "text": "TAG2-info 訂正後", "reason": "聞き違い"},
            ),
            200,
        )
        assert corrected["record"]["items"][0] == {
            **corrected["record"]["items"][0],
            "text": "TAG2-info 訂正後",
            "corrected": True,
        }
        assert (
            corrected["corrections"] == 1
            and corrected["record"]["corrections"][0]["reason"] == "聞き違い"
        )
        unknown = body(
            await city.post(
                f"/meetings/{meeting_id}/corrections",
                json={"item_id": "zzz", "text": "a", "reason": "b"},
            ),
            422,
        )
        assert unknown["error"]["fields"][0]["field"] == "item_id"
        # The original record is still in the store, untouched.
        events, _ = await c.store.load(f"meeting-{meeting_id}")
        assert [type(d.event).__name__ for d in events] == [
            "MeetingScheduled",
            "SupportMeetingHeld",
            "MeetingRecorded",
            "MeetingRecordCorrected",
        ]
        assert "TAG2-info 母" in events[2].event.minutes.items[0].text  # type: ignore[attr-defined]


async def test_consent_arrives_and_items_are_re_shared_one_by_one(tmp_path: Path) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        case_id = await c.case("c-1", "h-1")
        support = await a_support_meeting(c, case_id, ["houkatsu"], "TAG3")
        city = c.client(CITY, Role.COORDINATOR)
        assert (
            body(await city.get(f"/cases/{case_id}/meetings"), 200)["stage"]["value"]
            == "confidential"
        )
        await c.consent("h-1", "mother", [CITY, "houkatsu", "clinic"])
        layered = body(
            await city.post(
                f"/cases/{case_id}/meetings",
                json={
                    "kind": "multi_layered",
                    "scheduled_for": "2026-12-03T10:00:00+09:00",
                    "participant_agencies": ["houkatsu", "clinic"],
                    "member_ids": ["mother"],
                },
            ),
            201,
        )
        clinic = c.client("clinic")
        before = body(await clinic.get(f"/meetings/{layered['meeting_id']}"), 200)
        assert before["reshared_items"] == [] and "TAG3" not in json.dumps(before)
        # The clinic took no part in the 支援会議: it cannot re-share, nor read it.
        assert (
            await clinic.post(
                f"/meetings/{support}/reshares",
                json={"to_meeting_id": layered["meeting_id"], "item_ids": ["info"]},
            )
        ).status_code == 404
        shared = body(
            await c.client("houkatsu").post(
                f"/meetings/{support}/reshares",
                json={"to_meeting_id": layered["meeting_id"], "item_ids": ["info"]},
            ),
            200,
        )
        assert shared["record"]["reshared_to"] == {layered["meeting_id"]: ["info"]}
        after = body(await clinic.get(f"/meetings/{layered['meeting_id']}"), 200)
        assert [(i["item_id"], i["from_meeting_id"]) for i in after["reshared_items"]] == [
            ("info", support)
        ]
        assert "TAG3-info" in json.dumps(after)
        assert "TAG3-concern" not in json.dumps(after) and "TAG3-next" not in json.dumps(after)
        assert (await clinic.get(f"/meetings/{support}")).status_code == 404
        # Only to a consented meeting of the same case.
        other = await a_support_meeting(c, case_id, ["houkatsu"], "TAG4")
        wrong = body(
            await city.post(
                f"/meetings/{support}/reshares", json={"to_meeting_id": other, "item_ids": ["info"]}
            ),
            422,
        )
        assert wrong["error"]["fields"][0]["field"] == "to_meeting_id"
        assert b"TAG3" not in await c.relay()


# -- the confidentiality property ------------------------------------------------------

AGENCIES = [CITY, "houkatsu", "welfare", "clinic", "npo"]
READER_AGENCIES = [*AGENCIES, "outsider"]
KINDS = ["confidential", "confidential", "multi_layered", "community_care", "case_conference"]
ITEMS = ["info", "concern", "next"]


@dataclass(frozen=True)
class PlannedMeeting:
    kind: str
    convener: str
    listed: frozenset[str]
    held: bool


meeting_plans = st.builds(
    PlannedMeeting,
    kind=st.sampled_from(KINDS),
    convener=st.sampled_from(AGENCIES),
    listed=st.frozensets(st.sampled_from(AGENCIES), min_size=1, max_size=4),
    held=st.booleans(),
)
readers = st.tuples(st.sampled_from(READER_AGENCIES), st.sampled_from(list(Role)))


def get_routes(app: FastAPI) -> list[str]:
    """Every GET route coordination serves, as its OpenAPI document lists them (the
    walk fails on one whose parameters it cannot fill in)."""
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return sorted(path for path, ops in paths.items() if "get" in ops)


def test_the_walk_covers_every_get_route(tmp_path: Path) -> None:
    app = FastAPI()
    app.include_router(service.router)
    assert {
        "/cases",
        "/cases/{case_id}",
        "/cases/{case_id}/meetings",
        "/meetings",
        "/meetings/{meeting_id}",
    } <= set(get_routes(app))


async def walk(c: Coordination, reader: tuple[str, Role], case_id: str, ids: list[str]) -> str:
    """Every GET route's answer to ``reader``, for every case and meeting id."""
    client = c.client(reader[0], reader[1])
    answers = []
    for template in get_routes(c.app):
        params = set(re.findall(r"{(\w+)}", template))
        assert params <= {"case_id", "meeting_id"}, f"walk {template} too"
        paths = (
            [template.replace("{meeting_id}", m) for m in ids]
            if "meeting_id" in params
            else [template.replace("{case_id}", case_id)]
        )
        for path in paths:
            answers.append((await client.get(path)).text)
            if not params:  # a list: also filtered by the case
                answers.append((await client.get(path, params={"case_id": case_id})).text)
    return "\n".join(answers)


async def confidentiality_holds(
    tmp_path: Path,
    plans: list[PlannedMeeting],
    reshares: list[tuple[int, int, frozenset[str]]],
    who: list[tuple[str, Role]],
) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        for member in ("mother", "son"):
            await c.consent("h-1", member, AGENCIES)
        case_id = await c.case("c-1", "h-1")
        ids: list[str] = []
        participants: list[set[str]] = []
        for n, plan in enumerate(plans):
            convener = c.client(plan.convener, Role.COORDINATOR)
            answer = await convener.post(
                f"/cases/{case_id}/meetings",
                json={
                    "kind": plan.kind,
                    "scheduled_for": f"2026-11-{10 + n}T10:00:00+09:00",
                    "participant_agencies": sorted(plan.listed),
                },
            )
            if plan.listed <= {plan.convener}:  # nobody but the convening office
                assert body(answer, 422)["error"]["fields"][0]["field"] == "participant_agencies"
                plans[n] = PlannedMeeting(plan.kind, plan.convener, plan.listed, held=False)
                ids.append("never-scheduled")
                participants.append(set())
                continue
            scheduled = body(answer, 201)
            ids.append(scheduled["meeting_id"])
            participants.append(set(scheduled["participant_agencies"]))
            assert participants[-1] == {plan.convener, *plan.listed}
            if plan.held:
                record = minutes(f"ZQX{n}", [plan.convener])
                hold = {"held_on": f"2026-11-{10 + n}", "minutes": record}
                body(await convener.post(f"/meetings/{ids[-1]}/held", json=hold), 200)
        # Items re-shared, by a participant, from held 支援会議 to consented meetings.
        opened: dict[tuple[int, str], set[str]] = {}  # (meeting, item) -> agencies it reached
        for source, target, items in reshares:
            si, ti = source % len(plans), target % len(plans)
            s, t = plans[si], plans[ti]
            consented = ("multi_layered", "case_conference")
            if (
                s.kind != "confidential"
                or not s.held
                or t.kind not in consented
                or not participants[ti]
            ):
                continue
            sharer = c.client(s.convener)
            share = {"to_meeting_id": ids[ti], "item_ids": sorted(items)}
            body(await sharer.post(f"/meetings/{ids[si]}/reshares", json=share), 200)
            for item in items:
                opened.setdefault((si, item), set()).update(participants[ti])

        scheduled_ids = [m for m in ids if m != "never-scheduled"]
        for reader in who:
            seen = await walk(c, reader, case_id, scheduled_ids)
            agency, role = reader
            for n, plan in enumerate(plans):
                for item in ITEMS:
                    if f"ZQX{n}-{item}" not in seen:
                        continue
                    assert role is not Role.OPERATOR, (reader, n, item)
                    assert (
                        role is Role.AUDITOR
                        or agency in participants[n]
                        or agency in opened.get((n, item), set())
                    ), f"{reader} read item {item} of meeting {n} ({plan.kind}) without taking part"
        # Neither the read model nor the topic ever holds what a meeting recorded.
        async with c.store.engine.connect() as conn:
            rows = [r for t in (meetings, meeting_reshares) for r in await conn.execute(select(t))]
        assert "ZQX" not in repr(rows)
        assert b"ZQX" not in await c.relay()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plans=st.lists(meeting_plans, min_size=1, max_size=4),
    reshares=st.lists(
        st.tuples(
            st.integers(0, 3), st.integers(0, 3), st.frozensets(st.sampled_from(ITEMS), min_size=1)
        ),
        max_size=3,
    ),
    who=st.lists(readers, min_size=1, max_size=3),
)
def test_no_non_participant_ever_reads_what_a_meeting_recorded(
    tmp_path_factory: pytest.TempPathFactory,
    plans: list[PlannedMeeting],
    reshares: list[tuple[int, int, frozenset[str]]],
    who: list[tuple[str, Role]],
) -> None:
    """For random meetings, participant sets, re-shares and readers: no reader who is
    not a participant (or an auditor, or a participant of a meeting an item was
    re-shared to) sees any item of a meeting's record through any GET route; the read
    model and the published bytes never hold any of it."""
    folder = tmp_path_factory.mktemp("meetings")
    run_in_fresh_loop(confidentiality_holds(folder, plans, reshares, who))


def run_in_fresh_loop(work: Coroutine[Any, Any, None]) -> None:
    # The test session's loop is running (pytest-asyncio, session scope): hypothesis
    # examples run on a loop of their own, in a thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work).result()


def test_a_v1_support_meeting_held_reads_as_v2_without_its_summary() -> None:
    """v1 carried a sealed summary on the topic; v2 carries only the fact (none was ever
    emitted, but a stored one would still read)."""
    v1 = {
        "meeting_id": "m-1",
        "case_id": "case-c-1",
        "household_id": "h-1",
        "kind": "confidential",
        "held_on": "2026-11-26",
        "participant_agencies": [CITY, "houkatsu"],
        "consent_obtained": False,
        "summary": "kyosei-enc:v1:abc",
    }
    v2 = SupportMeetingHeld.model_validate(upcast("SupportMeetingHeld", 1, v1))
    assert v2.convening_agency == CITY and "summary" not in v2.model_dump()
    assert not travels("MeetingRecorded") and travels("SupportMeetingHeld")


async def test_an_erased_households_record_is_gone_and_the_meeting_stays_held(
    tmp_path: Path,
) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-9", "mother")
        case_id = await c.case("c-9", "h-9")
        meeting_id = await a_support_meeting(c, case_id, ["houkatsu"], "TAG9")
        assert await c.store.vault.erase("h-9")
        city = c.client(CITY, Role.COORDINATOR)
        seen = body(await city.get(f"/meetings/{meeting_id}"), 200)
        assert seen["status"] == "held" and seen["record"]["erased"] is True
        assert "TAG9" not in json.dumps(seen)
        again = {"held_on": "2026-11-27", "minutes": minutes("X", [CITY])}
        assert (await city.post(f"/meetings/{meeting_id}/held", json=again)).status_code == 409


async def test_an_agency_behind_a_later_consultation_of_the_case_sees_its_meetings(
    tmp_path: Path,
) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        case_id = await c.case("c-1", "h-1")
        meeting_id = await a_support_meeting(c, case_id, ["houkatsu"], "TAG9")
        clinic = c.client("clinic")
        assert (await clinic.get(f"/cases/{case_id}/meetings")).status_code == 404
        # The clinic escalates a later consultation of the same household: it joins the
        # open case, and the clinic now sees the case and that its meetings took place.
        ctx = acting_as(c.store, "clinic", Role.STAFF)
        later = OpenCase(
            consultation_id="c-2", household_id="h-1", escalated_by="clinic", concerns=["health"]
        )
        await open_case(ctx, later, subject="h-1")
        assert body(await clinic.get(f"/cases/{case_id}"), 200)["case_id"] == case_id
        listed = body(await clinic.get(f"/cases/{case_id}/meetings"), 200)
        assert [m["meeting_id"] for m in listed["meetings"]] == [meeting_id]
        assert [m["meeting_id"] for m in body(await clinic.get("/meetings"), 200)] == [meeting_id]
        seen = body(await clinic.get(f"/meetings/{meeting_id}"), 200)
        assert seen["record"] is None and "TAG9" not in json.dumps(seen)
