"""What a request may contain, as a caller meets it over HTTP: unknown fields, blank
names, too long lists and texts, repeated list values, members of another household.
Each refusal is a 422 naming the field, in English and Japanese.

SQLite only: these rules live in the platform's request models and the domain, the
same on both databases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import json_of, running_system

CONSULTATION = {
    "window": "welfare_general",
    "channel": "visit",
    "concerns": ["isolation"],
    "summary": "話し相手がいない",
}


def refused(response: httpx.Response, field: str) -> dict[str, Any]:
    """The 422 naming ``field``; returns that field's problem."""
    assert response.status_code == 422, f"{response.status_code}: {response.text}"
    err = response.json()["error"]
    assert err["message"] and err["message_ja"], err
    named = {f["field"]: f for f in err["fields"]}
    assert field in named, err
    problem: dict[str, Any] = named[field]
    assert problem["problem"] and problem["problem_ja"], problem
    return problem


async def test_what_a_request_may_contain(tmp_path: Path, kafka_bootstrap: list[str]) -> None:
    async with running_system("sqlite", tmp_path, PG_URL, kafka_bootstrap) as system:
        a = system.client("intake", "agency-a", "staff-a", Role.STAFF)

        # A typo is not dropped in silence: the unknown field is named.
        typo = {**CONSULTATION, "sumary": "話し相手がいない"}
        problem = refused(await a.post("/consultations", json=typo), "sumary")
        assert "not a known field" in problem["problem"]
        assert "綴り" in problem["problem_ja"]
        nested = {"members": [{"name": "甲", "birth_day": "1950-01-01"}]}
        refused(await a.post("/households", json=nested), "members[0].birth_day")
        # Bodies that are optional refuse unknown fields as well.
        c = json_of(await a.post("/consultations", json=CONSULTATION), 201)
        handled = await a.post(f"/consultations/{c['consultation_id']}/handled", json={"nte": "x"})
        refused(handled, "nte")

        # Blank names (spaces, tabs, the ideographic space) are no names.
        for blank in (" ", "\t", "\u3000\u3000", " \u3000 "):
            answer = await a.post("/households", json={"members": [{"name": blank}]})
            assert refused(answer, "members[0].name")["problem_ja"] == "空白だけは指定できません"
        refused(
            await a.post("/consultations", json={**CONSULTATION, "summary": "\u3000"}), "summary"
        )
        refused(
            await a.post("/consultations", json={**CONSULTATION, "caller_name": " "}),
            "caller_name",
        )
        # A name is kept byte for byte: nothing is trimmed.
        spaced = "\u3000山田\u3000花子 "
        household = json_of(
            await a.post(
                "/households",
                json={
                    "members": [
                        {"name": spaced, "birth_date": "1950-01-01"},
                        {"name": "山田 一郎", "attributes": ["withdrawn", "withdrawn"]},
                    ]
                },
            ),
            201,
        )
        hid = household["household_id"]
        mother, son = (m["member_id"] for m in household["members"])
        assert household["members"][0]["name"] == spaced
        # Repeated values are collapsed, first-seen order kept.
        assert [x["value"] for x in household["members"][1]["attributes"]] == ["withdrawn"]

        # Texts and lists have maximum lengths.
        refused(
            await a.post("/households", json={"members": [{"name": "あ" * 201}]}), "members[0].name"
        )
        refused(
            await a.post("/consultations", json={**CONSULTATION, "summary": "あ" * 20_001}),
            "summary",
        )
        refused(
            await a.post("/households", json={"members": [{"name": f"人{i}"} for i in range(31)]}),
            "members",
        )
        many = {**CONSULTATION, "household_id": hid, "member_ids": [f"m{i}" for i in range(31)]}
        refused(await a.post("/consultations", json=many), "member_ids")
        refused(
            await a.post(
                f"/households/{hid}/consents",
                json={
                    "member_id": mother,
                    "agencies": [f"agency-{i}" for i in range(201)],
                    "purposes": ["information_sharing"],
                },
            ),
            "agencies",
        )

        repeated = {
            **CONSULTATION,
            "household_id": hid,
            "member_ids": [son, mother, son],
            "concerns": ["withdrawal", "care", "withdrawal"],
        }
        received = json_of(await a.post("/consultations", json=repeated), 201)
        assert received["member_ids"] == [son, mother]
        assert [x["value"] for x in received["concerns"]] == ["withdrawal", "care"]
        consent = json_of(
            await a.post(
                f"/households/{hid}/consents",
                json={
                    "member_id": mother,
                    "agencies": ["agency-z", "agency-b", "agency-z"],
                    "purposes": ["information_sharing", "information_sharing"],
                },
            ),
            201,
        )
        assert consent["agencies"] == ["agency-z", "agency-b"]
        assert [p["value"] for p in consent["purposes"]] == ["information_sharing"]

        # A member id must belong to the household, wherever one is given.
        other = json_of(await a.post("/households", json={"members": [{"name": "別世帯"}]}), 201)
        stranger = other["members"][0]["member_id"]
        wrong = {**CONSULTATION, "household_id": hid, "member_ids": [stranger]}
        refused(await a.post("/consultations", json=wrong), "member_ids")
        outreach = {"concerns": ["withdrawal"], "reason": "見守り"}
        refused(
            await a.post(
                "/outreach", json={**outreach, "household_id": hid, "member_id": stranger}
            ),
            "member_id",
        )
        refused(await a.post("/outreach", json={**outreach, "member_id": son}), "member_id")
        started = json_of(
            await a.post("/outreach", json={**outreach, "household_id": hid, "member_id": son}),
            201,
        )
        assert started["member_id"] == son
        refused(
            await a.post(
                f"/households/{hid}/consents",
                json={"member_id": stranger, "agencies": ["b"], "purposes": ["referral"]},
            ),
            "member_id",
        )
        refused(
            await a.post(
                f"/households/{hid}/proxies",
                json={"member_id": mother, "kind": "family", "proxy_member_id": stranger},
            ),
            "proxy_member_id",
        )
