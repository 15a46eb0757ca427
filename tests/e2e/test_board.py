"""The coordinator's board and a case's timeline end to end, over real HTTP and the real
Kafka protocol, on SQLite and PostgreSQL: 地域包括 escalates an 8050 household; its case
is on the coordinator's board; the outreach agency starts an outreach for the case and a
participation agency matches the son with a place, each on its own topic as an agency's
system would publish it; both outcomes come onto the case's timeline, with nothing
personal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kyosei_events.catalogue.intake import OutreachStarted
from kyosei_events.catalogue.participation import ParticipationMatched
from kyosei_platform.application import now
from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import eventually, json_of, running_system
from tests.e2e.households import register_8050

CITY = "matsudo-city"
HOUKATSU = "houkatsu-matsudo-2"
CAFE = "cafe-hondamachi"  # hosts the place the son is matched with
SHAKYO = "matsudo-shakyo"  # the participation (link) worker's agency
PRIVATE = "PRIVATE-BOARD"


async def test_an_escalated_case_on_the_board_and_outcomes_on_its_timeline(
    kind: str, tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(kind, tmp_path, PG_URL, kafka_bootstrap) as system:
        window = system.client("intake", HOUKATSU, "staff-ito", Role.STAFF)
        city = system.client("coordination", CITY, "coord-abe", Role.COORDINATOR)
        houkatsu = system.client("coordination", HOUKATSU, "staff-ito", Role.STAFF)
        stranger = system.client("coordination", "kashiwa-clinic", "dr-ono", Role.STAFF)
        h = await register_8050(
            window,
            birth_dates=False,
            concerns=["care", "withdrawal"],
            summary=f"{PRIVATE} 母に物忘れ、息子はひきこもり",
            escalation_reason="複合課題",
        )
        hid, son = h.household_id, h.son

        async def on_board() -> dict[str, Any] | None:
            board = json_of(await city.get("/board"), 200)
            cards = [c for c in board["stages"]["assessment"] if c["household_id"] == hid]
            return cards[0] if cards else None

        card = await eventually(on_board)
        case_id = card["case_id"]
        assert card["main_agency"] == HOUKATSU and card["plan_version"] is None
        mine = json_of(await houkatsu.get("/board"), 200)
        assert [c["case_id"] for c in mine["stages"]["assessment"]] == [case_id]

        await system.publish(
            "intake",
            OutreachStarted(
                outreach_id="outreach-board-1",
                household_id=hid,
                member_id=son,
                agency_id=HOUKATSU,
                origin="coordination",
                origin_ref=case_id,
                concerns=["withdrawal"],
                reason=f"{PRIVATE} 訪問の理由",
                started_at=now(),
            ),
            agency=HOUKATSU,
        )
        await system.publish(
            "participation",
            ParticipationMatched(
                match_id="match-board-1",
                household_id=hid,
                case_id=case_id,
                opportunity_id="cafe-mornings",
                opportunity_kind="place",
                host_agency_id=CAFE,
                link_worker_agency_id=SHAKYO,
                matched_on=now().date(),
                fit_notes=f"{PRIVATE} コーヒーが好き",
            ),
            agency=SHAKYO,
        )

        async def outcomes() -> list[dict[str, Any]] | None:
            timeline = json_of(await houkatsu.get(f"/cases/{case_id}/timeline"), 200)
            found = [e for e in timeline if e["type"] == "RequestOutcomeReceived"]
            return timeline if len(found) == 2 else None

        timeline = await eventually(outcomes)
        assert timeline[0]["type"] == "CaseOpened"
        assert timeline[0]["ref_id"] == h.consultation_id
        received = {
            e["detail"]["kind"]: (e["ref_id"], e["agency_id"])
            for e in timeline
            if e["type"] == "RequestOutcomeReceived"
        }
        assert received == {
            "outreach_started": ("outreach-board-1", HOUKATSU),
            "participation_matched": ("match-board-1", CAFE),
        }
        assert PRIVATE not in json.dumps(timeline, ensure_ascii=False)
        assert (await stranger.get(f"/cases/{case_id}/timeline")).status_code == 404
        # The outcomes are activity on the case: it is not stalled.
        board = json_of(await city.get("/board"), 200)
        assert case_id not in [c["case_id"] for c in board["stalled"]]
