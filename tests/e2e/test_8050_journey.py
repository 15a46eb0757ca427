"""The 8050 household's whole journey through coordination, as agencies and coordinators
live it, over real HTTP and the real Kafka protocol, on SQLite and PostgreSQL.

松戸 ハル (82, early dementia) and her son 一郎 (54, withdrawn for twenty years) live on
her pension. 地域包括 escalates; the city holds a 支援会議 without consent; the mother
consents; a 重層的支援会議 adopts a plan with three agencies (地域包括, her GP, the
welfare office); the son's goal is to stay connected, so the plan asks the 社協's CSW to
reach out to him and the participation team to find him a place; a review scores both
axes (自立, 孤立の解消); the mother dies (親亡き後) and the case is flagged for review;
her part of the case closes while her son continues in 伴走."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kyosei_events import events_topic
from kyosei_events.catalogue.participation import ParticipationMatched
from kyosei_platform.application import today
from kyosei_platform.auth import Role
from tests.backbone_support import header, read_topic
from tests.conftest import PG_URL
from tests.e2e.harness import days, eventually, json_of, running_system
from tests.e2e.households import consents, escalated_8050

CITY = "matsudo-city"  # the convening municipal office (多機関協働)
HOUKATSU = "houkatsu-matsudo-1"  # 地域包括支援センター: escalates, main agency
WELFARE = "matsudo-welfare"  # 生活保護担当
CLINIC = "hondamachi-clinic"  # the mother's GP
SHAKYO = "matsudo-shakyo-csw"  # 社会福祉協議会 CSW: reaches out to the son
SANKA = "matsudo-sanka"  # 参加支援: finds the son a place


async def test_the_8050_household_from_escalation_to_the_son_continuing_in_accompaniment(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        window = system.client("intake", HOUKATSU, "staff-ito", Role.STAFF)
        csw = system.client("intake", SHAKYO, "csw-mori", Role.STAFF)
        city = system.client("coordination", CITY, "coord-abe", Role.COORDINATOR)
        other_coordinator = system.client("coordination", CITY, "coord-ueda", Role.COORDINATOR)
        houkatsu = system.client("coordination", HOUKATSU, "staff-ito", Role.STAFF)
        clinic = system.client("coordination", CLINIC, "dr-honda", Role.STAFF)
        welfare = system.client("coordination", WELFARE, "staff-kato", Role.STAFF)
        auditor = system.client("coordination", "audit-office", "auditor-1", Role.AUDITOR)

        # -- 地域包括 receives the consultation and escalates it ------------------------
        h = await escalated_8050(
            window,
            city,
            concerns=["care", "withdrawal", "hardship", "eighty_fifty"],
            summary="母（82）に物忘れ。息子（54）は20年ひきこもり。年金のみ。",
            escalation_reason="セルフネグレクトの疑い、本人の同意なし",
        )
        hid, mother, son, case_id = h.household_id, h.mother, h.son, h.case_id
        assert h.case["main_agency"] == HOUKATSU and h.case["status"] == "open"

        # -- 支援会議 without consent ----------------------------------------------------
        support = json_of(
            await city.post(
                f"/cases/{case_id}/meetings",
                json={
                    "kind": "confidential",
                    "scheduled_for": f"{days(-30)}T10:00:00+09:00",
                    "participant_agencies": [HOUKATSU, WELFARE],
                },
            ),
            201,
        )
        json_of(
            await city.post(
                f"/meetings/{support['meeting_id']}/held",
                json={
                    "held_on": days(-30),
                    "minutes": {
                        "attendees": [
                            {"agency_id": CITY, "name": "阿部"},
                            {"agency_id": HOUKATSU, "name": "伊藤"},
                            {"agency_id": WELFARE, "name": "加藤"},
                        ],
                        "items": [
                            {
                                "item_id": "debt",
                                "section": "information",
                                "text": "SEALED-SUPPORT 滞納が3か月",
                            }
                        ],
                    },
                },
            ),
            200,
        )
        board = json_of(await city.get("/board"), 200)
        card = next(c for c in board["stages"]["support_meeting"] if c["case_id"] == case_id)
        assert card["main_agency"] == HOUKATSU
        assert case_id in [c["case_id"] for c in board["waiting_for_consent"]]

        # -- the mother consents; a 重層的支援会議 about her is held ----------------------
        await consents(
            window,
            city,
            h,
            mother,
            [CITY, HOUKATSU, CLINIC, WELFARE],
            ["information_sharing", "multi_layered_meeting", "support_plan"],
        )
        layered = json_of(
            await city.post(
                f"/cases/{case_id}/meetings",
                json={
                    "kind": "multi_layered",
                    "scheduled_for": f"{days(-20)}T10:00:00+09:00",
                    "participant_agencies": [HOUKATSU, CLINIC, WELFARE],
                    "member_ids": [mother],
                },
            ),
            201,
        )
        lid = layered["meeting_id"]
        json_of(
            await city.post(
                f"/meetings/{lid}/held",
                json={
                    "held_on": days(-20),
                    "minutes": {
                        "attendees": [
                            {"agency_id": CITY, "name": "阿部"},
                            {"agency_id": HOUKATSU, "name": "伊藤"},
                            {"agency_id": CLINIC, "name": "本田"},
                            {"agency_id": WELFARE, "name": "加藤"},
                        ],
                        "items": [
                            {"item_id": "plan", "section": "decision", "text": "プランを決定"}
                        ],
                    },
                },
            ),
            200,
        )

        # -- assessment of the whole household, then the plan with three agencies --------
        json_of(
            await houkatsu.post(
                f"/cases/{case_id}/assessments",
                json={
                    "assessed_on": days(-21),
                    "assessment": {
                        "members": [
                            {
                                "member_id": mother,
                                "situation": "SEALED-ASSESS 物忘れ、服薬できていない",
                                "needs": "受診、介護認定",
                            },
                            {
                                "member_id": son,
                                "situation": "20年ひきこもり、母の年金で生活",
                                "needs": "誰かとつながること",
                            },
                        ],
                        "history_background": "父の死後、息子が退職して同居",
                        "strengths": "息子は母の買い物を続けてきた",
                        "wishes": "「この家で二人で暮らしたい」",
                        "risks": "母の認知症の進行、滞納",
                    },
                },
            ),
            201,
        )
        assessment = json_of(await city.get(f"/cases/{case_id}/assessment"), 200)
        assert assessment["version"] == 1 and assessment["assessed_on"] == days(-21)
        # The GP took part for the mother only; the assessment is the son's too.
        assert (await clinic.get(f"/cases/{case_id}/assessment")).status_code == 404

        plan_body: dict[str, Any] = {
            "adopted_on": days(-20),
            "review_on": days(-1),
            "meeting_id": lid,
            "person_wishes": "「この家で息子と暮らしたい」",
            "household_wishes": "二人の暮らしを続ける",
            "goals": [
                {
                    "goal_id": "mother-home",
                    "text": "SEALED-PLAN 母が在宅で安心して暮らす",
                    "approaches": ["problem_solving"],
                    "member_ids": [mother],
                    "actions": [
                        {
                            "action_id": "care-cert",
                            "text": "要介護認定の申請を支援",
                            "responsible_agency": HOUKATSU,
                            "due_on": days(10),
                        },
                        {
                            "action_id": "diagnosis",
                            "text": "認知症の診断と服薬管理",
                            "responsible_agency": CLINIC,
                            "due_on": days(20),
                        },
                    ],
                },
                {
                    "goal_id": "budget",
                    "text": "家計を立て直す",
                    "approaches": ["problem_solving"],
                    "actions": [
                        {
                            "action_id": "arrears",
                            "text": "滞納の分納相談",
                            "responsible_agency": WELFARE,
                            "due_on": days(30),
                        }
                    ],
                },
                {
                    "goal_id": "son-connected",
                    "text": "一郎さんとつながり続ける",
                    "approaches": ["staying_connected"],
                    "member_ids": [son],
                    "actions": [
                        {
                            "action_id": "csw-visits",
                            "text": "社協CSWに訪問を依頼",
                            "responsible_agency": HOUKATSU,
                        },
                        {
                            "action_id": "a-place",
                            "text": "参加支援に居場所探しを依頼",
                            "responsible_agency": HOUKATSU,
                        },
                    ],
                },
            ],
        }
        adopted = await city.put(f"/cases/{case_id}/plan", json=plan_body)
        plan = json_of(adopted, 201)
        first_tag = adopted.headers["ETag"]
        assert plan["version"] == 1
        assert {a["responsible_agency"] for g in plan["goals"] for a in g["actions"]} == {
            HOUKATSU,
            CLINIC,
            WELFARE,
        }
        # Each agency sees the actions assigned to it.
        for reader, agency, expected in (
            (clinic, CLINIC, {"diagnosis"}),
            (welfare, WELFARE, {"arrears"}),
            (houkatsu, HOUKATSU, {"care-cert", "csw-visits", "a-place"}),
        ):
            mine = json_of(await reader.get("/actions", params={"case_id": case_id}), 200)
            assert {a["action_id"] for a in mine} == expected, agency
            assert {a["responsible_agency"] for a in mine} == {agency}
        assert (await clinic.get("/actions", params={"agency_id": WELFARE})).status_code == 403
        # The GP reads the plan as one responsible for an action: its own goal, and goals
        # whose members all consented to it; the son has not, so neither his goal, nor
        # the household's, nor the wishes of the whole household.
        for_clinic = json_of(await clinic.get(f"/cases/{case_id}/plan"), 200)
        assert [g["goal_id"] for g in for_clinic["goals"]] == ["mother-home"]
        assert for_clinic["goals_withheld"] == 2 and for_clinic["person_wishes"] is None
        for_welfare = json_of(await welfare.get(f"/cases/{case_id}/plan"), 200)
        assert [g["goal_id"] for g in for_welfare["goals"]] == ["mother-home", "budget"]
        assert "一郎" not in json.dumps(for_welfare, ensure_ascii=False)

        # -- requests to the other pillars from the son's goal ---------------------------
        outreach = json_of(
            await houkatsu.post(
                f"/cases/{case_id}/outreach-requests",
                json={
                    "action_id": "csw-visits",
                    "outreach_agency": SHAKYO,
                    "member_id": son,
                    "concerns": ["withdrawal", "isolation"],
                    "reason": "SEALED-REQUEST 20年ひきこもり、母の介護が始まる",
                },
            ),
            201,
        )
        assert outreach["kind"] == "outreach" and outreach["to_agency"] == SHAKYO
        participation = json_of(
            await houkatsu.post(
                f"/cases/{case_id}/participation-requests",
                json={
                    "action_id": "a-place",
                    "participation_agency": SANKA,
                    "member_id": son,
                    "interests": "SEALED-INTERESTS 鉄道模型、夜の散歩",
                    "strengths": "手先が器用",
                    "constraints": "人の多い場所は苦手",
                    "schedule": "平日の午後",
                    "wishes": "話さなくてもいい場所",
                    "area": "小金地区",
                },
            ),
            201,
        )
        refused = await houkatsu.post(
            f"/cases/{case_id}/participation-requests",
            json={
                "action_id": "no-such-action",
                "participation_agency": SANKA,
                "interests": "-",
                "strengths": "-",
                "constraints": "-",
                "schedule": "-",
                "wishes": "-",
            },
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["fields"][0]["field"] == "action_id"

        # The CSW's outreach case appears in intake; the participation team answers.
        async def outreach_at_csw() -> list[Any] | None:
            rows = json_of(await csw.get("/outreach"), 200)
            return rows or None

        (reaching_out,) = await eventually(outreach_at_csw)
        assert reaching_out["origin"]["value"] == "coordination"
        await system.publish(
            "participation",
            ParticipationMatched(
                match_id="match-kogane-1",
                household_id=hid,
                case_id=case_id,
                opportunity_id="model-railway-club",
                opportunity_kind="activity",
                host_agency_id="kogane-community-place",
                link_worker_agency_id=SANKA,
                matched_on=today(),
                fit_notes="鉄道模型の会、見学のみから",
            ),
            agency=SANKA,
        )

        async def outcomes_on_timeline() -> list[Any] | None:
            entries = json_of(await city.get(f"/cases/{case_id}/timeline"), 200)
            kinds = {
                e["detail"].get("kind")
                for e in entries
                if e["type"] == "RequestOutcomeReceived" and isinstance(e["detail"], dict)
            }
            return entries if {"outreach_started", "participation_matched"} <= kinds else None

        timeline = await eventually(outcomes_on_timeline)
        types = [e["type"] for e in timeline]
        for expected_type in (
            "CaseOpened",
            "MeetingScheduled",
            "SupportMeetingHeld",
            "AssessmentRecorded",
            "SupportPlanAdopted",
            "RoleAssigned",
            "OutreachRequested",
            "ParticipationRequested",
        ):
            assert expected_type in types, expected_type

        # On the topic: the requests with their personal fields sealed; no meeting record.
        topic = events_topic("coordination", system.topic_prefix)
        records = await read_topic(kafka_bootstrap, topic, expect_at_least=8)
        topic_types = [header(r, "ce_type") or "" for r in records]
        assert any(t.endswith("ParticipationRequested") for t in topic_types)
        assert any(t.endswith("SupportPlanAdopted") for t in topic_types)
        assert not any(t.endswith("MeetingRecorded") for t in topic_types)
        for r in records:
            assert b"SEALED" not in (r.value or b""), header(r, "ce_type")
        (asked,) = [
            json.loads(r.value)
            for r, t in zip(records, topic_types, strict=True)
            if t.endswith("ParticipationRequested")
        ]
        assert asked["request_id"] == participation["request_id"]
        assert asked["area"] == "小金地区" and asked["participation_agency"] == SANKA

        # -- a review with both axes --------------------------------------------------------
        assert case_id in [
            c["case_id"] for c in json_of(await city.get("/board"), 200)["overdue_reviews"]
        ]
        review = json_of(
            await city.post(
                f"/cases/{case_id}/reviews",
                json={
                    "reviewed_on": days(-1),
                    "next_review_on": days(90),
                    "self_reliance": [
                        {"area": "food", "score": 3},
                        {"area": "money", "score": 2},
                        {"area": "health", "score": 3},
                    ],
                    "connectedness": 2,
                    "connections": [
                        {"kind": "agency", "label": "社協CSW"},
                        {"kind": "group", "label": "鉄道模型の会"},
                    ],
                    "goals": [
                        {"goal_id": "mother-home", "progress": "in_progress"},
                        {"goal_id": "budget", "progress": "achieved"},
                        {"goal_id": "son-connected", "progress": "continuing"},
                    ],
                },
            ),
            201,
        )
        assert review["plan_version"] == 1
        (stored,) = json_of(await auditor.get(f"/cases/{case_id}/reviews"), 200)
        assert {s["area"]["value"] for s in stored["self_reliance"]} == {"food", "money", "health"}
        assert stored["connectedness"] == 2

        # -- the mother dies: 親亡き後 flags the case for review ---------------------------
        json_of(
            await window.post(
                f"/households/{hid}/members/{mother}/changes",
                json={"kind": "died", "on": days(0)},
            ),
            201,
        )

        async def flagged() -> dict[str, Any] | None:
            now = json_of(await city.get(f"/cases/{case_id}"), 200)
            return now if now["review_flags"] else None

        (flag,) = (await eventually(flagged))["review_flags"]
        assert flag["member_id"] == mother and flag["reason"]["value"] == "parent_died"
        assert "親亡き後" in flag["reason"]["label_ja"]
        board = json_of(await city.get("/board"), 200)
        assert case_id in [c["case_id"] for c in board["flagged"]]

        # -- her part closes; the son continues in 伴走 on a revised plan ------------------
        json_of(
            await city.post(
                f"/cases/{case_id}/member-closings",
                json={"member_ids": [mother], "reason": "died", "ended_on": days(0)},
            ),
            200,
        )
        revision = {
            **plan_body,
            "adopted_on": days(0),
            "review_on": days(60),
            "meeting_id": None,
            "person_wishes": "「母のいた家で暮らし続けたい」",
            "goals": [plan_body["goals"][2]],
        }
        revised = await city.put(
            f"/cases/{case_id}/plan", json=revision, headers={"If-Match": first_tag}
        )
        assert json_of(revised, 200)["version"] == 2
        # A second coordinator who read version 1 does not overwrite version 2.
        stale = await other_coordinator.put(
            f"/cases/{case_id}/plan", json=plan_body, headers={"If-Match": first_tag}
        )
        assert stale.status_code == 412, stale.text
        assert stale.json()["error"]["code"] == "precondition_failed"
        assert json_of(await city.get(f"/cases/{case_id}/plan"), 200)["version"] == 2
        as_of_first = json_of(
            await city.get(f"/cases/{case_id}/plan", params={"as_of": days(-10)}), 200
        )
        assert as_of_first["version"] == 1 and len(as_of_first["goals"]) == 3

        # The mother's actions are no longer anyone's; the son's stay with 地域包括.
        assert json_of(await clinic.get("/actions", params={"case_id": case_id}), 200) == []
        assert {
            a["action_id"]
            for a in json_of(await houkatsu.get("/actions", params={"case_id": case_id}), 200)
        } == {"csw-visits", "a-place"}

        now = json_of(await city.get(f"/cases/{case_id}"), 200)
        assert now["status"] == "open"
        assert [(m["member_id"], m["reason"]["value"]) for m in now["ended_members"]] == [
            (mother, "died")
        ]
        board = json_of(await city.get("/board"), 200)
        accompanying = [c["case_id"] for c in board["accompanying"]]
        assert case_id in accompanying
        assert case_id not in [c["case_id"] for c in board["stalled"]]
        card = next(c for c in board["stages"]["planned"] if c["case_id"] == case_id)
        # The revision set its own review date, later than the last review's.
        assert card["plan_version"] == 2 and card["next_review_on"] == days(60)
