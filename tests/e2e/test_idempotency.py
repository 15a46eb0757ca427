"""Idempotency-Key over real HTTP, as an agency's system retries a POST it heard no
answer to: the retry gets the first answer and records nothing twice; the same key
with another body is refused; concurrent duplicates do not both run. SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import System, json_of, running_system

CONSULTATION = {
    "window": "community_general_support_center",
    "channel": "phone",
    "concerns": ["isolation"],
    "summary": "一人暮らしの高齢者、近所付き合いがない",
}


async def received(system: System) -> int:
    """ConsultationReceived events intake stored (every committed one, whatever the
    relay's read horizon: another session's open transaction must not hide them)."""
    log = await system.services["intake"].runtime.store.read_positions(0, limit=10_000)
    return sum(1 for e in log if e.event_type == "ConsultationReceived")


async def test_a_post_retried_with_its_idempotency_key_records_once(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        window = system.client("intake", "houkatsu-matsudo-1", "staff-ito", Role.STAFF)
        key = {"Idempotency-Key": str(uuid.uuid4())}

        first = await window.post("/consultations", json=CONSULTATION, headers=key)
        retry = await window.post("/consultations", json=CONSULTATION, headers=key)
        assert first.status_code == retry.status_code == 201, retry.text
        assert retry.json() == first.json()
        assert retry.headers.get("idempotency-replayed") == "true"
        assert await received(system) == 1

        # The same key with another body: refused, naming the header; nothing recorded.
        other = await window.post(
            "/consultations", json={**CONSULTATION, "summary": "別の相談"}, headers=key
        )
        assert other.status_code == 422, other.text
        error = other.json()["error"]
        assert error["code"] == "idempotency_key_reused"
        assert [f["field"] for f in error["fields"]] == ["Idempotency-Key"]
        assert await received(system) == 1

        # Keys are per agency: another agency's same key is its own request.
        elsewhere = system.client("intake", "shakyo-matsudo", "staff-sato", Role.STAFF)
        theirs = json_of(
            await elsewhere.post("/consultations", json=CONSULTATION, headers=key), 201
        )
        assert theirs["consultation_id"] != first.json()["consultation_id"]
        assert await received(system) == 2

        # Without a key every POST is a new request.
        for _ in range(2):
            json_of(await window.post("/consultations", json=CONSULTATION), 201)
        assert await received(system) == 4

        # Concurrent duplicates: one runs; the others get its answer or are told to retry.
        key = {"Idempotency-Key": str(uuid.uuid4())}
        answers = await asyncio.gather(
            *(window.post("/consultations", json=CONSULTATION, headers=key) for _ in range(8))
        )
        assert sorted({a.status_code for a in answers}) in ([201], [201, 409]), [
            (a.status_code, a.text) for a in answers
        ]
        assert len({a.json()["consultation_id"] for a in answers if a.status_code == 201}) == 1
        assert await received(system) == 5
        late = json_of(await window.post("/consultations", json=CONSULTATION, headers=key), 201)
        assert late == next(a.json() for a in answers if a.status_code == 201)

        # A malformed key is refused before anything runs.
        bad = await window.post(
            "/consultations", json=CONSULTATION, headers={"Idempotency-Key": "a b"}
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["fields"][0]["field"] == "Idempotency-Key"

        # Documented on every POST.
        spec = json_of(await window.get("/openapi.json"), 200)
        params = spec["paths"]["/consultations"]["post"]["parameters"]
        assert "Idempotency-Key" in [p["name"] for p in params]
