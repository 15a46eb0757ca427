"""Meetings end to end, as agencies use them, over real HTTP and the real Kafka protocol,
on SQLite and PostgreSQL: an 8050 household escalated by 地域包括 becomes a case; the
city convenes a 支援会議 without consent; its record is read by its participants and
auditors only, and is nowhere on the topic; the mother consents; a 重層的支援会議 about
her is held and one item of the 支援会議 is re-shared to it."""

from __future__ import annotations

import json
from pathlib import Path

from kyosei_events import events_topic
from kyosei_platform.auth import Role
from tests.backbone_support import header, read_topic_with
from tests.conftest import PG_URL
from tests.e2e.harness import json_of, running_system
from tests.e2e.households import consents, escalated_8050

CITY = "matsudo-city"  # the convening municipal office (多機関協働)
HOUKATSU = "houkatsu-matsudo-1"  # 地域包括支援センター
WELFARE = "matsudo-welfare"  # 生活保護担当
CLINIC = "hondamachi-clinic"  # the mother's GP: joins once she consents


async def test_a_support_meeting_without_consent_then_a_consented_meeting_with_one_item_re_shared(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        window = system.client("intake", HOUKATSU, "staff-ito", Role.STAFF)
        city = system.client("coordination", CITY, "coord-abe", Role.COORDINATOR)
        houkatsu = system.client("coordination", HOUKATSU, "staff-ito", Role.STAFF)
        welfare = system.client("coordination", WELFARE, "staff-kato", Role.STAFF)
        clinic = system.client("coordination", CLINIC, "dr-honda", Role.STAFF)
        other_city = system.client("coordination", "kashiwa-city", "coord-ono", Role.COORDINATOR)
        auditor = system.client("coordination", "audit-office", "auditor-1", Role.AUDITOR)

        h = await escalated_8050(
            window,
            city,
            summary="母（82）に物忘れ。息子（54）は20年ひきこもり。本人は支援を拒否。",
            escalation_reason="セルフネグレクトの疑い、同意なし",
        )
        hid, mother, case_id = h.household_id, h.mother, h.case_id

        # 支援会議 (社会福祉法106条の6): no one has consented; it is held all the same.
        stage = json_of(await city.get(f"/cases/{case_id}/meetings"), 200)
        assert stage["stage"]["label_ja"] == "支援会議" and stage["consenting_members"] == []
        support = json_of(
            await city.post(
                f"/cases/{case_id}/meetings",
                json={
                    "kind": "confidential",
                    "scheduled_for": "2026-11-26T10:00:00+09:00",
                    "participant_agencies": [HOUKATSU, WELFARE],
                },
            ),
            201,
        )
        sid = support["meeting_id"]
        assert (
            support["kind"]["label_ja"] == "支援会議" and "守秘義務" in support["confidentiality"]
        )
        held = json_of(
            await city.post(
                f"/meetings/{sid}/held",
                json={
                    "held_on": "2026-11-26",
                    "minutes": {
                        "attendees": [
                            {"agency_id": CITY, "name": "阿部"},
                            {"agency_id": HOUKATSU, "name": "伊藤"},
                            {"agency_id": WELFARE, "name": "加藤"},
                        ],
                        "items": [
                            {
                                "item_id": "dementia",
                                "section": "information",
                                "text": "SEALED-A 母に中等度の認知症、服薬できていない",
                            },
                            {
                                "item_id": "debt",
                                "section": "information",
                                "text": "SEALED-B 息子名義の滞納が3か月",
                            },
                            {
                                "item_id": "visit",
                                "section": "next_step",
                                "text": "SEALED-C 地域包括が週1回訪問",
                                "responsible_agency": HOUKATSU,
                                "due_on": "2026-12-03",
                            },
                        ],
                    },
                },
            ),
            200,
        )
        assert held["status"] == "held" and held["consent_obtained"] is False

        # Participants and auditors read the record; others do not.
        for reader in (city, houkatsu, welfare, auditor):
            seen = json_of(await reader.get(f"/meetings/{sid}"), 200)
            assert [i["item_id"] for i in seen["record"]["items"]] == ["dementia", "debt", "visit"]
        assert (await clinic.get(f"/meetings/{sid}")).status_code == 404
        assert (await clinic.get(f"/cases/{case_id}/meetings")).status_code == 404
        from_other_city = json_of(await other_city.get(f"/meetings/{sid}"), 200)
        assert from_other_city["record"] is None and "SEALED" not in json.dumps(from_other_city)
        listed = json_of(await other_city.get("/meetings", params={"case_id": case_id}), 200)
        assert [m["meeting_id"] for m in listed] == [sid] and "SEALED" not in json.dumps(listed)

        # The mother consents, for the city, 地域包括 and her GP.
        stage = await consents(window, city, h, mother, [CITY, HOUKATSU, CLINIC])
        assert stage["consenting_members"] == [mother]
        layered = json_of(
            await city.post(
                f"/cases/{case_id}/meetings",
                json={
                    "kind": "multi_layered",
                    "scheduled_for": "2026-12-03T10:00:00+09:00",
                    "participant_agencies": [HOUKATSU, CLINIC],
                    "member_ids": [mother],
                },
            ),
            201,
        )
        lid = layered["meeting_id"]
        assert json_of(await clinic.get(f"/meetings/{lid}"), 200)["reshared_items"] == []

        # 地域包括 took part in the 支援会議: it re-shares the one item the GP needs.
        json_of(
            await houkatsu.post(
                f"/meetings/{sid}/reshares", json={"to_meeting_id": lid, "item_ids": ["dementia"]}
            ),
            200,
        )
        for_clinic = json_of(await clinic.get(f"/meetings/{lid}"), 200)
        assert [(i["item_id"], i["from_meeting_id"]) for i in for_clinic["reshared_items"]] == [
            ("dementia", sid)
        ]
        text = json.dumps(for_clinic, ensure_ascii=False)
        assert "SEALED-A" in text and "SEALED-B" not in text and "SEALED-C" not in text
        assert (await clinic.get(f"/meetings/{sid}")).status_code == 404

        # On the topic: that the meetings took place, never what they recorded.
        topic = events_topic("coordination", system.topic_prefix)
        records = await read_topic_with(
            kafka_bootstrap, topic, {"SupportMeetingHeld": 1, "MeetingScheduled": 2}
        )
        types = [header(r, "ce_type") or "" for r in records]
        assert sum(t.endswith("SupportMeetingHeld") for t in types) == 1
        assert sum(t.endswith("MeetingScheduled") for t in types) == 2
        assert not any(t.endswith(("MeetingRecorded", "MeetingItemsReshared")) for t in types)
        for r in records:
            assert b"SEALED" not in (r.value or b"")
            assert all(b"SEALED" not in v for _, v in r.headers)
        (fact,) = [
            json.loads(r.value) for r, t in zip(records, types, strict=True) if t.endswith("Held")
        ]
        assert fact == {
            "meeting_id": sid,
            "case_id": case_id,
            "household_id": hid,
            "kind": "confidential",
            "held_on": "2026-11-26",
            "convening_agency": CITY,
            "participant_agencies": [CITY, HOUKATSU, WELFARE],
            "consent_obtained": False,
        }
