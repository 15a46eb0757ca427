"""Intake's rules as a caller meets them over HTTP: stale versions, wrong agency,
wrong role, unknown ids, missing terms. Each answer is a 4xx that says what to do.

SQLite only: these rules live in the domain and API layers, which are the same on
both databases; the PostgreSQL store is driven by the scenarios in
test_intake_scenarios.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import System, json_of, running_system

CONSULTATION = {
    "window": "welfare_general",
    "channel": "visit",
    "concerns": ["isolation"],
    "summary": "話し相手がいない",
}


def staff(system: System, agency: str, role: Role = Role.STAFF) -> httpx.AsyncClient:
    return system.client("intake", agency, f"staff-of-{agency}", role)


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    err: dict[str, Any] = response.json()["error"]
    assert err["message"] and err["message_ja"], err
    return err


async def test_intake_rules(tmp_path: Path, kafka_bootstrap: list[str]) -> None:
    async with running_system("sqlite", tmp_path, PG_URL, kafka_bootstrap) as system:
        a, b = staff(system, "agency-a"), staff(system, "agency-b")
        operator = staff(system, "ops", Role.OPERATOR)

        # Operators run the services; they neither read nor record households' matters.
        assert error(await operator.get("/consultations"), 403)["code"] == "forbidden_role"
        assert error(await operator.post("/consultations", json=CONSULTATION), 403)

        c = json_of(await a.post("/consultations", json=CONSULTATION), 201)
        cid = c["consultation_id"]
        # Only the receiving agency decides the outcome.
        assert error(await b.post(f"/consultations/{cid}/handled"), 404)  # b cannot even see it
        # A referral to oneself is not a referral.
        self_ref = error(
            await a.post(f"/consultations/{cid}/referrals", json={"to_agency": "agency-a"}), 422
        )
        assert self_ref["fields"][0]["field"] == "to_agency"
        referred = json_of(
            await a.post(f"/consultations/{cid}/referrals", json={"to_agency": "agency-b"}), 201
        )
        rid = referred["referrals"][0]["referral_id"]
        # The outcome is decided: handling it now is a conflict.
        assert (
            error(await a.post(f"/consultations/{cid}/handled"), 409)["code"]
            == "outcome_already_decided"
        )
        # Only the receiving agency answers a referral.
        assert error(await a.post(f"/referrals/{rid}/acceptance"), 403)["code"] == (
            "not_the_receiving_agency"
        )
        # A stale If-Match is refused (412); the current one is accepted.
        stale = await b.post(f"/referrals/{rid}/acceptance", headers={"If-Match": '"1"'})
        assert error(stale, 412)["code"] == "precondition_failed"
        json_of(await b.post(f"/referrals/{rid}/acceptance", headers={"If-Match": '"2"'}), 200)
        twice = error(await b.post(f"/referrals/{rid}/acceptance"), 409)
        assert twice["code"] == "referral_already_accepted"
        assert twice["message"].startswith("this referral is already accepted; ")
        assert error(await b.get("/referrals/no-such-referral"), 404)
        huge = await b.post(f"/referrals/{rid}/completion", headers={"If-Match": "9" * 30})
        assert error(huge, 422)["fields"][0]["field"] == "If-Match"
        # Completing needs no body (the note is optional).
        assert json_of(await b.post(f"/referrals/{rid}/completion"), 200)["status"] == "completed"
        # Completing it again: the answer says it is already completed, not "accept it".
        done = error(await b.post(f"/referrals/{rid}/completion"), 409)
        assert done["code"] == "referral_already_completed"
        assert done["message"] == "this referral is already completed; nothing more to do"
        assert done["message_ja"].startswith("このつなぎはすでに完了しています")
        late = error(await b.post(f"/referrals/{rid}/decline", json={"reason": "no_capacity"}), 409)
        assert (
            late["code"] == "referral_already_completed" and "cannot be declined" in late["message"]
        )
        # NUL is refused with the field's name, never stored (PostgreSQL cannot).
        nul = await a.post(
            "/consultations", json={**CONSULTATION, "concerns": ["care"], "caller_name": "a\x00"}
        )
        assert error(nul, 422)["fields"][0]["field"] == "caller_name"
        assert error(await a.get("/households/x%00y"), 422)["code"] == "nul_character"
        bad_reason = await b.post(f"/referrals/{rid}/decline", json={"reason": "busy"})
        assert error(bad_reason, 422)["fields"][0]["field"] == "reason"

        # Search needs a term; households of others are not shown, nor merged.
        assert error(await a.get("/households/search"), 422)["fields"][0]["field"] == "name"
        mine = json_of(await a.post("/households", json={"members": [{"name": "甲"}]}), 201)
        theirs = json_of(await b.post("/households", json={"members": [{"name": "乙"}]}), 201)
        assert error(await a.get(f"/households/{theirs['household_id']}"), 404)
        merge = await a.post(
            f"/households/{mine['household_id']}/merge",
            json={"duplicate_household_id": theirs["household_id"], "reason": "同一"},
        )
        assert error(merge, 404)["code"] == "household_not_found"
        itself = await a.post(
            f"/households/{mine['household_id']}/merge",
            json={"duplicate_household_id": mine["household_id"], "reason": "同一"},
        )
        assert error(itself, 422)["fields"][0]["field"] == "duplicate_household_id"
        # Consent belongs to a person, and must name someone to share with.
        consents = f"/households/{mine['household_id']}/consents"
        whose = await a.post(consents, json={"agencies": ["x"], "purposes": ["referral"]})
        assert error(whose, 422)["fields"][0]["field"] == "member_id"
        person = mine["members"][0]["member_id"]
        nobody = await a.post(
            consents, json={"member_id": person, "purposes": ["information_sharing"]}
        )
        assert error(nobody, 422)["fields"][0]["field"] == "agencies"

        # Outreach: recorded by the agency running it only.
        o = json_of(
            await a.post("/outreach", json={"concerns": ["withdrawal"], "reason": "見守り"}), 201
        )
        contact = {"method": "phone", "result": "not_at_home"}
        assert error(await b.post(f"/outreach/{o['outreach_id']}/contacts", json=contact), 404)
        naive = await a.post(
            f"/outreach/{o['outreach_id']}/contacts",
            json={**contact, "contacted_at": "2026-11-24T10:00:00"},
        )
        assert error(naive, 422)["fields"][0]["field"] == "contacted_at"
