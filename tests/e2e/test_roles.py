"""Roles alike in every service, route by route.

Every route of every installed service's app is walked: with an operator's token each
one that answers with household data is refused with 403 ``forbidden_role`` in the
error envelope (operators run the services and read no household data); with an
auditor's token every GET route answers 200, and every list is not empty where data
exists (auditors read every list, every agency's rows).

Routes meant for operators are tagged ``operations`` (health, metrics); the framework's
own documentation routes (openapi, docs) are not the services' routes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from kyosei_platform.application import now, today
from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import System, eventually, json_of, running_system

A, B = "agency-roles-a", "agency-roles-b"
OPERATOR_FACING = "operations"
# Query parameters a GET list needs (a search needs a term); the rest need none.
NEEDS = {"/households/search": {"name": "役割"}}


def household_routes(app: FastAPI) -> list[RouteContext]:
    """The routes that answer with household data: every API route of the app (those
    of included routers too) but the operator-facing ones."""
    return [
        r
        for r in iter_route_contexts(app.routes)
        if isinstance(r.original_route, APIRoute) and OPERATOR_FACING not in (r.tags or [])
    ]


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


async def seed(system: System) -> dict[str, str]:
    """Records of two agencies: a household with consent, an unresolved consultation, a
    referral waiting to be answered, an outreach case, a coordination case and a
    community issue."""
    a = system.client("intake", A, "staff-a", Role.STAFF)
    household = json_of(await a.post("/households", json={"members": [{"name": "役割 花子"}]}), 201)
    hid, member = household["household_id"], household["members"][0]["member_id"]
    consent = json_of(
        await a.post(
            f"/households/{hid}/consents",
            json={"member_id": member, "agencies": [B], "purposes": ["information_sharing"]},
        ),
        201,
    )
    body = {
        "household_id": hid,
        "window": "welfare_general",
        "channel": "visit",
        "concerns": ["isolation"],
        "summary": "話し相手がいない",
    }
    old = (now() - timedelta(days=60)).isoformat()
    unresolved = json_of(await a.post("/consultations", json={**body, "received_at": old}), 201)
    referred = json_of(await a.post("/consultations", json=body), 201)
    made = json_of(
        await a.post(
            f"/consultations/{referred['consultation_id']}/referrals", json={"to_agency": B}
        ),
        201,
    )
    escalated = json_of(
        await a.post("/consultations", json={**body, "complex": True, "escalation_reason": "複合"}),
        201,
    )
    outreach = json_of(
        await a.post(
            "/outreach", json={"household_id": hid, "concerns": ["withdrawal"], "reason": "見守り"}
        ),
        201,
    )
    # A member's life change, the agency's window, an accompaniment due for review.
    json_of(
        await a.post(
            f"/households/{hid}/members/{member}/changes",
            json={"kind": "facility_started", "facility": "hospital"},
        ),
        201,
    )
    (change,) = json_of(await a.get(f"/households/{hid}/members/{member}/history"), 200)
    json_of(await a.put(f"/agencies/{A}/window", json={"window": "welfare_general"}), 200)
    accompanied = json_of(await a.post("/consultations", json=body), 201)
    json_of(
        await a.post(
            f"/consultations/{accompanied['consultation_id']}/accompaniment",
            json={"review_on": today().isoformat()},
        ),
        200,
    )
    coordinator = system.client("coordination", A, "coordinator-a", Role.COORDINATOR)

    async def case() -> str | None:
        found = json_of(
            await coordinator.get(
                "/cases", params={"consultation_id": escalated["consultation_id"]}
            ),
            200,
        )
        return found[0]["case_id"] if found else None

    case_id = await eventually(case)
    assert case_id is not None
    meeting = json_of(
        await coordinator.post(
            f"/cases/{case_id}/meetings",
            json={
                "kind": "confidential",
                "scheduled_for": now().isoformat(),
                "participant_agencies": [B],
            },
        ),
        201,
    )
    # A community issue seen in the case (GET /community-issues lists it).
    json_of(
        await coordinator.post(
            "/community-issues",
            json={
                "area": "役割地区",
                "theme": "話し相手がいない",
                "description": "日中に話し相手がいない高齢者がいる",
                "case_ids": [case_id],
            },
        ),
        201,
    )

    # The case's assessment and plan, so that their reads as of today answer.
    async def assessed() -> bool:
        recorded = await coordinator.post(
            f"/cases/{case_id}/assessments",
            json={
                "assessed_on": today().isoformat(),
                "assessment": {
                    "members": [{"member_id": member, "situation": "独居", "needs": "見守り"}],
                    "history_background": "経緯",
                    "strengths": "近所づきあい",
                    "wishes": "家で暮らしたい",
                },
            },
        )
        return recorded.status_code == 201

    await eventually(assessed)
    json_of(
        await coordinator.put(
            f"/cases/{case_id}/plan",
            json={
                "adopted_on": today().isoformat(),
                "review_on": today().isoformat(),
                "person_wishes": "家で暮らしたい",
                "goals": [
                    {
                        "text": "つながり続ける",
                        "approaches": ["staying_connected"],
                        "actions": [{"text": "訪問", "responsible_agency": B}],
                    }
                ],
            },
        ),
        201,
    )
    return {
        "household_id": hid,
        "member_id": member,
        "change_id": change["change_id"],
        "agency_id": A,
        "meeting_id": meeting["meeting_id"],
        "consent_id": consent["consent_id"],
        "consultation_id": unresolved["consultation_id"],
        "referral_id": made["referrals"][0]["referral_id"],
        "outreach_id": outreach["outreach_id"],
        "case_id": case_id,
    }


def not_empty(answer: Any) -> bool:
    if isinstance(answer, list):
        return bool(answer)
    return any(isinstance(v, list) and v for v in answer.values())


async def test_roles_on_every_route(kind: str, tmp_path: Path, kafka_bootstrap: list[str]) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        ids = await seed(system)
        walked: dict[str, int] = {}
        for name, running in system.services.items():
            app: FastAPI = running.server.config.app
            routes = household_routes(app)
            assert routes, f"{name} has no routes"
            operator = system.client(name, "ops", "operator", Role.OPERATOR)
            auditor = system.client(name, "audit-office", "auditor", Role.AUDITOR)
            for route in routes:
                assert route.path and route.methods, route
                path = fill(route.path, ids)
                for method in sorted(route.methods):
                    # Operators: refused before anything else is looked at.
                    refused = await operator.request(
                        method, path, json={} if method != "GET" else None
                    )
                    where = f"{name} {method} {route.path}"
                    assert refused.status_code == 403, f"{where}: {refused.text}"
                    error = refused.json()["error"]
                    assert error["code"] == "forbidden_role", where
                    assert error["message"] and error["message_ja"], where
                    assert set(refused.json()) == {"error"}, where
                    walked[name] = walked.get(name, 0) + 1
                    if method != "GET":
                        continue
                    # Auditors: every GET answers, and no list is empty where data exists.
                    read = await auditor.get(path, params=NEEDS.get(route.path))
                    assert read.status_code == 200, f"{where}: {read.text}"
                    if "{" not in route.path:
                        assert not_empty(read.json()), f"{where} is empty for an auditor"
        # Every service was walked, and every route of intake's five resources.
        assert set(walked) == set(system.services) and walked["intake"] >= 20, walked
        # The operator-facing routes stay open to operators.
        for name in system.services:
            ops = system.client(name, "ops", "operator", Role.OPERATOR)
            assert (await ops.get("/health/live")).status_code == 200
            assert (await ops.get("/metrics")).status_code == 200


async def test_auditor_reads_every_agency_s_lists(
    tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    """What an auditor's lists hold: every agency's rows, where staff see their own."""
    async with running_system("sqlite", tmp_path, PG_URL, kafka_bootstrap) as system:
        ids = await seed(system)
        auditor = system.client("intake", "audit-office", "auditor", Role.AUDITOR)
        b = system.client("intake", B, "staff-b", Role.STAFF)
        stranger = system.client("intake", "agency-roles-c", "staff-c", Role.STAFF)
        (listed,) = json_of(await auditor.get("/referrals"), 200)
        assert listed["referral_id"] == ids["referral_id"]
        (outgoing,) = json_of(await auditor.get("/referrals?direction=outgoing"), 200)
        assert outgoing["referral_id"] == ids["referral_id"]
        assert [r["referral_id"] for r in json_of(await b.get("/referrals"), 200)] == [
            ids["referral_id"]
        ]
        assert json_of(await stranger.get("/referrals"), 200) == []
        inbox = json_of(await auditor.get("/inbox"), 200)
        assert inbox["agency_id"] is None
        assert [r["referral_id"] for r in inbox["referrals_to_answer"]] == [ids["referral_id"]]
        assert [o["outreach_id"] for o in inbox["outreach"]] == [ids["outreach_id"]]
        assert ids["consultation_id"] in [c["consultation_id"] for c in inbox["unresolved_intakes"]]
        mine = json_of(await stranger.get("/inbox"), 200)
        assert mine["agency_id"] == "agency-roles-c" and not mine["referrals_to_answer"]
        assert len(json_of(await auditor.get("/consultations"), 200)) == 4
        assert json_of(await stranger.get("/consultations"), 200) == []
        cases = system.client("coordination", "audit-office", "auditor", Role.AUDITOR)
        (case,) = json_of(await cases.get("/cases"), 200)
        assert case["case_id"] == ids["case_id"]
        staff_cases = system.client("coordination", "agency-roles-c", "staff-c", Role.STAFF)
        assert json_of(await staff_cases.get("/cases"), 200) == []
        assert (await staff_cases.get(f"/cases/{ids['case_id']}")).status_code == 404
