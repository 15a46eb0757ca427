"""The households of DOMAIN.md, as agencies' staff work them through intake: real
HTTP, the real Kafka protocol (the embedded broker), SQLite and PostgreSQL.

- an 8050 household: duplicate warnings, search, referral, consent and its withdrawal
- double care: an anonymous call linked later, a declined referral that comes back,
  unresolved intakes and the auditor's outcome report
- a hoarded house reported by a neighbour (community ConcernNoticed) and an outreach
  request from coordination: outreach cases with contact attempts over time
- a foreign family with a young carer: byte-exact Japanese, clear 4xx, escalation
  across the broker; then `kyosei rebuild intake` gives the same read models
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from kyosei_events.catalogue.community import ConcernNoticed
from kyosei_events.catalogue.coordination import OutreachRequested
from kyosei_households.directory import TABLES as DIRECTORY_TABLES
from kyosei_intake.projections import TABLES
from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import System, eventually, json_of, running_system

HOUKATSU = "houkatsu-matsudo-kita"  # 地域包括支援センター
JIRITSU = "jiritsu-matsudo"  # 自立相談支援機関
KODOMO = "kodomo-center-matsudo"  # こども家庭センター


def staff(system: System, agency: str, role: Role = Role.STAFF) -> httpx.AsyncClient:
    return system.client("intake", agency, f"staff-of-{agency}", role)


async def register(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = json_of(await client.post("/households", json=body), 201)
    return result


async def test_8050_household(kind: str, tmp_path: Path, kafka_bootstrap: list[str]) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        houkatsu, jiritsu = staff(system, HOUKATSU), staff(system, JIRITSU)
        stranger = staff(system, "some-other-agency")
        household = await register(
            houkatsu,
            address="千葉県松戸市本町1丁目2番3号",
            phone="047-123-4567",
            members=[
                {
                    "name": "松戸 ハル",
                    "kana": "まつど はる",
                    "birth_date": "1944-04-01",
                    "relationship": "head",
                    "attributes": ["needs_care", "dementia_suspected"],
                },
                {
                    "name": "松戸 一郎",
                    "kana": "マツド イチロウ",
                    "birth_date": "1972-06-15",
                    "relationship": "child",
                    "attributes": ["withdrawn", "hardship"],
                },
            ],
        )
        hid = household["household_id"]
        mother, son = household["members"]
        assert household["access"] == "own" and son["attributes"][0]["label_ja"] == "ひきこもり"

        # 自立相談 is about to register the son again, written another way: warned first.
        again = {
            "address": "松戸市本町１－２－３",
            "members": [{"name": "松戸一郎", "kana": "ﾏﾂﾄﾞ ｲﾁﾛｳ", "birth_date": "1972-06-15"}],
        }
        warned = await jiritsu.post("/households", json=again)
        assert warned.status_code == 409, warned.text
        assert warned.json()["error"]["code"] == "possible_duplicate"
        (candidate,) = warned.json()["candidates"]
        assert candidate["household_id"] == hid and candidate["strength"] == "strong"
        assert {"name", "kana", "birth_date"} <= set(candidate["matched_on"])
        assert candidate["registered_by"] == HOUKATSU

        # Search by part of the kana: the record exists, its names are not shown to
        # an agency that may not read it.
        (found,) = json_of(
            await jiritsu.get("/households/search", params={"kana": "いちろう"}), 200
        )
        assert found["household_id"] == hid and found["access"] == "none"
        assert found["member_names"] is None
        (mine,) = json_of(
            await houkatsu.get("/households/search", params={"address": "本町1-2"}), 200
        )
        assert mine["member_names"] == ["松戸 ハル", "松戸 一郎"]
        assert (await stranger.get(f"/households/{hid}")).status_code == 404

        # 相談受付 at 地域包括, then つなぎ to 自立相談 for the son's livelihood.
        consultation = json_of(
            await houkatsu.post(
                "/consultations",
                json={
                    "household_id": hid,
                    "window": "community_general_support_center",
                    "channel": "home_visit",
                    "concerns": ["care", "withdrawal", "hardship"],
                    "summary": "母（82）に物忘れ。息子（54）は20年ひきこもり、年金のみの収入。",
                },
            ),
            201,
        )
        cid = consultation["consultation_id"]
        referred = json_of(
            await houkatsu.post(
                f"/consultations/{cid}/referrals",
                json={"to_agency": JIRITSU, "concerns": ["hardship"], "note": "家計の相談を"},
            ),
            201,
        )
        assert referred["status"] == "referred"
        rid = referred["referrals"][0]["referral_id"]

        inbox = json_of(await jiritsu.get("/inbox"), 200)
        assert [r["referral_id"] for r in inbox["referrals_to_answer"]] == [rid]
        seen_by_receiver = json_of(await jiritsu.get(f"/referrals/{rid}"), 200)
        assert seen_by_receiver["note"] == "家計の相談を"
        json_of(await jiritsu.post(f"/referrals/{rid}/acceptance"), 200)
        seen_by_sender = json_of(await houkatsu.get(f"/consultations/{cid}"), 200)
        assert seen_by_sender["referrals"][0]["status"] == "accepted"
        # The receiver reads the referred consultation; a stranger does not.
        assert json_of(await jiritsu.get(f"/consultations/{cid}"), 200)["summary"]
        assert (await stranger.get(f"/consultations/{cid}")).status_code == 404

        # A second consultation, about the mother, that 自立相談 has no part in.
        other = json_of(
            await houkatsu.post(
                "/consultations",
                json={
                    "household_id": hid,
                    "member_ids": [mother["member_id"]],
                    "window": "community_general_support_center",
                    "channel": "phone",
                    "concerns": ["care"],
                    "summary": "介護保険の申請について",
                },
            ),
            201,
        )
        json_of(await houkatsu.post(f"/consultations/{other['consultation_id']}/handled"), 200)
        without_consent = json_of(await jiritsu.get(f"/households/{hid}"), 200)
        assert without_consent["access"] == "own"
        assert [c["consultation_id"] for c in without_consent["consultations"]] == [cid]

        # The son consents to sharing with 自立相談: his records open, his mother's do not.
        json_of(
            await houkatsu.post(
                f"/households/{hid}/consents",
                json={
                    "member_id": son["member_id"],
                    "given_by": "person",
                    "agencies": [JIRITSU],
                    "purposes": ["information_sharing", "referral"],
                },
            ),
            201,
        )
        sons_consent = json_of(await jiritsu.get(f"/households/{hid}"), 200)
        assert sons_consent["opened_by_consent"] == [son["member_id"]]
        assert [c["consultation_id"] for c in sons_consent["consultations"]] == [cid]
        assert (await jiritsu.get(f"/consultations/{other['consultation_id']}")).status_code == 404

        # The mother consents too: now every member's records are open.
        consent = json_of(
            await houkatsu.post(
                f"/households/{hid}/consents",
                json={
                    "member_id": mother["member_id"],
                    "given_by": "person",
                    "agencies": [JIRITSU],
                    "purposes": ["information_sharing"],
                },
            ),
            201,
        )
        with_consent = json_of(await jiritsu.get(f"/households/{hid}"), 200)
        assert with_consent["access"] == "full" and len(with_consent["consultations"]) == 2
        assert json_of(await jiritsu.get(f"/consultations/{other['consultation_id']}"), 200)

        # Hers withdrawn: from then on, her records are closed to 自立相談 again.
        withdrawn = json_of(
            await houkatsu.post(
                f"/households/{hid}/consents/{consent['consent_id']}/withdrawal",
                json={"withdrawn_by": "person", "note": "本人の希望"},
            ),
            200,
        )
        assert withdrawn["active"] is False
        after = json_of(await jiritsu.get(f"/households/{hid}"), 200)
        assert after["access"] == "own" and len(after["consultations"]) == 1
        assert (await jiritsu.get(f"/consultations/{other['consultation_id']}")).status_code == 404

        # Escalated to 多機関協働: coordination opens a case over the broker.
        json_of(
            await houkatsu.post(
                f"/consultations/{cid}/escalation", json={"reason": "介護・ひきこもり・困窮"}
            ),
            200,
        )
        coordinator = system.client("coordination", "matsudo-city", "coord", Role.COORDINATOR)

        async def case() -> list[Any] | None:
            rows = json_of(await coordinator.get("/cases", params={"consultation_id": cid}), 200)
            return rows or None

        (opened,) = await eventually(case)
        assert opened["household_id"] == hid

        # Personal data is sealed at rest, in the events and in the search index.
        store = system.services["intake"].runtime.store
        stored = await store.read_stream(f"household-{hid}")
        assert all("松戸" not in r.payload and "1944-04-01" not in r.payload for r in stored)
        assert (await store.verify_stream(f"household-{hid}")).ok

        await assert_rebuild_matches(system)


async def test_double_care(kind: str, tmp_path: Path, kafka_bootstrap: list[str]) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        kodomo, houkatsu = staff(system, KODOMO), staff(system, HOUKATSU)
        houkatsu2 = staff(system, "houkatsu-matsudo-minami")
        auditor = system.client("intake", "city-audit", "auditor-1", Role.AUDITOR)

        # An anonymous phone call: no household yet.
        call = json_of(
            await kodomo.post(
                "/consultations",
                json={
                    "window": "child_family_center",
                    "channel": "phone",
                    "concerns": ["childcare", "care"],
                    "summary": "2歳と4歳の子育て中。脳梗塞後の父の介護も。眠れていない。",
                    "caller_name": "匿名",
                },
            ),
            201,
        )
        cid = call["consultation_id"]
        assert call["household_id"] is None and call["status"] == "pending"

        # She comes in; the household is registered and the call linked to it.
        household = await register(
            kodomo,
            members=[
                {"name": "矢切 さくら", "birth_date": "1991-02-03", "attributes": ["carer"]},
                {"name": "矢切 はると", "age_band": "preschool", "relationship": "child"},
                {"name": "矢切 みお", "age_band": "preschool", "relationship": "child"},
                {
                    "name": "矢切 正",
                    "birth_date": "1950-08-08",
                    "relationship": "parent",
                    "attributes": ["needs_care"],
                },
            ],
        )
        hid = household["household_id"]
        linked = json_of(
            await kodomo.post(f"/consultations/{cid}/household", json={"household_id": hid}), 200
        )
        assert linked["household_id"] == hid

        # つなぎ to 地域包括 for the father: declined, it comes back to こども家庭センター.
        referred = json_of(
            await kodomo.post(
                f"/consultations/{cid}/referrals",
                json={"to_agency": HOUKATSU, "concerns": ["care"]},
            ),
            201,
        )
        rid = referred["referrals"][0]["referral_id"]
        no_reason = await houkatsu.post(f"/referrals/{rid}/decline", json={"reason": "other"})
        assert no_reason.status_code == 422
        assert no_reason.json()["error"]["fields"][0]["field"] == "note"
        declined = json_of(
            await houkatsu.post(
                f"/referrals/{rid}/decline",
                json={"reason": "better_elsewhere", "note": "父の住所は南地区の担当"},
            ),
            200,
        )
        assert declined["decline_reason"]["label_ja"] == "他機関が適切"
        inbox = json_of(await kodomo.get("/inbox"), 200)
        assert [c["consultation_id"] for c in inbox["returned_referrals"]] == [cid]
        assert json_of(await kodomo.get(f"/referrals/{rid}"), 200)["status"] == "declined"

        # Decided again: the 南地区 centre accepts and completes it.
        again = json_of(
            await kodomo.post(
                f"/consultations/{cid}/referrals",
                json={"to_agency": "houkatsu-matsudo-minami", "concerns": ["care"]},
            ),
            201,
        )
        rid2 = next(r["referral_id"] for r in again["referrals"] if r["status"] == "made")
        json_of(await houkatsu2.post(f"/referrals/{rid2}/acceptance"), 200)
        done = json_of(
            await houkatsu2.post(
                f"/referrals/{rid2}/completion", json={"note": "ショートステイ利用開始"}
            ),
            200,
        )
        assert done["status"] == "completed"
        assert json_of(await kodomo.get("/inbox"), 200)["returned_referrals"] == []
        outgoing = json_of(await kodomo.get("/referrals", params={"direction": "outgoing"}), 200)
        assert sorted(r["status"] for r in outgoing) == ["completed", "declined"]

        # A consultation recorded 20 days ago and never decided: unresolved.
        old = json_of(
            await kodomo.post(
                "/consultations",
                json={
                    "household_id": hid,
                    "window": "child_family_center",
                    "channel": "visit",
                    "concerns": ["hardship"],
                    "summary": "保育料の支払いが苦しい",
                    "received_at": (datetime.now(UTC) - timedelta(days=20)).isoformat(),
                },
            ),
            201,
        )
        unresolved = json_of(await kodomo.get("/consultations/unresolved"), 200)
        assert [u["consultation_id"] for u in unresolved] == [old["consultation_id"]]
        assert unresolved[0]["days_without_outcome"] >= 19
        assert json_of(await kodomo.get("/inbox"), 200)["unresolved_intakes"]
        assert json_of(await houkatsu.get("/consultations/unresolved"), 200) == []
        report = json_of(await auditor.get("/consultations/outcomes"), 200)
        (row,) = [r for r in report if r["agency_id"] == KODOMO]
        assert row == {
            "agency_id": KODOMO,
            "received": 2,
            "pending": 1,
            "handled": 0,
            "information_given": 0,
            "accompanying": 0,
            "outreach": 0,
            "referred": 1,
            "escalated": 0,
            "unresolved": 1,
        }
        # Auditors read everything but record nothing.
        assert json_of(await auditor.get(f"/households/{hid}"), 200)["access"] == "full"
        refused = await auditor.post(f"/consultations/{cid}/handled", json={})
        assert refused.status_code == 403


async def test_hoarded_house_reported_by_a_neighbour(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        outreach_team = staff(system, HOUKATSU)
        noticed = ConcernNoticed(
            concern_id="kizuki-2026-0042",
            noticed_by="neighbour",
            reporter_link="anonymous",
            reporter_name="隣の田中",
            reporter_contact="090-0000-0000",
            location="松戸市小金3-4-5",
            concerns=["hoarding", "isolation"],
            description="庭と玄関にごみが積まれ、夏から異臭。住人の男性は声をかけても出てこない。",
            person_asked_for_help=False,
            forward_to=HOUKATSU,
            noticed_at=datetime.now(UTC),
        )
        # Delivered twice (at-least-once): one outreach case.
        await system.publish("community", noticed, noticed)

        async def cases() -> list[Any] | None:
            rows = json_of(await outreach_team.get("/outreach"), 200)
            return rows or None

        (case,) = await eventually(cases)
        assert case["origin"]["label_ja"] == "地域住民の気づき"
        assert case["origin_ref"] == "kizuki-2026-0042"
        oid = case["outreach_id"]
        detail = json_of(await outreach_team.get(f"/outreach/{oid}"), 200)
        assert detail["location"] == "松戸市小金3-4-5"
        assert "田中" not in str(detail), "an anonymous reporter is not linked to the case"
        assert detail["reporter_name"] is None and detail["reporter_contact"] is None

        # Months of visits: not at home, refused, then a word at the door.
        for result, note in (
            ("not_at_home", "ポストにメモを入れた"),
            ("refused", "インターホン越しに「帰ってくれ」"),
            ("talked_at_door", "玄関先で5分。猫の話をした🐈"),
        ):
            detail = json_of(
                await outreach_team.post(
                    f"/outreach/{oid}/contacts",
                    json={"method": "home_visit", "result": result, "note": note},
                ),
                201,
            )
        assert [c["attempt"] for c in detail["contacts"]] == [1, 2, 3]
        assert detail["contacts"][2]["note"] == "玄関先で5分。猫の話をした🐈"
        staged = json_of(
            await outreach_team.post(f"/outreach/{oid}/stage", json={"stage": "first_contact"}),
            200,
        )
        assert staged["stage"]["label_ja"] == "初回接触"
        inbox = json_of(await outreach_team.get("/inbox"), 200)
        assert inbox["outreach"][0]["attempts"] == 3
        # Only the agency running it records on it.
        other = staff(system, JIRITSU)
        assert (await other.get(f"/outreach/{oid}")).status_code == 404

        # Another neighbour whose friend asked for help, and agreed to be called back.
        asked = ConcernNoticed.model_validate(
            noticed.model_dump()
            | {
                "concern_id": "kizuki-2026-0043",
                "reporter_link": "may_contact",
                "reporter_name": "民生委員 佐藤",
                "reporter_contact": "047-000-1111",
                "noticed_by": "welfare_commissioner",
                "concerns": ["isolation", "health"],
                "description": "一人暮らしの女性が、通院の付き添いがなく困っていると本人から。",
                "person_asked_for_help": True,
            }
        )
        named_only = ConcernNoticed.model_validate(
            asked.model_dump() | {"concern_id": "kizuki-2026-0044", "reporter_link": "name_only"}
        )
        await system.publish("community", asked, named_only)

        async def consultations() -> list[Any] | None:
            rows = json_of(await outreach_team.get("/consultations"), 200)
            return rows if len(rows) == 2 else None

        rows = await eventually(consultations)
        by_report = {}
        for row in rows:
            full = json_of(await outreach_team.get(f"/consultations/{row['consultation_id']}"), 200)
            by_report[full["concern_report_id"]] = full
        called_back = by_report["kizuki-2026-0043"]
        assert called_back["channel"]["label_ja"] == "地域住民の気づき"
        assert called_back["caller_name"] == "民生委員 佐藤"
        assert called_back["caller_contact"] == "047-000-1111"
        assert by_report["kizuki-2026-0044"]["caller_name"] == "民生委員 佐藤"
        assert by_report["kizuki-2026-0044"]["caller_contact"] is None

        # Coordination asks for outreach to a case's person: a case at that agency.
        await system.publish(
            "coordination",
            OutreachRequested(
                request_id="req-1",
                case_id="case-xyz",
                outreach_agency=JIRITSU,
                concerns=["withdrawal"],
                reason="10年以上外出していない。母親の入院で生活が心配。",
                requested_at=datetime.now(UTC),
            ),
        )

        async def requested() -> list[Any] | None:
            rows = json_of(await other.get("/outreach"), 200)
            return rows or None

        (from_coordination,) = await eventually(requested)
        assert from_coordination["origin"]["value"] == "coordination"
        assert from_coordination["origin_ref"] == "case-xyz"

        # A reporter who may be called back is named on the outreach case.
        south = staff(system, "houkatsu-matsudo-minami")
        await system.publish(
            "community",
            ConcernNoticed.model_validate(
                noticed.model_dump()
                | {
                    "concern_id": "kizuki-2026-0045",
                    "reporter_link": "may_contact",
                    "forward_to": "houkatsu-matsudo-minami",
                }
            ),
        )

        async def southern() -> list[Any] | None:
            rows = json_of(await south.get("/outreach"), 200)
            return rows or None

        (reported,) = await eventually(southern)
        detail = json_of(await south.get(f"/outreach/{reported['outreach_id']}"), 200)
        assert (detail["reporter_name"], detail["reporter_contact"]) == (
            "隣の田中",
            "090-0000-0000",
        )


async def test_foreign_family_with_a_young_carer(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        kodomo = staff(system, KODOMO)
        # Bad input: a 4xx that names the field, in English and Japanese.
        future = await kodomo.post(
            "/households", json={"members": [{"name": "x", "birth_date": "2999-01-01"}]}
        )
        assert future.status_code == 422
        (problem,) = future.json()["error"]["fields"]
        assert problem["field"] == "members[0].birth_date" and problem["problem_ja"]
        vague = await kodomo.post(
            "/consultations",
            json={
                "window": "child_family_center",
                "channel": "visit",
                "concerns": ["other"],
                "summary": "…",
            },
        )
        assert vague.status_code == 422
        assert vague.json()["error"]["fields"][0]["field"] == "other_concern"
        assert "その他" in vague.json()["error"]["message_ja"]
        unknown = await kodomo.post(
            "/consultations",
            json={
                "household_id": "no-such-household",
                "window": "child_family_center",
                "channel": "visit",
                "concerns": ["health"],
                "summary": "x",
            },
        )
        assert unknown.status_code == 422
        assert unknown.json()["error"]["fields"][0]["field"] == "household_id"

        household = await register(
            kodomo,
            address="松戸市常盤平5-6-7 ﾊｲﾂ常盤平 201号室",
            members=[
                {
                    "name": "NGUYEN VAN AN",
                    "kana": "グエン ヴァン アン",
                    "birth_date": "1988-03-09",
                    "relationship": "head",
                    "attributes": ["foreign_national"],
                    "language": "vi",
                },
                {
                    "name": "TRAN THI BINH",
                    "kana": "チャン ティ ビン",
                    "relationship": "spouse",
                    "attributes": ["foreign_national"],
                    "language": "vi",
                },
                {
                    "name": "グエン ミン",
                    "age_band": "school_age",
                    "relationship": "child",
                    "attributes": ["young_carer", "child"],
                    "language": "ja",
                },
            ],
        )
        hid = household["household_id"]
        assert [m["language"] for m in household["members"]] == ["vi", "vi", "ja"]
        (found,) = json_of(await kodomo.get("/households/search", params={"name": "nguyen"}), 200)
        assert found["household_id"] == hid

        # The clinic's referral: the 13-year-old interprets for the parents.
        summary = (
            "小児科から紹介。長男（13歳）が両親の通訳として受診に付き添い、学校を休みがち。"
            "ﾊﾝｶｸｶﾅ・全角ＡＢＣ・ｱｲｳ・①②・𠮷野家・家族👨‍👩‍👦・\u3000全角空白\n改行も"
        )
        received = json_of(
            await kodomo.post(
                "/consultations",
                json={
                    "household_id": hid,
                    "window": "child_family_center",
                    "channel": "clinic_referral",
                    "concerns": ["foreign_national", "childcare", "health", "other"],
                    "other_concern": "ヤングケアラー（通訳）",
                    "summary": summary,
                    "complex": True,
                    "escalation_reason": "子ども・外国籍・医療・教育が重なる",
                },
            ),
            201,
        )
        cid = received["consultation_id"]
        assert received["summary"] == summary
        read_back = json_of(await kodomo.get(f"/consultations/{cid}"), 200)
        assert read_back["summary"].encode() == summary.encode()
        assert read_back["other_concern"] == "ヤングケアラー（通訳）"

        coordinator = system.client("coordination", "matsudo-city", "coord", Role.COORDINATOR)

        async def case() -> list[Any] | None:
            rows = json_of(await coordinator.get("/cases", params={"consultation_id": cid}), 200)
            return rows or None

        (opened,) = await eventually(case)
        assert opened["household_id"] == hid
        assert [c["label_ja"] for c in opened["concerns"]] == ["外国籍", "子育て", "健康", "その他"]

        # Coordinators read the household once a consultation of it is escalated.
        coord_intake = system.client("intake", "matsudo-city", "coord", Role.COORDINATOR)
        seen = json_of(await coord_intake.get(f"/households/{hid}"), 200)
        assert seen["access"] == "own" and [
            c["consultation_id"] for c in seen["consultations"]
        ] == [cid]

        # A second record of the same family, made before the search found the first.
        duplicate = json_of(
            await kodomo.post(
                "/households",
                json={
                    "members": [{"name": "グエン ミン", "age_band": "school_age"}],
                    "proceed_despite_duplicates": True,
                },
            ),
            201,
        )
        merged = json_of(
            await kodomo.post(
                f"/households/{hid}/merge",
                json={
                    "duplicate_household_id": duplicate["household_id"],
                    "reason": "同じ世帯の長男を別に登録していた",
                },
            ),
            200,
        )
        assert merged["records"] == [hid, duplicate["household_id"]]
        assert len(merged["members"]) == 4
        # The merged id leads to the survivor; it takes no more members.
        followed = json_of(await kodomo.get(f"/households/{duplicate['household_id']}"), 200)
        assert followed["household_id"] == hid
        listed = json_of(
            await kodomo.get("/consultations", params={"household_id": duplicate["household_id"]}),
            200,
        )
        assert [c["consultation_id"] for c in listed] == [cid]

        # Coordination follows the merge through its own household directory: the
        # household's case is found from either record's id.
        async def case_of_duplicate() -> list[Any] | None:
            rows = json_of(
                await coordinator.get("/cases", params={"household_id": duplicate["household_id"]}),
                200,
            )
            return rows or None

        (via_duplicate,) = await eventually(case_of_duplicate)
        assert via_duplicate["case_id"] == opened["case_id"]

        await assert_rebuild_matches(system)


async def assert_rebuild_matches(system: System) -> None:
    """`kyosei rebuild intake`, as an operator runs it, gives the same read models."""
    runtime = system.services["intake"].runtime
    settings = system.services["intake"].settings

    async def snapshot() -> dict[str, list[tuple[Any, ...]]]:
        out = {}
        async with runtime.engine.connect() as conn:
            for table in (*TABLES, *DIRECTORY_TABLES):
                rows = (await conn.execute(select(table))).all()
                out[table.name] = sorted(tuple(r) for r in rows)
        return out

    before = await snapshot()
    assert before["directory_households"] and before["consultations"]
    env = {
        **os.environ,
        "KYOSEI_DATABASE_URL": settings.database_url,
        "KYOSEI_DB_SCHEMA": settings.db_schema or "",
        "KYOSEI_KEYS_DATABASE_URL": settings.keys_database_url,
        "KYOSEI_KEYS_DB_SCHEMA": settings.keys_db_schema or "",
        "KYOSEI_KAFKA_BOOTSTRAP": ",".join(settings.kafka_bootstrap),
        "KYOSEI_MASTER_KEY": settings.master_key,
        "KYOSEI_AUTH_SECRET": settings.auth_secret,
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "kyosei_platform.cli", "rebuild", "intake"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "intake.read_model rebuilt from" in done.stdout
    assert await snapshot() == before
