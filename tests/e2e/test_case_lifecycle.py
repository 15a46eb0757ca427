"""A case's life end to end, over real HTTP and the real Kafka protocol, on SQLite and
PostgreSQL: an 8050 household escalated by 地域包括 becomes a case; the mother's death,
recorded at intake, flags it for review as 親亡き後; her part of the case ends while
her son's goes on; the case is closed (handed over to community connections) and
reopened; a coordinator raises a community issue seen in it, and what the topic
carries of that issue names no one."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from kyosei_events import events_topic
from kyosei_platform.application import today
from kyosei_platform.auth import Role
from tests.backbone_support import header, read_topic_with
from tests.conftest import PG_URL
from tests.e2e.harness import eventually, json_of, running_system
from tests.e2e.households import escalated_8050

CITY = "matsudo-city"  # the coordinator's office (多機関協働)
HOUKATSU = "houkatsu-matsudo-1"  # 地域包括支援センター: escalates, main coordinating agency


async def test_a_parents_death_flags_the_case_her_part_ends_and_the_case_closes_and_reopens(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        window = system.client("intake", HOUKATSU, "staff-ito", Role.STAFF)
        houkatsu = system.client("coordination", HOUKATSU, "staff-ito", Role.STAFF)
        city = system.client("coordination", CITY, "coord-abe", Role.COORDINATOR)

        h = await escalated_8050(window, city, escalation_reason="8050: 複合課題")
        hid, mother, son, case_id = h.household_id, h.mother, h.son, h.case_id

        # The mother dies: recorded at intake, it reaches the case as 親亡き後.
        died_on = (today() - timedelta(days=2)).isoformat()
        json_of(
            await window.post(
                f"/households/{hid}/members/{mother}/changes",
                json={"kind": "died", "on": died_on},
            ),
            201,
        )

        async def flagged() -> dict[str, Any] | None:
            now = json_of(await houkatsu.get(f"/cases/{case_id}"), 200)
            return now if now["review_flags"] else None

        (flag,) = (await eventually(flagged))["review_flags"]
        assert (flag["member_id"], flag["reason"]["value"], flag["occurred_on"]) == (
            mother,
            "parent_died",
            died_on,
        )
        assert flag["reason"]["label_ja"] == "親亡き後（親の死亡）"

        # Her part ends (died); the case goes on for her son.
        read = await houkatsu.get(f"/cases/{case_id}")
        ended = await houkatsu.post(
            f"/cases/{case_id}/member-closings",
            json={"member_ids": [mother], "reason": "died", "ended_on": died_on},
            headers={"If-Match": read.headers["ETag"]},
        )
        view = json_of(ended, 200)
        assert ended.headers["ETag"] == f'"{view["version"]}"'
        assert view["status"] == "open"
        assert [(m["member_id"], m["reason"]["value"]) for m in view["ended_members"]] == [
            (mother, "died")
        ]
        stale = await houkatsu.post(
            f"/cases/{case_id}/closing",
            json={"reason": "handed_to_community", "closed_on": died_on},
            headers={"If-Match": read.headers["ETag"]},
        )
        assert stale.status_code == 412, stale.text
        last = await houkatsu.post(
            f"/cases/{case_id}/member-closings",
            json={"member_ids": [son], "reason": "goals_met", "ended_on": died_on},
        )
        assert (
            last.status_code == 422 and last.json()["error"]["fields"][0]["field"] == "member_ids"
        )

        # Closed: handed over to community connections (見守り); then reopened.
        closed = json_of(
            await houkatsu.post(
                f"/cases/{case_id}/closing",
                json={"reason": "handed_to_community", "closed_on": today().isoformat()},
            ),
            200,
        )
        assert closed["status"] == "closed"
        assert closed["closed"]["reason"]["value"] == "handed_to_community"
        listed = json_of(await city.get("/cases", params={"status": "closed"}), 200)
        assert [c["case_id"] for c in listed] == [case_id]
        again = await houkatsu.post(
            f"/cases/{case_id}/closing",
            json={"reason": "goals_met", "closed_on": today().isoformat()},
        )
        assert again.status_code == 409 and again.json()["error"]["code"] == "case_already_closed"
        reopened = json_of(
            await houkatsu.post(f"/cases/{case_id}/reopening", json={"reason": "息子から再相談"}),
            200,
        )
        assert (reopened["status"], reopened["closed"]) == ("open", None)

        # A community issue seen in this case: 201, and the topic names no one.
        raised = json_of(
            await city.post(
                "/community-issues",
                json={
                    "area": "常盤平地区",
                    "theme": "親亡き後に孤立する50代男性",
                    "description": "親の死後、50代の男性が日中に行ける場所がない。",
                    "concerns": ["isolation", "withdrawal"],
                    "case_ids": [case_id],
                },
            ),
            201,
        )
        assert raised["cases_seen"] == "1-4" and raised["raised_by"] == CITY
        refused = await city.post(
            "/community-issues",
            json={
                "area": "常盤平地区",
                "theme": "見守り",
                "description": f"世帯 {hid} のように",
                "case_ids": [case_id],
            },
        )
        assert (
            refused.status_code == 422
            and refused.json()["error"]["fields"][0]["field"] == "description"
        )

        topic = events_topic("coordination", system.topic_prefix)
        lifecycle = ("CaseReviewFlagged", "MemberSupportEnded", "CaseClosed", "CaseReopened")
        records = await read_topic_with(
            kafka_bootstrap, topic, {"IssueRaised": 1} | dict.fromkeys(lifecycle, 1)
        )
        issues = [r for r in records if (header(r, "ce_type") or "").endswith("IssueRaised")]
        assert len(issues) == 1
        (message,) = issues
        assert json.loads(message.value)["issue_id"] == raised["issue_id"]
        wire = b"\n".join(
            [message.value or b"", message.key or b""] + [v for _, v in message.headers]
        )
        text = wire.decode(errors="replace")
        cited = [case_id, hid, mother, son, h.consultation_id, "松戸", "ハル", "一郎"]
        for personal in cited:
            assert personal not in text, personal
        types = [header(r, "ce_type") or "" for r in records]
        for expected in lifecycle:
            assert any(t.endswith(expected) for t in types), expected
