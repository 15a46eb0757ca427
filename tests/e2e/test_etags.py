"""Optimistic concurrency over HTTP: every read of one resource and every write to it
answers with its ETag; If-Match with that tag guards a write (412 when someone wrote
since); a write without If-Match that loses a race is run again by the server, so
that none is lost. And every time in every view is written one way (RFC 3339, UTC).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from kyosei_platform.auth import Role
from tests.conftest import PG_URL, require_postgres
from tests.e2e.harness import eventually, json_of, running_system

CONTACT = {"method": "phone", "result": "not_at_home"}
WRITERS = 12
# RFC 3339 with its offset, as every view writes a time: UTC, microseconds.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")


def tagged(response: httpx.Response, status: int) -> tuple[Any, str]:
    """The body and the ETag of an answer; the tag is the body's version, quoted."""
    body = json_of(response, status)
    etag = response.headers["ETag"]
    assert etag == f'"{body["version"]}"', (etag, body.get("version"))
    return body, etag


def times_in(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every ``*_at`` field anywhere in a JSON answer."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k.endswith("_at") and v is not None:
                found.append((f"{path}.{k}", v))
            found += times_in(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += times_in(v, f"{path}.{i}")
    return found


async def test_etag_and_if_match(tmp_path: Path, kafka_bootstrap: list[str]) -> None:
    async with running_system("sqlite", tmp_path, PG_URL, kafka_bootstrap) as system:
        a = system.client("intake", "agency-a", "staff-a", Role.STAFF)
        b = system.client("intake", "agency-b", "staff-b", Role.STAFF)

        registered, etag = tagged(
            await a.post("/households", json={"members": [{"name": "甲野 花子"}]}), 201
        )
        hid = registered["household_id"]
        assert etag == '"2"'  # registered, and its first member added
        assert tagged(await a.get(f"/households/{hid}"), 200)[1] == etag
        members = f"/households/{hid}/members"
        added = await a.post(members, json={"name": "甲野 太郎"}, headers={"If-Match": etag})
        assert json_of(added, 201)["name"] == "甲野 太郎"
        assert added.headers["ETag"] == '"3"'

        # The tag read before that write no longer matches: 412, nothing recorded.
        stale = await a.post(members, json={"name": "乙"}, headers={"If-Match": etag})
        assert stale.status_code == 412, stale.text
        err = stale.json()["error"]
        assert err["code"] == "precondition_failed" and err["message_ja"]
        assert '"3"' in err["message"] and stale.headers["ETag"] == '"3"'
        # A weak tag never matches (strong comparison); * matches any version; a bare
        # number is still taken for older clients; anything else is a 422.
        weak = await a.post(members, json={"name": "乙"}, headers={"If-Match": 'W/"3"'})
        assert weak.status_code == 412, weak.text
        assert json_of(await a.post(members, json={"name": "丙"}, headers={"If-Match": "*"}), 201)
        bare = await a.post(members, json={"name": "丁"}, headers={"If-Match": "4"})
        assert bare.status_code == 201 and bare.headers["ETag"] == '"5"'
        malformed = await a.post(members, json={"name": "戊"}, headers={"If-Match": "four"})
        assert malformed.status_code == 422, malformed.text
        assert malformed.json()["error"]["fields"][0]["field"] == "If-Match"
        picture, etag = tagged(await a.get(f"/households/{hid}"), 200)
        assert [m["name"] for m in picture["members"]] == ["甲野 花子", "甲野 太郎", "丙", "丁"]
        assert etag == '"5"'

        # Consultations, referrals (their consultation's version) and outreach.
        c, etag = tagged(
            await a.post(
                "/consultations",
                json={
                    "window": "welfare_general",
                    "channel": "visit",
                    "concerns": ["care"],
                    "summary": "介護の相談",
                    "household_id": hid,
                },
            ),
            201,
        )
        cid = c["consultation_id"]
        assert tagged(await a.get(f"/consultations/{cid}"), 200)[1] == etag == '"1"'
        referred, etag = tagged(
            await a.post(
                f"/consultations/{cid}/referrals",
                json={"to_agency": "agency-b"},
                headers={"If-Match": etag},
            ),
            201,
        )
        rid = referred["referrals"][0]["referral_id"]
        assert (await b.get(f"/referrals/{rid}")).headers["ETag"] == etag == '"2"'
        accepted = await b.post(f"/referrals/{rid}/acceptance", headers={"If-Match": etag})
        assert json_of(accepted, 200)["status"] == "accepted"
        assert accepted.headers["ETag"] == '"3"'
        o, etag = tagged(
            await a.post("/outreach", json={"concerns": ["withdrawal"], "reason": "見守り"}), 201
        )
        assert tagged(await a.get(f"/outreach/{o['outreach_id']}"), 200)[1] == etag

        # Two writes with the same If-Match at the same moment: one is recorded, one 412.
        contacts = f"/outreach/{o['outreach_id']}/contacts"
        answers = await asyncio.gather(
            *(a.post(contacts, json=CONTACT, headers={"If-Match": etag}) for _ in range(2))
        )
        assert sorted(r.status_code for r in answers) == [201, 412], [r.text for r in answers]

        # Writes without If-Match at the same moment: every one is recorded.
        await _none_lost(a, contacts)
        ended, _ = tagged(await a.get(f"/outreach/{o['outreach_id']}"), 200)
        assert len(ended["contacts"]) == 1 + WRITERS

        # A coordination case answers with its ETag as well.
        complex_one = json_of(
            await a.post(
                "/consultations",
                json={
                    "window": "welfare_general",
                    "channel": "visit",
                    "concerns": ["care", "hardship"],
                    "summary": "複合課題",
                    "household_id": hid,
                    "complex": True,
                    "escalation_reason": "複合課題",
                },
            ),
            201,
        )
        coordinator = system.client("coordination", "city", "coord", Role.COORDINATOR)

        async def case() -> Any:
            rows = json_of(
                await coordinator.get(
                    "/cases", params={"consultation_id": complex_one["consultation_id"]}
                ),
                200,
            )
            return rows[0] if rows else None

        listed = await eventually(case)
        one, _ = tagged(await coordinator.get(f"/cases/{listed['case_id']}"), 200)
        assert one == listed  # the list carries the same fields as the case itself

        # Times are written one way in every view, details and lists alike.
        auditor = system.client("intake", "audit", "auditor", Role.AUDITOR)
        reads = [
            await a.get(f"/households/{hid}"),
            await a.get(f"/consultations/{cid}"),
            await a.get("/consultations"),
            await auditor.get("/consultations/unresolved", params={"older_than_days": 0}),
            await b.get(f"/referrals/{rid}"),
            await b.get("/referrals"),
            await a.get("/referrals", params={"direction": "outgoing"}),
            await a.get(f"/outreach/{o['outreach_id']}"),
            await a.get("/outreach"),
            await a.get("/inbox"),
            await coordinator.get("/cases"),
            await coordinator.get(f"/cases/{listed['case_id']}"),
        ]
        seen = []
        for read in reads:
            for where, value in times_in(json_of(read, 200)):
                assert RFC3339.match(value), (str(read.url), where, value)
                seen.append(where.rsplit(".", 1)[-1])
        assert {"received_at", "made_at", "contacted_at", "started_at", "opened_at"} <= set(seen)
        assert {"registered_at", "last_contact_at", "updated_at", "outcome_at"} <= set(seen)


async def _none_lost(client: httpx.AsyncClient, contacts: str) -> None:
    answers = await asyncio.gather(*(client.post(contacts, json=CONTACT) for _ in range(WRITERS)))
    statuses = Counter(r.status_code for r in answers)
    assert statuses == Counter({201: WRITERS}), [r.text for r in answers if r.status_code != 201]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_writes_without_if_match_are_never_lost(
    tmp_path: Path, kafka_bootstrap: list[str], kind: str
) -> None:
    if kind == "postgresql":
        require_postgres()
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        a = system.client("intake", "agency-a", "staff-a", Role.STAFF)
        o = json_of(
            await a.post("/outreach", json={"concerns": ["withdrawal"], "reason": "見守り"}), 201
        )
        contacts = f"/outreach/{o['outreach_id']}/contacts"
        await _none_lost(a, contacts)
        read = await a.get(f"/outreach/{o['outreach_id']}")
        recorded = json_of(read, 200)
        assert sorted(c["attempt"] for c in recorded["contacts"]) == list(range(1, WRITERS + 1))
        assert read.headers["ETag"] == f'"{1 + WRITERS}"'
