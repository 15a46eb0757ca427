"""A coordination case learns its household when the consultation behind it is linked
to one later (an anonymous call escalated at once, the household registered after),
through HTTP and the broker, and keeps it through a merge of the household's records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import eventually, json_of, running_system

AGENCY = "houkatsu-late-link"


async def test_a_case_learns_its_household_later(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        intake = system.client("intake", AGENCY, "staff", Role.STAFF)
        coordination = system.client("coordination", AGENCY, "coordinator", Role.COORDINATOR)
        # An anonymous call, escalated at once: the case opens without a household.
        consultation = json_of(
            await intake.post(
                "/consultations",
                json={
                    "window": "welfare_general",
                    "channel": "phone",
                    "concerns": ["care", "withdrawal"],
                    "summary": "近所の高齢の母と無職の息子が心配",
                    "complex": True,
                    "escalation_reason": "8050",
                },
            ),
            201,
        )
        cid = consultation["consultation_id"]

        async def case_of_consultation() -> dict[str, Any] | None:
            found = json_of(await coordination.get("/cases", params={"consultation_id": cid}), 200)
            return found[0] if found else None

        case = await eventually(case_of_consultation)
        assert case["household_id"] is None

        # The household is registered later, and the consultation linked to it.
        household = json_of(
            await intake.post("/households", json={"members": [{"name": "後藤 和子"}]}), 201
        )
        hid = household["household_id"]
        json_of(
            await intake.post(f"/consultations/{cid}/household", json={"household_id": hid}), 200
        )

        async def cases_of(household_id: str) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = json_of(
                await coordination.get("/cases", params={"household_id": household_id}), 200
            )
            return found

        (found,) = await eventually(lambda: cases_of(hid))
        assert found["case_id"] == case["case_id"] and found["household_id"] == hid
        assert found["version"] == 2
        detail = json_of(await coordination.get(f"/cases/{case['case_id']}"), 200)
        assert detail["household_id"] == hid

        # A duplicate record of the household merged into another: the case is found
        # from either record's id.
        other = json_of(
            await intake.post(
                "/households",
                json={"members": [{"name": "後藤 一郎"}], "proceed_despite_duplicates": True},
            ),
            201,
        )
        json_of(
            await intake.post(
                f"/households/{other['household_id']}/merge",
                json={"duplicate_household_id": hid, "reason": "同一世帯"},
            ),
            200,
        )
        (merged,) = await eventually(lambda: cases_of(other["household_id"]))
        assert merged["case_id"] == case["case_id"]
        assert [c["case_id"] for c in await cases_of(hid)] == [case["case_id"]]
