"""Assessment, support plans, reviews and requests over coordination's HTTP routes (ASGI:
the real auth and error envelope) on a local store: versions read as of a date, the
plan's If-Match (412, nothing overwritten), who writes and who reads, and every
refusal naming its field."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from kyosei_coordination.commands import link_household
from kyosei_coordination.plans.projection import (
    case_requests,
    plan_actions,
    plan_reviews,
    plan_versions,
)
from kyosei_platform.application import today
from kyosei_platform.auth import Role
from kyosei_platform.testing import acting_as

from .kit import CITY, HOUKATSU, Coordination, body, coordination

WELFARE, CSW, CLINIC = "welfare", "csw", "clinic"


async def layered_meeting(c: Coordination, case_id: str, household_id: str, member: str) -> str:
    """A held 重層的支援会議 about ``member`` (who consents for it first)."""
    await c.consent(household_id, member, [CITY, WELFARE], purposes=["multi_layered_meeting"])
    city = c.client(CITY, Role.COORDINATOR)
    meeting = body(
        await city.post(
            f"/cases/{case_id}/meetings",
            json={
                "kind": "multi_layered",
                "scheduled_for": "2026-11-26T10:00:00+09:00",
                "participant_agencies": [WELFARE],
                "member_ids": [member],
            },
        ),
        201,
    )
    minutes = {"attendees": [{"agency_id": CITY, "name": "阿部"}], "items": []}
    held = {"held_on": "2026-11-26", "minutes": minutes}
    body(await city.post(f"/meetings/{meeting['meeting_id']}/held", json=held), 200)
    return str(meeting["meeting_id"])


def refused(response: httpx.Response, status: int, field_name: str | None = None) -> str:
    """The error's code; with ``field_name``, the field it names (in both languages)."""
    error = body(response, status)["error"]
    assert error["message"] and error["message_ja"], error
    if field_name is not None:
        assert [f["field"] for f in error["fields"]] == [field_name], error
        assert error["fields"][0]["problem_ja"], error
    return str(error["code"])


def days(n: int) -> str:
    return (today() + timedelta(days=n)).isoformat()


def assessment(*members: str) -> dict[str, Any]:
    return {
        "members": [
            {"member_id": m, "situation": f"{m}の状況", "needs": "見守り"} for m in members
        ],
        "history_background": "20年前に父が亡くなり、母と息子の二人暮らし",
        "strengths": "近所に幼なじみがいる",
        "wishes": "この家で暮らし続けたい",
    }


def plan(**overrides: Any) -> dict[str, Any]:
    base = {
        "adopted_on": days(-10),
        "review_on": days(20),
        "person_wishes": "家で暮らしたい",
        "household_wishes": "息子の将来が心配",
        "goals": [
            {
                "text": "母の介護サービス利用",
                "approaches": ["problem_solving"],
                "member_ids": ["mother"],
                "actions": [
                    {"text": "要介護認定の申請支援", "responsible_agency": HOUKATSU},
                    {"text": "家計の相談", "responsible_agency": WELFARE, "due_on": days(5)},
                ],
            },
            {
                "text": "息子とつながり続ける",
                "approaches": ["staying_connected", "problem_solving"],
                "member_ids": ["son"],
                "actions": [{"text": "月1回の訪問", "responsible_agency": CSW}],
            },
        ],
    }
    return {**base, **overrides}


async def test_assessment_versions_are_read_as_of_a_date(tmp_path: Path) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        case_id = await c.case("c-1", "h-1")
        city = c.client(CITY, Role.COORDINATOR)
        url = f"/cases/{case_id}/assessments"
        none = await city.get(f"/cases/{case_id}/assessment")
        assert refused(none, 404) == "assessment_not_found"
        first = await city.post(
            url, json={"assessed_on": days(-30), "assessment": assessment("mother")}
        )
        assert body(first, 201)["version"] == 1 and first.headers["ETag"] == '"1"'
        # The main agency records the second version.
        second = await c.client(HOUKATSU).post(
            url,
            json={"assessed_on": days(-5), "assessment": assessment("mother", "son")},
            headers={"If-Match": '"1"'},
        )
        assert body(second, 201)["recorded_by"] == HOUKATSU and second.headers["ETag"] == '"2"'
        stale = await city.post(
            url,
            json={"assessed_on": days(-1), "assessment": assessment("son")},
            headers={"If-Match": '"1"'},
        )
        assert refused(stale, 412) == "precondition_failed"
        versions = body(await city.get(url), 200)
        assert [v["version"] for v in versions] == [1, 2]
        assert [m["member_id"] for m in versions[1]["assessment"]["members"]] == ["mother", "son"]
        now = body(await city.get(f"/cases/{case_id}/assessment"), 200)
        assert now["version"] == 2 and now["assessment"]["wishes"] == "この家で暮らし続けたい"
        then = await city.get(f"/cases/{case_id}/assessment", params={"as_of": days(-10)})
        assert body(then, 200)["version"] == 1 and then.headers["ETag"] == '"1"'
        before = await city.get(f"/cases/{case_id}/assessment", params={"as_of": days(-31)})
        assert refused(before, 404) == "assessment_not_found"

        stranger = {"assessed_on": days(-1), "assessment": assessment("mother", "lodger")}
        outside = await city.post(url, json=stranger)
        assert refused(outside, 422, "assessment.members[1].member_id") == "member_not_in_household"
        future = await city.post(
            url, json={"assessed_on": days(2), "assessment": assessment("son")}
        )
        assert refused(future, 422, "assessed_on") == "date_in_future"
        # Others may not write; an agency that does not see the case reads nothing.
        denied = await c.client(WELFARE).post(
            url, json={"assessed_on": days(-1), "assessment": assessment("son")}
        )
        assert refused(denied, 403) == "not_case_coordinator"
        assert refused(await c.client(WELFARE).get(url), 404) == "case_not_found"
        assert refused(await c.client("ops", Role.OPERATOR).get(url), 403) == "forbidden_role"
        assert len(body(await c.client("audit", Role.AUDITOR).get(url), 200)) == 2
        assert len(body(await c.client(HOUKATSU).get(url), 200)) == 2


async def test_a_plan_is_adopted_and_revised_keeping_its_ids(tmp_path: Path) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        case_id = await c.case("c-1", "h-1")
        meeting_id = await layered_meeting(c, case_id, "h-1", "mother")
        city = c.client(CITY, Role.COORDINATOR)
        url = f"/cases/{case_id}/plan"
        assert refused(await city.get(url), 404) == "plan_not_found"
        first = await city.put(url, json=plan(meeting_id=meeting_id))
        adopted = body(first, 201)
        assert first.headers["ETag"] == '"1"' and adopted["version"] == 1
        assert adopted["meeting_id"] == meeting_id and adopted["adopted_by"] == CITY
        goals = adopted["goals"]
        assert all(g["goal_id"] for g in goals) and len({g["goal_id"] for g in goals}) == 2
        assert [a["responsible_agency"] for a in goals[0]["actions"]] == [HOUKATSU, WELFARE]
        assert [a["value"] for a in goals[1]["approaches"]] == [
            "staying_connected",
            "problem_solving",
        ]

        # The revision keeps the goals' and actions' ids, and adds an action.
        revised_goals = [
            {
                **g_in,
                "goal_id": g["goal_id"],
                "actions": [
                    {**a_in, "action_id": a["action_id"]}
                    for a_in, a in zip(g_in["actions"], g["actions"], strict=True)
                ],
            }
            for g_in, g in zip(plan()["goals"], goals, strict=True)
        ]
        revised_goals[1]["actions"].append({"text": "居場所の紹介", "responsible_agency": CLINIC})
        second = await city.put(
            url, json=plan(adopted_on=days(-2), goals=revised_goals), headers={"If-Match": '"1"'}
        )
        revised = body(second, 200)
        assert second.headers["ETag"] == '"2"' and revised["version"] == 2
        assert [g["goal_id"] for g in revised["goals"]] == [g["goal_id"] for g in goals]
        assert revised["goals"][0]["actions"][1]["action_id"] == goals[0]["actions"][1]["action_id"]
        assert len(revised["goals"][1]["actions"]) == 2

        # A second coordinator revising from the same ETag: 412, nothing overwritten.
        late = await c.client(CITY, Role.COORDINATOR).put(
            url, json=plan(adopted_on=days(-1)), headers={"If-Match": '"1"'}
        )
        assert refused(late, 412) == "precondition_failed" and late.headers["ETag"] == '"2"'
        assert '"2"' in late.json()["error"]["message"]
        assert [v["version"] for v in body(await city.get(f"{url}/versions"), 200)] == [1, 2]
        events, _ = await c.store.load(f"plan-{case_id}")
        kinds = [type(d.event).__name__ for d in events]
        assert kinds.count("SupportPlanAdopted") == 2 and kinds.count("RoleAssigned") == 7

        # As of a date: the version in force then.
        assert body(await city.get(url), 200)["version"] == 2
        assert body(await city.get(url, params={"as_of": days(-5)}), 200)["version"] == 1
        assert refused(await city.get(url, params={"as_of": days(-11)}), 404) == "plan_not_found"

        # The read model: versions and each version's actions, no text.
        async with c.store.engine.connect() as conn:
            rows = (await conn.execute(select(plan_versions))).all()
            actions = (await conn.execute(select(plan_actions))).all()
        assert [(r.version, r.meeting_id) for r in rows] == [(1, meeting_id), (2, None)]
        assert sorted({a.responsible_agency for a in actions if a.version == 2}) == sorted(
            [HOUKATSU, WELFARE, CSW, CLINIC]
        )
        assert "訪問" not in json.dumps([list(r) for r in [*rows, *actions]], ensure_ascii=False)

        # An agency responsible for an action reads the plan, not the rest of the case.
        clinic = c.client(CLINIC)
        assert body(await clinic.get(url), 200)["version"] == 2
        assert refused(await clinic.get(f"/cases/{case_id}/assessments"), 404) == "case_not_found"
        assert refused(await c.client("nobody").get(url), 404) == "case_not_found"
        assert refused(await clinic.put(url, json=plan()), 403) == "not_case_coordinator"


async def test_a_plan_refuses_what_it_cannot_hold(tmp_path: Path) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        case_id = await c.case("c-1", "h-1")
        city = c.client(CITY, Role.COORDINATOR)
        url = f"/cases/{case_id}/plan"
        goals = plan()["goals"]

        async def put(field_name: str, **overrides: Any) -> str:
            return refused(await city.put(url, json=plan(**overrides)), 422, field_name)

        assert await put("goals", goals=[]) == "plan_without_goals"
        no_approach = [{**goals[0], "approaches": []}]
        assert await put("goals[0].approaches", goals=no_approach) == "goal_without_approach"
        no_agency = [goals[0], {**goals[1], "actions": [goals[1]["actions"][0], {"text": "x"}]}]
        assert (
            await put("goals[1].actions[1].responsible_agency", goals=no_agency)
            == "action_without_agency"
        )
        assert await put("review_on", review_on=days(-11)) == "review_before_adoption"
        twice = [{**goals[0], "goal_id": "g1"}, {**goals[1], "goal_id": "g1"}]
        assert await put("goals[1].goal_id", goals=twice) == "duplicate_goal"
        same_action = [
            {
                **goals[0],
                "actions": [{"action_id": "a1", "text": "x", "responsible_agency": CSW}] * 2,
            }
        ]
        assert await put("goals[0].actions[1].action_id", goals=same_action) == "duplicate_action"
        lodger = [goals[0], {**goals[1], "member_ids": ["lodger"]}]
        assert await put("goals[1].member_ids", goals=lodger) == "member_not_in_household"
        support = body(
            await city.post(
                f"/cases/{case_id}/meetings",
                json={
                    "kind": "confidential",
                    "scheduled_for": "2026-11-26T10:00:00+09:00",
                    "participant_agencies": [WELFARE],
                },
            ),
            201,
        )["meeting_id"]
        assert await put("meeting_id", meeting_id=support) == "not_a_held_multi_layered_meeting"
        assert await put("meeting_id", meeting_id="no-such") == "not_a_held_multi_layered_meeting"
        assert (
            refused(await city.put("/cases/case-nope/plan", json=plan()), 404) == "case_not_found"
        )
        events, _ = await c.store.load(f"plan-{case_id}")
        assert events == []
        # A revision adopted before the version in force is refused too.
        body(await city.put(url, json=plan()), 201)
        assert await put("adopted_on", adopted_on=days(-20)) == "adopted_before_current_version"


async def test_reviews_need_a_plan_and_every_goal_of_it(tmp_path: Path) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        case_id = await c.case("c-1", "h-1")
        city = c.client(CITY, Role.COORDINATOR)
        url = f"/cases/{case_id}/reviews"
        review: dict[str, Any] = {
            "reviewed_on": days(0),
            "next_review_on": days(90),
            "self_reliance": [{"area": "food", "score": 2}, {"area": "money", "score": 3}],
            "connectedness": 2,
            "connections": [{"kind": "place", "label": "地区の居場所"}],
            "goals": [{"goal_id": "care", "progress": "in_progress"}],
        }
        early = await city.post(url, json=review)
        assert refused(early, 409) == "plan_not_adopted" and "before adoption" in early.text
        goals = plan()["goals"]
        goals = [{**goals[0], "goal_id": "care"}, {**goals[1], "goal_id": "connect"}]
        body(await city.put(f"/cases/{case_id}/plan", json=plan(goals=goals)), 201)

        async def post(field_name: str, **overrides: Any) -> str:
            return refused(await city.post(url, json={**review, **overrides}), 422, field_name)

        assert await post("goals") == "goal_not_reviewed"
        unknown = [*review["goals"], {"goal_id": "other", "progress": "achieved"}]
        assert await post("goals[1].goal_id", goals=unknown) == "unknown_goal"
        twice = [*review["goals"], {"goal_id": "care", "progress": "achieved"}]
        assert await post("goals[1].goal_id", goals=twice) == "duplicate_goal"
        both = [
            *review["goals"],
            {"goal_id": "connect", "progress": "continuing", "note": "月1回会えている"},
        ]
        assert await post("next_review_on", goals=both, next_review_on=days(0)) == (
            "next_review_not_after_review"
        )
        area_twice = [{"area": "food", "score": 2}, {"area": "food", "score": 3}]
        assert await post("self_reliance[1].area", goals=both, self_reliance=area_twice) == (
            "duplicate_area"
        )
        score = await city.post(url, json={**review, "goals": both, "connectedness": 6})
        assert refused(score, 422, "connectedness") == "invalid_request"

        done = await city.post(url, json={**review, "goals": both})
        made = body(done, 201)
        assert made["plan_version"] == 1 and made["connectedness"] == 2
        assert [(g["goal_id"], g["progress"]["value"], g["note"]) for g in made["goals"]] == [
            ("care", "in_progress", None),
            ("connect", "continuing", "月1回会えている"),
        ]
        assert [s["area"]["label_ja"] for s in made["self_reliance"]] == ["食", "家計・金銭"]
        listed = body(await c.client("audit", Role.AUDITOR).get(url), 200)
        assert [r["review_id"] for r in listed] == [made["review_id"]]
        async with c.store.engine.connect() as conn:
            (row,) = (await conn.execute(select(plan_reviews))).all()
        assert json.loads(row.goal_progress) == {"care": "in_progress", "connect": "continuing"}


async def test_requests_come_from_an_action_of_the_plan_in_force(tmp_path: Path) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        case_id = await c.case("c-1", "h-1")
        city = c.client(CITY, Role.COORDINATOR)
        goals = plan()["goals"]
        goals[1]["actions"][0]["action_id"] = "visit"
        body(await city.put(f"/cases/{case_id}/plan", json=plan(goals=goals)), 201)
        participation = {
            "action_id": "visit",
            "participation_agency": "sanka-npo",
            "member_id": "son",
            "interests": "PRIVATE-ゲーム",
            "strengths": "PC が得意",
            "constraints": "人の多い場所が苦手",
            "schedule": "平日の午後",
            "wishes": "誰かの役に立ちたい",
            "area": "常盤平",
        }
        made = body(
            await city.post(f"/cases/{case_id}/participation-requests", json=participation), 201
        )
        assert made["kind"] == "participation" and made["to_agency"] == "sanka-npo"
        assert made["action_id"] == "visit"
        outreach = {
            "outreach_agency": CSW,
            "member_id": "son",
            "concerns": ["withdrawal"],
            "reason": "訪問しても会えない",
        }
        sent = body(
            await c.client(HOUKATSU).post(f"/cases/{case_id}/outreach-requests", json=outreach), 201
        )
        assert sent["kind"] == "outreach" and sent["action_id"] is None
        wrong = await city.post(
            f"/cases/{case_id}/outreach-requests", json={**outreach, "action_id": "nope"}
        )
        assert refused(wrong, 422, "action_id") == "unknown_action"
        lodger = await city.post(
            f"/cases/{case_id}/participation-requests", json={**participation, "member_id": "x"}
        )
        assert refused(lodger, 422, "member_id") == "member_not_in_household"
        listed = body(await city.get(f"/cases/{case_id}/requests"), 200)
        assert [(r["kind"], r["request_id"]) for r in listed] == [
            ("participation", made["request_id"]),
            ("outreach", sent["request_id"]),
        ]
        # Each request its own stream: the published request, then the store-only link.
        for request_id, published in (
            (made["request_id"], "ParticipationRequested"),
            (sent["request_id"], "OutreachRequested"),
        ):
            events, _ = await c.store.load(f"request-{request_id}")
            assert [type(d.event).__name__ for d in events] == [published, "ActionRequestMade"]
        async with c.store.engine.connect() as conn:
            rows = (await conn.execute(select(case_requests))).all()
        assert len(rows) == 2 and "PRIVATE" not in repr(rows)


async def test_a_case_that_is_not_open_takes_no_plan(tmp_path: Path) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        await c.case("c-1", "h-1")
        later = await c.case("c-2", None)
        await link_household(acting_as(c.store, CITY, Role.COORDINATOR), "c-2", "h-1", "h-1")
        city = c.client(CITY, Role.COORDINATOR)
        assert body(await city.get(f"/cases/{later}"), 200)["status"] == "merged"
        for path, payload in (
            ("plan", plan()),
            ("assessments", {"assessed_on": days(-1), "assessment": assessment("son")}),
        ):
            method = city.put if path == "plan" else city.post
            answer = await method(f"/cases/{later}/{path}", json=payload)
            assert refused(answer, 409) == "case_not_open"


async def test_two_coordinators_revising_at_once_one_wins(tmp_path: Path) -> None:
    async with coordination(tmp_path) as c:
        await c.household("h-1", "mother", "son")
        case_id = await c.case("c-1", "h-1")
        url = f"/cases/{case_id}/plan"
        body(await c.client(CITY, Role.COORDINATOR).put(url, json=plan()), 201)
        a, b = c.client(CITY, Role.COORDINATOR), c.client("kashiwa-city", Role.COORDINATOR)
        answers = await asyncio.gather(
            a.put(url, json=plan(person_wishes="A"), headers={"If-Match": '"1"'}),
            b.put(url, json=plan(person_wishes="B"), headers={"If-Match": '"1"'}),
        )
        assert sorted(r.status_code for r in answers) == [200, 412]
        winner = next(r for r in answers if r.status_code == 200).json()["person_wishes"]
        versions = body(await a.get(f"{url}/versions"), 200)
        assert [(v["version"], v["person_wishes"]) for v in versions] == [
            (1, "家で暮らしたい"),
            (2, winner),
        ]
