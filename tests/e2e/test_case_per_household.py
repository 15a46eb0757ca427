"""One open case per household, through HTTP and the broker: a second escalation of
the household joins its open case; a coordinator's direct opening is refused while one
is open, and a later escalation joins a directly opened case; the main coordinating
agency and the members concerned are changed with If-Match."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import eventually, json_of, running_system

HOUKATSU = "houkatsu-one-case"
CENTER = "hikikomori-one-case"
CITY = "city-one-case"


async def test_one_open_case_per_household(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        houkatsu = system.client("intake", HOUKATSU, "staff-ito", Role.STAFF)
        center = system.client("intake", CENTER, "staff-kato", Role.STAFF)
        coordinator = system.client("coordination", CITY, "coord-ono", Role.COORDINATOR)
        center_reader = system.client("coordination", CENTER, "staff-kato", Role.STAFF)

        async def register(*names: str) -> dict[str, Any]:
            members = [{"name": n} for n in names]
            body = {"members": members, "proceed_despite_duplicates": True}
            registered: dict[str, Any] = json_of(await houkatsu.post("/households", json=body), 201)
            return registered

        async def escalate(client: Any, household_id: str, concerns: list[str]) -> str:
            consultation = json_of(
                await client.post(
                    "/consultations",
                    json={
                        "household_id": household_id,
                        "window": "welfare_general",
                        "channel": "visit",
                        "concerns": concerns,
                        "summary": "母の物忘れと息子のひきこもり",
                        "complex": True,
                        "escalation_reason": "8050",
                    },
                ),
                201,
            )
            return str(consultation["consultation_id"])

        async def open_cases(household_id: str) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = json_of(
                await coordinator.get(
                    "/cases", params={"household_id": household_id, "status": "open"}
                ),
                200,
            )
            return found

        household = await register("松戸 ハル", "松戸 一郎")
        hid = household["household_id"]
        mother, son = (m["member_id"] for m in household["members"])

        # The first escalation opens the case; the second joins it.
        first = await escalate(houkatsu, hid, ["care"])
        (case,) = await eventually(lambda: open_cases(hid))
        second = await escalate(center, hid, ["withdrawal"])

        async def both() -> dict[str, Any] | None:
            (only,) = await open_cases(hid)
            return only if len(only["consultations"]) == 2 else None

        case = await eventually(both)
        assert [c["consultation_id"] for c in case["consultations"]] == [first, second]
        assert [c["escalated_by"] for c in case["consultations"]] == [HOUKATSU, CENTER]
        assert case["main_agency"] == HOUKATSU and case["member_ids"] == []
        case_id = case["case_id"]
        # The second agency reads the case its consultation joined.
        json_of(await center_reader.get(f"/cases/{case_id}"), 200)

        # A direct opening while it is open: 409 naming it.
        direct = {
            "household_id": hid,
            "main_agency": CENTER,
            "member_ids": [son],
            "concerns": ["withdrawal"],
            "reason": "民生委員から",
        }
        refused = json_of(await coordinator.post("/cases", json=direct), 409)
        assert refused["error"]["code"] == "case_already_open"
        assert case_id in refused["error"]["message"]
        # Only a coordinator opens a case directly.
        staff = system.client("coordination", CENTER, "staff-kato", Role.STAFF)
        json_of(await staff.post("/cases", json=direct), 403)

        # The main agency and the members concerned, with If-Match.
        current = await coordinator.get(f"/cases/{case_id}")
        etag = current.headers["etag"]
        changed = await coordinator.put(
            f"/cases/{case_id}/main-agency",
            json={"main_agency": CENTER, "reason": "息子の支援が中心"},
            headers={"If-Match": etag},
        )
        assert json_of(changed, 200)["main_agency"] == CENTER
        assert changed.headers["etag"] != etag
        stale = await coordinator.put(
            f"/cases/{case_id}/members", json={"member_ids": [son]}, headers={"If-Match": etag}
        )
        json_of(stale, 412)
        members = await coordinator.put(
            f"/cases/{case_id}/members",
            json={"member_ids": [son, mother]},
            headers={"If-Match": changed.headers["etag"]},
        )
        assert sorted(json_of(members, 200)["member_ids"]) == sorted([son, mother])
        outsider = await coordinator.put(
            f"/cases/{case_id}/members", json={"member_ids": ["no-such-member"]}
        )
        assert json_of(outsider, 422)["error"]["fields"][0]["field"] == "member_ids"

        # Another household: opened directly, then an escalation joins that case.
        other = await register("柏 太郎")
        oid = other["household_id"]
        body = {**direct, "household_id": oid, "member_ids": []}

        async def opened() -> dict[str, Any] | None:
            # The household directory reaches coordination through the broker.
            response = await coordinator.post("/cases", json=body)
            if response.status_code == 422:
                return None
            result: dict[str, Any] = json_of(response, 201)
            return result

        direct_case = await eventually(opened)
        assert direct_case["consultation_id"] is None and direct_case["opened_by"] == CITY
        joined = await escalate(houkatsu, oid, ["hardship"])

        async def joined_case() -> dict[str, Any] | None:
            (only,) = await open_cases(oid)
            return only if only["consultations"] else None

        found = await eventually(joined_case)
        assert found["case_id"] == direct_case["case_id"]
        assert [c["consultation_id"] for c in found["consultations"]] == [joined]

        # Two coordinators opening a case for one household at the same moment: one case.
        third = await register("流山 花子")
        tid = third["household_id"]

        async def known() -> bool:
            # Not one of its members: 422 naming household_id until the directory knows it.
            probe = {**body, "household_id": tid, "member_ids": ["not-a-member"]}
            answer = json_of(await coordinator.post("/cases", json=probe), 422)
            return bool(answer["error"]["fields"][0]["field"] == "member_ids")

        await eventually(known)
        racing = {**body, "household_id": tid}
        answers = await asyncio.gather(
            coordinator.post("/cases", json=racing), coordinator.post("/cases", json=racing)
        )
        assert sorted(a.status_code for a in answers) == [201, 409]
        assert len(await open_cases(tid)) == 1
