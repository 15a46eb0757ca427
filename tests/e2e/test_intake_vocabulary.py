"""The programme's own words, end to end (real HTTP, the embedded broker, SQLite and
PostgreSQL): a social welfare council (CSW) with a まちの保健室, an 8050 household whose
son's consultation ends in accompaniment (伴走継続), a consultation that goes to
outreach (アウトリーチへ) and is linked both ways, a resident's 気づき taken up at the
council's own kind of window, unmet-need types, and the monthly figures as JSON and as
a CSV download for Excel.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from kyosei_events.catalogue.community import ConcernNoticed
from kyosei_platform.application import today
from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import System, eventually, json_of, running_system
from tests.e2e.test_intake_scenarios import assert_rebuild_matches, register

SHAKYO = "shakyo-nabari"  # 社会福祉協議会 (CSW)
HOUKATSU = "houkatsu-nabari-minami"  # 地域包括支援センター


def client(system: System, agency: str, role: Role = Role.STAFF) -> httpx.AsyncClient:
    return system.client("intake", agency, f"{role.value}-of-{agency}", role)


def by_measure(rows: list[dict[str, Any]], agency: str, measure: str) -> dict[str, int]:
    """An agency's counts of one measure, over all its windows and places."""
    out: dict[str, int] = {}
    for r in rows:
        if r["agency_id"] == agency and r["measure"]["value"] == measure:
            out[r["item"]["value"]] = out.get(r["item"]["value"], 0) + r["count"]
    return out


async def test_accompaniment_outreach_and_the_monthly_figures(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        csw, houkatsu = client(system, SHAKYO), client(system, HOUKATSU)
        coordinator = client(system, "fukushi-madoguchi", Role.COORDINATOR)
        auditor = client(system, "kansa", Role.AUDITOR)
        operator = client(system, "ops", Role.OPERATOR)

        # The council records its kind of window and registers its まちの保健室.
        agency = json_of(
            await csw.put(f"/agencies/{SHAKYO}/window", json={"window": "social_welfare_council"}),
            200,
        )
        assert agency["window"]["label_ja"] == "社会福祉協議会（CSW）"
        agency = json_of(
            await csw.post(
                f"/agencies/{SHAKYO}/places",
                json={"name": "まちの保健室 桔梗が丘", "kind": "neighbourhood_health_room"},
            ),
            201,
        )
        (place,) = agency["places"]
        assert place["kind"]["label_ja"] == "まちの保健室"
        # Only the agency itself registers its places; a place is not an agency's window.
        refused = await houkatsu.post(
            f"/agencies/{SHAKYO}/places",
            json={"name": "地域の縁側 南", "kind": "community_veranda"},
        )
        assert refused.status_code == 403, refused.text
        wrong = await csw.put(f"/agencies/{SHAKYO}/window", json={"window": "community_place"})
        assert wrong.status_code == 422 and wrong.json()["error"]["fields"], wrong.text

        household = await register(
            csw,
            address="三重県名張市桔梗が丘1番町2-3",
            members=[
                {"name": "名張 トメ", "birth_date": "1943-02-11", "relationship": "head"},
                {"name": "名張 健二", "birth_date": "1971-09-30", "relationship": "child"},
            ],
        )
        hid = household["household_id"]
        son = next(m["member_id"] for m in household["members"] if m["name"] == "名張 健二")

        # The mother drops in at the まちの保健室 about her son: an 8050 household.
        received = {
            "household_id": hid,
            "member_ids": [son],
            "window": "community_place",
            "channel": "drop_in",
            "concerns": ["eighty_fifty", "withdrawal"],
            "unmet_needs": ["complex_household", "cannot_seek_help"],
            "summary": "息子が30年ひきこもり。自分が死んだ後が心配と母。",
        }
        missing_place = await csw.post("/consultations", json=received)
        assert missing_place.status_code == 422, missing_place.text
        assert "place_id" in str(missing_place.json()["error"]["fields"])
        consultation = json_of(
            await csw.post("/consultations", json=received | {"place_id": place["place_id"]}),
            201,
        )
        cid = consultation["consultation_id"]
        assert consultation["window"]["label_ja"] == "地域の相談の場"
        assert consultation["channel"]["label_ja"] == "地域の相談の場への立ち寄り"
        assert [c["label_ja"] for c in consultation["concerns"]] == ["8050", "ひきこもり"]
        assert [n["label_ja"] for n in consultation["unmet_needs"]] == [
            "世帯の複合課題",
            "自ら相談できない",
        ]

        # 伴走継続: open by design, reviewed on a date, never unresolved.
        past = await csw.post(
            f"/consultations/{cid}/accompaniment",
            json={"review_on": (today() - timedelta(days=1)).isoformat()},
        )
        assert past.status_code == 422 and "review_on" in past.text, past.text
        accompanying = json_of(
            await csw.post(
                f"/consultations/{cid}/accompaniment",
                json={"review_on": today().isoformat(), "note": "月1回、母の来所時に様子を聞く"},
            ),
            200,
        )
        assert accompanying["status"] == "accompanying"
        assert accompanying["review_on"] == today().isoformat()
        unresolved = json_of(await csw.get("/consultations/unresolved?older_than_days=0"), 200)
        assert cid not in {c["consultation_id"] for c in unresolved}
        due = json_of(await csw.get("/consultations/reviews-due"), 200)
        assert [c["consultation_id"] for c in due] == [cid]
        assert json_of(await houkatsu.get("/consultations/reviews-due"), 200) == []
        inbox = json_of(await csw.get("/inbox"), 200)
        assert [c["consultation_id"] for c in inbox["accompaniment_reviews_due"]] == [cid]
        again = await csw.post(f"/consultations/{cid}/information", json={})
        assert again.status_code == 409, again.text
        next_review = (today() + timedelta(days=30)).isoformat()
        reviewed = json_of(
            await csw.post(
                f"/consultations/{cid}/accompaniment/review",
                json={"next_review_on": next_review, "note": "息子と玄関先で話せた"},
            ),
            200,
        )
        assert reviewed["review_on"] == next_review and reviewed["status"] == "accompanying"
        assert json_of(await csw.get("/consultations/reviews-due"), 200) == []

        # The eldest daughter brings her father's case; information was enough.
        brought = {
            "window": "social_welfare_council",
            "channel": "brought_by_agency",
            "concerns": ["advocacy_guardianship"],
            "summary": "父の金銭管理が心配。成年後見の手続きを知りたい。",
        }
        no_agency = await csw.post("/consultations", json=brought)
        assert no_agency.status_code == 422 and "brought_by_agency" in no_agency.text
        advice = json_of(
            await csw.post(
                "/consultations",
                json=brought
                | {
                    "channel": "brought_by_family",
                    "brought_by": "長女",
                    "received_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
                },
            ),
            201,
        )
        assert advice["channel"]["label_ja"] == "家族がつないだ"
        assert advice["brought_by"] == "長女"
        recorded = json_of(
            await csw.put(
                f"/consultations/{advice['consultation_id']}/unmet-needs",
                json={"unmet_needs": ["between_programmes"]},
            ),
            200,
        )
        assert [n["label_ja"] for n in recorded["unmet_needs"]] == ["制度の狭間"]
        informed = json_of(
            await csw.post(
                f"/consultations/{advice['consultation_id']}/information",
                json={"note": "日常生活自立支援事業を案内"},
            ),
            200,
        )
        assert informed["status"] == "information_given"

        # A neighbour asks about a man nobody has seen: the consultation goes to outreach.
        hoarded = json_of(
            await houkatsu.post(
                "/consultations",
                json={
                    "window": "community_general_support_center",
                    "channel": "brought_by_neighbour",
                    "brought_by": "隣家の方",
                    "concerns": ["self_neglect", "hoarding"],
                    "summary": "隣の男性の家の前にごみ。郵便物がたまっている。",
                },
            ),
            201,
        )
        hoarded_id = hoarded["consultation_id"]
        outreach_started = json_of(
            await houkatsu.post(
                f"/consultations/{hoarded_id}/outreach", json={"location": "名張市夏見1-1"}
            ),
            201,
        )
        oid = outreach_started["outreach_id"]
        assert outreach_started["status"] == "outreach" and oid
        outreach = json_of(await houkatsu.get(f"/outreach/{oid}"), 200)
        assert outreach["consultation_id"] == hoarded_id
        assert outreach["origin"]["label_ja"] == "相談から"
        assert [c["value"] for c in outreach["concerns"]] == ["self_neglect", "hoarding"]
        assert outreach["location"] == "名張市夏見1-1"
        twice = await houkatsu.post(f"/consultations/{hoarded_id}/outreach", json={})
        assert twice.status_code == 409, twice.text
        not_theirs = await csw.post(f"/consultations/{hoarded_id}/outreach", json={})
        assert not_theirs.status_code == 404, not_theirs.text

        # A resident's 気づき forwarded to the council is received at its kind of window.
        await system.publish(
            "community",
            ConcernNoticed(
                concern_id="kizuki-nabari-7",
                noticed_by="neighbour",
                reporter_link="anonymous",
                concerns=["young_carer"],
                description="中学生の子が祖母の介護で学校を休みがちと本人が話した。",
                person_asked_for_help=True,
                forward_to=SHAKYO,
                noticed_at=datetime.now(UTC),
            ),
        )

        async def from_report() -> list[Any] | None:
            rows = json_of(await csw.get("/consultations"), 200)
            return [r for r in rows if r["channel"]["value"] == "community"] or None

        (noticed,) = await eventually(from_report)
        assert noticed["window"]["label_ja"] == "社会福祉協議会（CSW）"
        assert [c["label_ja"] for c in noticed["concerns"]] == ["ヤングケアラー"]

        # The outcome report: accompaniment counted as such, nothing unresolved.
        counts = {
            r["agency_id"]: r
            for r in json_of(await coordinator.get("/consultations/outcomes"), 200)
        }
        assert counts[SHAKYO]["accompanying"] == 1 and counts[SHAKYO]["information_given"] == 1
        assert counts[SHAKYO]["unresolved"] == 0 and counts[HOUKATSU]["outreach"] == 1

        # The monthly figures: coordinators and auditors all agencies, staff their own.
        month = today().strftime("%Y-%m")
        rows = json_of(
            await coordinator.get(f"/consultations/figures?month_from={month}&month_to={month}"),
            200,
        )
        assert {r["month"] for r in rows} == {month}
        assert by_measure(rows, SHAKYO, "received") == {"received": 3}
        assert by_measure(rows, SHAKYO, "outcome") == {
            "pending": 1,
            "information_given": 1,
            "accompanying": 1,
        }
        assert by_measure(rows, SHAKYO, "unmet_need") == {
            "complex_household": 1,
            "between_programmes": 1,
            "cannot_seek_help": 1,
            "none": 1,
        }
        assert by_measure(rows, HOUKATSU, "channel") == {"brought_by_neighbour": 1}
        assert by_measure(rows, HOUKATSU, "outcome") == {"outreach": 1}
        at_place = [r for r in rows if r["place_id"] == place["place_id"]]
        assert at_place and {r["place_name"] for r in at_place} == {"まちの保健室 桔梗が丘"}
        assert {r["window"]["label_ja"] for r in at_place} == {"地域の相談の場"}
        assert json_of(await auditor.get("/consultations/figures"), 200) == rows
        own = json_of(await houkatsu.get("/consultations/figures"), 200)
        assert own and {r["agency_id"] for r in own} == {HOUKATSU}
        other = await houkatsu.get(f"/consultations/figures?agency_id={SHAKYO}")
        assert other.status_code == 403, other.text
        assert (await operator.get("/consultations/figures")).status_code == 403
        bad_month = await coordinator.get("/consultations/figures?month_from=2026-13")
        assert bad_month.status_code == 422 and "month_from" in bad_month.text

        # The same figures as a CSV download that Excel in Japan opens.
        for response in (
            await coordinator.get(f"/consultations/figures?month_from={month}&format=csv"),
            await coordinator.get(
                f"/consultations/figures?month_from={month}", headers={"Accept": "text/csv"}
            ),
        ):
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/csv")
            assert "attachment" in response.headers["content-disposition"]
            assert response.content.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM"
            table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
            assert table[0] == ["月", "機関", "窓口", "地域の相談の場", "区分", "項目", "件数"]
            assert len(table) == len(rows) + 1
            assert [
                month,
                SHAKYO,
                "地域の相談の場",
                "まちの保健室 桔梗が丘",
                "対応",
                "伴走継続",
                "1",
            ] in (table)
            assert [
                month,
                HOUKATSU,
                "地域包括支援センター",
                "",
                "経路",
                "近隣住民がつないだ",
                "1",
            ] in (table)
            assert "名張" not in response.content.decode("utf-8"), "no personal data"

        await assert_rebuild_matches(system)
