"""Each person in the household, through intake's HTTP API and the broker, on SQLite
and PostgreSQL: the 8050 household of DOMAIN.md, registered twice by two agencies.

- 自立相談 registers the son again despite the duplicate warning: the dismissed
  candidate is visible on both records, with who dismissed it and when;
- the two records are merged: the son, in both, is one person with both ids, shown
  once, and his consent given under one id opens a consultation naming the other;
- the mother dies: the picture shows it with the date (親亡き後), a second death is
  refused, and coordination's copy of the household directory receives the event.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from kyosei_households import find
from kyosei_platform.application import today
from tests.conftest import PG_URL
from tests.e2e.harness import eventually, json_of, running_system
from tests.e2e.test_intake_scenarios import (
    HOUKATSU,
    JIRITSU,
    assert_rebuild_matches,
    register,
    staff,
)

SHAKYO = "shakyo-matsudo"  # 社会福祉協議会


async def test_8050_household_members_over_time(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        houkatsu, jiritsu, shakyo = (
            staff(system, HOUKATSU),
            staff(system, JIRITSU),
            staff(system, SHAKYO),
        )
        household = await register(
            houkatsu,
            address="千葉県松戸市本町1丁目2番3号",
            members=[
                {"name": "松戸 ハル", "birth_date": "1944-04-01", "relationship": "head"},
                {"name": "松戸 一郎", "birth_date": "1972-06-15", "relationship": "child"},
            ],
        )
        hid = household["household_id"]
        mother, son = (m["member_id"] for m in household["members"])
        assert household["members"][0]["status"]["alive"] is True
        assert household["dismissed_duplicates"] == [] and household["life_events"] == []

        # 自立相談 registers the son on his own, written another way, despite the warning.
        again = {
            "members": [{"name": "松戸一郎", "birth_date": "1972-06-15", "relationship": "head"}]
        }
        assert (await jiritsu.post("/households", json=again)).status_code == 409
        own = await register(jiritsu, **again, proceed_despite_duplicates=True)
        other = own["household_id"]
        (son_too,) = (m["member_id"] for m in own["members"])
        (dismissed,) = own["dismissed_duplicates"]
        assert dismissed["household_id"] == other and dismissed["other_household_id"] == hid
        assert dismissed["dismissed_by"] == JIRITSU
        assert dismissed["dismissed_by_staff"] == f"staff-of-{JIRITSU}"
        assert dismissed["dismissed_at"] == own["registered_at"]
        seen_by_houkatsu = json_of(await houkatsu.get(f"/households/{hid}"), 200)
        assert seen_by_houkatsu["dismissed_duplicates"] == [dismissed]

        # His consent, on 自立相談's record, names 地域包括 and 社協.
        json_of(
            await jiritsu.post(
                f"/households/{other}/consents",
                json={
                    "member_id": son_too,
                    "agencies": [HOUKATSU, SHAKYO],
                    "purposes": ["information_sharing"],
                },
            ),
            201,
        )
        about_him = json_of(
            await houkatsu.post(
                "/consultations",
                json={
                    "household_id": hid,
                    "member_ids": [son],
                    "window": "community_general_support_center",
                    "channel": "home_visit",
                    "concerns": ["withdrawal"],
                    "summary": "息子は20年ひきこもり",
                },
            ),
            201,
        )["consultation_id"]
        assert (await shakyo.get(f"/consultations/{about_him}")).status_code == 404

        # 地域包括 merges the two records: the son is in both, shown once.
        merged = json_of(
            await houkatsu.post(
                f"/households/{hid}/merge",
                json={"duplicate_household_id": other, "reason": "同じ世帯の二重登録"},
            ),
            200,
        )
        assert merged["records"] == [hid, other]
        assert [m["member_ids"] for m in merged["members"]] == [[mother], [son, son_too]]
        assert merged["members"][1]["consultation_ids"] == [about_him]
        assert merged["dismissed_duplicates"] == [dismissed]
        # ...and his consent under the other id opens the consultation naming this one.
        assert json_of(await shakyo.get(f"/consultations/{about_him}"), 200)["summary"]
        via_consent = json_of(await shakyo.get(f"/households/{other}"), 200)
        assert via_consent["opened_by_consent"] == [son]
        assert len(via_consent["members"]) == 2
        assert [c["consultation_id"] for c in via_consent["consultations"]] == [about_him]

        # The mother dies (親亡き後): the picture shows it with the date.
        died_on = (today() - timedelta(days=2)).isoformat()
        changes = f"/households/{hid}/members/{mother}/changes"
        future = (today() + timedelta(days=1)).isoformat()
        refused = await houkatsu.post(changes, json={"kind": "died", "on": future})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["fields"][0]["field"].endswith("on")
        her = json_of(await houkatsu.post(changes, json={"kind": "died", "on": died_on}), 201)
        assert her["status"]["alive"] is False and her["status"]["deceased_on"] == died_on
        twice = await houkatsu.post(changes, json={"kind": "died"})
        assert twice.status_code == 409, twice.text
        error = twice.json()["error"]
        assert error["code"] == "member_already_deceased" and died_on in error["message"]
        assert "死亡" in error["message_ja"]
        picture = json_of(await houkatsu.get(f"/households/{hid}"), 200)
        assert [(e["member_id"], e["kind"]["value"], e["on"]) for e in picture["life_events"]] == [
            (mother, "MemberDied", died_on)
        ]
        assert picture["life_events"][0]["kind"]["label_ja"] == "世帯員の死亡"
        assert picture["members"][0]["status"]["deceased_on"] == died_on
        assert picture["members"][1]["status"]["alive"] is True
        (history,) = json_of(await houkatsu.get(f"/households/{hid}/members/{mother}/history"), 200)
        assert history["kind"]["value"] == "MemberDied" and history["retracted"] is False

        # Coordination's copy of the directory receives the death and the combined son.
        coordination = system.services["coordination"].runtime

        async def coordination_knows() -> bool:
            async with coordination.engine.connect() as conn:
                known = await find(conn, other)
            return bool(
                known
                and known.people == {mother, son}
                and str(known.status(mother).deceased_on) == died_on
            )

        assert await eventually(coordination_knows)
        await assert_rebuild_matches(system)
