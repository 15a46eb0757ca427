"""Support plans end to end, over real HTTP and the real Kafka protocol, on SQLite and
PostgreSQL: an 8050 household escalated by 地域包括 becomes a case; the mother
consents; a 重層的支援会議 is held; the household is assessed; the meeting adopts a
plan with three agencies; it is revised, and a second coordinator revising from the
same ETag gets 412; the plan is reviewed on both axes; an outreach request becomes an
outreach case in intake at the agency asked; a participation request is on the topic
with its personal fields sealed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kyosei_events import events_topic
from kyosei_platform.auth import Role
from tests.backbone_support import header, read_topic_with
from tests.conftest import PG_URL
from tests.e2e.harness import days, eventually, json_of, running_system
from tests.e2e.households import consents, escalated_8050

CITY = "matsudo-city"  # 多機関協働 (the coordinating municipal office)
HOUKATSU = "houkatsu-matsudo-1"  # 地域包括支援センター: escalated, the main agency
WELFARE = "matsudo-welfare"  # 生活保護担当
CSW = "matsudo-csw"  # 社協のコミュニティソーシャルワーカー
JIRITSU = "jiritsu-matsudo"  # 自立相談支援機関: reaches out to the son
SANKA = "sanka-npo-tokiwadaira"  # 参加支援


async def test_an_8050_household_is_assessed_planned_reviewed_and_referred(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        window = system.client("intake", HOUKATSU, "staff-ito", Role.STAFF)
        city = system.client("coordination", CITY, "coord-abe", Role.COORDINATOR)
        other = system.client("coordination", CITY, "coord-ueda", Role.COORDINATOR)
        houkatsu = system.client("coordination", HOUKATSU, "staff-ito", Role.STAFF)
        csw = system.client("coordination", CSW, "csw-sato", Role.STAFF)

        h = await escalated_8050(window, city, escalation_reason="世帯の複合課題")
        mother, son, case_id = h.mother, h.son, h.case_id

        # The mother consents; a 重層的支援会議 about her is held.
        await consents(window, city, h, mother, [CITY, HOUKATSU, CSW])
        meeting = json_of(
            await city.post(
                f"/cases/{case_id}/meetings",
                json={
                    "kind": "multi_layered",
                    "scheduled_for": f"{days(-1)}T10:00:00+09:00",
                    "participant_agencies": [HOUKATSU, CSW],
                    "member_ids": [mother],
                },
            ),
            201,
        )["meeting_id"]
        json_of(
            await city.post(
                f"/meetings/{meeting}/held",
                json={
                    "held_on": days(-1),
                    "minutes": {"attendees": [{"agency_id": CITY, "name": "阿部"}], "items": []},
                },
            ),
            200,
        )

        # アセスメント of the whole household, by the main agency.
        assessed = json_of(
            await houkatsu.post(
                f"/cases/{case_id}/assessments",
                json={
                    "assessed_on": days(-1),
                    "assessment": {
                        "members": [
                            {"member_id": mother, "situation": "認知症の疑い", "needs": "介護"},
                            {"member_id": son, "situation": "20年ひきこもり", "needs": "居場所"},
                        ],
                        "history_background": "父の死後、母と息子の二人暮らし",
                        "strengths": "息子はPCが得意",
                        "wishes": "この家で暮らし続けたい",
                    },
                },
            ),
            201,
        )
        assert assessed["version"] == 1 and assessed["recorded_by"] == HOUKATSU
        now = json_of(await city.get(f"/cases/{case_id}/assessment"), 200)
        assert now["assessment"]["members"][1]["member_id"] == son

        # The meeting adopts a plan with three agencies.
        goals: list[dict[str, Any]] = [
            {
                "goal_id": "care",
                "text": "母が介護サービスを使える",
                "approaches": ["problem_solving"],
                "member_ids": [mother],
                "actions": [
                    {"text": "要介護認定の申請", "responsible_agency": HOUKATSU},
                    {"text": "家計の見直し", "responsible_agency": WELFARE, "due_on": days(14)},
                ],
            },
            {
                "goal_id": "connect",
                "text": "息子とつながり続ける",
                "approaches": ["staying_connected"],
                "member_ids": [son],
                "actions": [
                    {"action_id": "visit", "text": "月1回の訪問", "responsible_agency": CSW}
                ],
            },
        ]
        plan = {
            "adopted_on": days(-1),
            "review_on": days(60),
            "meeting_id": meeting,
            "person_wishes": "家で暮らしたい",
            "goals": goals,
        }
        first = await city.put(f"/cases/{case_id}/plan", json=plan)
        adopted = json_of(first, 201)
        assert first.headers["ETag"] == '"1"'
        agencies = {a["responsible_agency"] for g in adopted["goals"] for a in g["actions"]}
        assert agencies == {HOUKATSU, WELFARE, CSW}
        assert json_of(await csw.get(f"/cases/{case_id}/plan"), 200)["version"] == 1

        # A revision from ETag "1"; a second coordinator's from the same ETag is refused.
        kept = [{**g, "actions": [dict(a) for a in g["actions"]]} for g in goals]
        for g_in, g in zip(kept, adopted["goals"], strict=True):
            for a_in, a in zip(g_in["actions"], g["actions"], strict=True):
                a_in["action_id"] = a["action_id"]
        kept[1]["actions"].append({"text": "参加支援につなぐ", "responsible_agency": CSW})
        second = await city.put(
            f"/cases/{case_id}/plan",
            json={**plan, "adopted_on": days(0), "goals": kept},
            headers={"If-Match": first.headers["ETag"]},
        )
        assert json_of(second, 200)["version"] == 2 and second.headers["ETag"] == '"2"'
        stale = await other.put(
            f"/cases/{case_id}/plan",
            json={**plan, "adopted_on": days(0), "person_wishes": "上書き"},
            headers={"If-Match": '"1"'},
        )
        assert json_of(stale, 412)["error"]["code"] == "precondition_failed"
        assert stale.headers["ETag"] == '"2"'
        versions = json_of(await city.get(f"/cases/{case_id}/plan/versions"), 200)
        assert [(v["version"], v["person_wishes"]) for v in versions] == [
            (1, "家で暮らしたい"),
            (2, "家で暮らしたい"),
        ]
        in_force = json_of(
            await city.get(f"/cases/{case_id}/plan", params={"as_of": days(-1)}), 200
        )
        assert in_force["version"] == 1

        # A review with both axes.
        reviewed = json_of(
            await city.post(
                f"/cases/{case_id}/reviews",
                json={
                    "reviewed_on": days(0),
                    "next_review_on": days(90),
                    "self_reliance": [{"area": "food", "score": 3}, {"area": "money", "score": 2}],
                    "connectedness": 2,
                    "connections": [{"kind": "agency", "label": "社協CSW"}],
                    "goals": [
                        {"goal_id": "care", "progress": "in_progress"},
                        {"goal_id": "connect", "progress": "continuing"},
                    ],
                },
            ),
            201,
        )
        assert reviewed["plan_version"] == 2 and reviewed["connectedness"] == 2

        # Requests from the plan's action to the other pillars.
        outreach = json_of(
            await city.post(
                f"/cases/{case_id}/outreach-requests",
                json={
                    "action_id": "visit",
                    "outreach_agency": JIRITSU,
                    "member_id": son,
                    "concerns": ["withdrawal"],
                    "reason": "訪問しても会えない",
                },
            ),
            201,
        )
        assert outreach["kind"] == "outreach" and outreach["to_agency"] == JIRITSU
        participation = json_of(
            await houkatsu.post(
                f"/cases/{case_id}/participation-requests",
                json={
                    "action_id": "visit",
                    "participation_agency": SANKA,
                    "member_id": son,
                    "interests": "PRIVATE-1 ゲームとPC",
                    "strengths": "PRIVATE-2 PCの修理",
                    "constraints": "PRIVATE-3 人の多い場所が苦手",
                    "schedule": "PRIVATE-4 平日の午後",
                    "wishes": "PRIVATE-5 誰かの役に立ちたい",
                    "area": "常盤平",
                },
            ),
            201,
        )
        listed = json_of(await city.get(f"/cases/{case_id}/requests"), 200)
        assert [r["request_id"] for r in listed] == [
            outreach["request_id"],
            participation["request_id"],
        ]

        # Intake opens an outreach case at the agency asked, naming the case.
        jiritsu = system.client("intake", JIRITSU, "staff-kudo", Role.STAFF)

        async def reached() -> list[Any] | None:
            rows = json_of(await jiritsu.get("/outreach"), 200)
            return rows or None

        (started,) = await eventually(reached)
        assert started["origin"]["value"] == "coordination" and started["origin_ref"] == case_id

        # On the topic: the participation request, its personal fields sealed.
        topic = events_topic("coordination", system.topic_prefix)
        records = await read_topic_with(
            kafka_bootstrap, topic, {"ParticipationRequested": 1, "RoleAssigned": 7}
        )
        types = [header(r, "ce_type") or "" for r in records]
        assert not any(t.endswith("ActionRequestMade") for t in types)
        assert sum(t.endswith("RoleAssigned") for t in types) == 7
        (asked,) = [
            json.loads(r.value)
            for r, t in zip(records, types, strict=True)
            if t.endswith("ParticipationRequested")
        ]
        assert asked["request_id"] == participation["request_id"] and asked["area"] == "常盤平"
        for name in ("interests", "strengths", "constraints", "schedule", "wishes"):
            assert asked[name].startswith("kyosei-enc:v1:"), name
        for r in records:
            assert b"PRIVATE" not in (r.value or b"")
