"""The walking skeleton, as agencies use it: a window records a complex consultation
(相談受付), intake stores and relays it, coordination opens a case that a
coordinator reads over HTTP. Real HTTP, the real Kafka protocol, SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import eventually, json_of, running_system

EIGHTY_FIFTY = {
    "window": "community_general_support_center",
    "channel": "phone",
    "concerns": ["care", "withdrawal", "hardship"],
    "summary": "母（82歳）に認知症の疑い。息子（54歳）は20年ひきこもり、年金のみの収入。🙏",
    "caller_name": "近所の民生委員 さとう",
    "complex": True,
    "escalation_reason": "介護・ひきこもり・生活困窮が重なる8050世帯",
}


async def test_complex_consultation_becomes_a_coordination_case(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        window = system.client("intake", "houkatsu-matsudo-1", "staff-ito", Role.STAFF)
        coordinator = system.client("coordination", "matsudo-city", "coord-abe", Role.COORDINATOR)

        household = json_of(
            await window.post(
                "/households",
                json={"members": [{"name": "松戸 ハル", "birth_date": "1944-04-01"}]},
            ),
            201,
        )
        hid = household["household_id"]
        created = json_of(
            await window.post("/consultations", json={**EIGHTY_FIFTY, "household_id": hid}), 201
        )
        cid = created["consultation_id"]
        assert created["status"] == "escalated"
        assert created["summary"] == EIGHTY_FIFTY["summary"]  # byte-exact Japanese + emoji
        assert [c["label_ja"] for c in created["concerns"]] == ["介護", "ひきこもり", "生活困窮"]

        async def case() -> dict[str, Any] | None:
            rows = json_of(await coordinator.get("/cases", params={"consultation_id": cid}), 200)
            return rows[0] if rows else None

        opened = await eventually(case)
        assert opened["household_id"] == hid
        assert opened["escalated_by"] == "houkatsu-matsudo-1"
        assert opened["status"] == "open"
        one = json_of(await coordinator.get(f"/cases/{opened['case_id']}"), 200)
        assert one == opened

        # The escalating agency sees its case; an unrelated agency does not.
        escalating = system.client("coordination", "houkatsu-matsudo-1", "staff-ito", Role.STAFF)
        assert json_of(await escalating.get(f"/cases/{opened['case_id']}"), 200)["case_id"]
        stranger = system.client("coordination", "other-agency", "x", Role.STAFF)
        assert (await stranger.get(f"/cases/{opened['case_id']}")).status_code == 404

        # The consultation's history: two hash-chained events, intact.
        intake_store = system.services["intake"].runtime.store
        report = await intake_store.verify_stream(f"consultation-{cid}")
        assert report.ok and report.events == 2
        # Personal data is sealed at rest: the summary is not in the stored row.
        stored = await intake_store.read_stream(f"consultation-{cid}")
        assert "ひきこもり、年金" not in stored[0].payload
        # Causation crosses the bus: the case was caused by the escalation event.
        case_events = await system.services["coordination"].runtime.store.read_stream(
            opened["case_id"]
        )
        assert stored[1].event_id in case_events[0].metadata


async def test_simple_consultation_then_escalation_with_version_check(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        window = system.client("intake", "kodomo-center", "staff-1", Role.STAFF)
        body = {
            **EIGHTY_FIFTY,
            "complex": False,
            "concerns": ["childcare", "care"],
            "window": "child_family_center",
            "summary": "2歳と4歳の子を育てながら、脳梗塞後の父を介護（ダブルケア）",
        }
        created = json_of(await window.post("/consultations", json=body), 201)
        cid = created["consultation_id"]
        assert created["status"] == "pending" and created["version"] == 1

        # A stale If-Match -> 412 naming the current tag, with a message a person can act on.
        stale = await window.post(
            f"/consultations/{cid}/escalation",
            json={"reason": "複合課題"},
            headers={"If-Match": '"0"'},
        )
        assert stale.status_code == 412, stale.text
        assert stale.json()["error"]["code"] == "precondition_failed"
        assert stale.headers["ETag"] == '"1"' and '"1"' in stale.json()["error"]["message"]

        answer = await window.post(
            f"/consultations/{cid}/escalation",
            json={"reason": "複合課題"},
            headers={"If-Match": '"1"'},
        )
        escalated = json_of(answer, 200)
        assert escalated["status"] == "escalated" and escalated["version"] == 2
        assert answer.headers["ETag"] == '"2"'
        again = await window.post(f"/consultations/{cid}/escalation", json={"reason": "x"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_escalated"

        coordinator = system.client("coordination", "city", "c", Role.COORDINATOR)

        async def cases() -> list[Any] | None:
            rows = json_of(await coordinator.get("/cases", params={"consultation_id": cid}), 200)
            return rows or None

        assert len(await eventually(cases)) == 1


async def test_bad_requests_get_clear_4xx(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        url = system.services["intake"].url
        window = system.client("intake", "a", "s", Role.STAFF)
        bad = await window.post("/consultations", json={"window": "nowhere", "concerns": []})
        assert bad.status_code == 422
        err = bad.json()["error"]
        fields = {f["field"]: f for f in err["fields"]}
        assert set(fields) == {"window", "channel", "concerns", "summary"}
        assert fields["summary"]["problem_ja"] == "必須項目です"
        assert "Traceback" not in bad.text

        import httpx

        async with httpx.AsyncClient(base_url=url) as anon:
            assert (await anon.get("/consultations")).status_code == 401
            forged = await anon.get(
                "/consultations", headers={"Authorization": "Bearer abc.def.ghi"}
            )
            assert forged.status_code == 401
            assert forged.json()["error"]["code"] == "token_invalid"
            assert (await anon.get("/health/live")).status_code == 200
            ready = await anon.get("/health/ready")
            assert ready.status_code == 200, ready.text
            metrics = await anon.get("/metrics")
            assert "kyosei_http_request_seconds" in metrics.text

        missing = await window.get("/consultations/does-not-exist")
        assert missing.status_code == 404
        assert missing.json()["error"]["message_ja"]
