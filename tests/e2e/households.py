"""The 8050 household the end-to-end scenarios start from: 松戸 ハル (82) and her son
一郎 (54, withdrawn), registered at 地域包括's window, whose complex consultation is
escalated to coordination and becomes a case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.harness import eventually, json_of

SUMMARY = "母（82）に物忘れ。息子（54）は20年ひきこもり。"
CONCERNS = ("care", "withdrawal", "hardship")


@dataclass(frozen=True)
class Household8050:
    """The household's and its members' ids, and the escalated consultation's."""

    household_id: str
    mother: str
    son: str
    consultation_id: str


@dataclass(frozen=True)
class Escalated8050(Household8050):
    case: dict[str, Any]  # as the coordinator first lists it

    @property
    def case_id(self) -> str:
        return str(self.case["case_id"])


async def register_8050(
    window: httpx.AsyncClient,
    *,
    escalation_reason: str,
    summary: str = SUMMARY,
    concerns: Sequence[str] = CONCERNS,
    birth_dates: bool = True,
) -> Household8050:
    """The household registered at ``window`` (an intake client) and its consultation,
    complex, escalated with ``escalation_reason``."""
    births = ("1944-04-01", "1972-06-15") if birth_dates else (None, None)
    members = [
        {"name": "松戸 ハル", "birth_date": births[0], "relationship": "head"},
        {"name": "松戸 一郎", "birth_date": births[1], "relationship": "child"},
    ]
    household = json_of(
        await window.post(
            "/households",
            json={"members": [{k: v for k, v in m.items() if v is not None} for m in members]},
        ),
        201,
    )
    hid = household["household_id"]
    mother, son = (m["member_id"] for m in household["members"])
    consultation = json_of(
        await window.post(
            "/consultations",
            json={
                "household_id": hid,
                "window": "community_general_support_center",
                "channel": "home_visit",
                "concerns": list(concerns),
                "summary": summary,
                "complex": True,
                "escalation_reason": escalation_reason,
            },
        ),
        201,
    )
    return Household8050(hid, mother, son, consultation["consultation_id"])


async def escalated_8050(
    window: httpx.AsyncClient,
    coordinator: httpx.AsyncClient,
    *,
    escalation_reason: str,
    summary: str = SUMMARY,
    concerns: Sequence[str] = CONCERNS,
) -> Escalated8050:
    """``register_8050``, then the case it became, once ``coordinator`` (a coordination
    client) finds it."""
    h = await register_8050(
        window, escalation_reason=escalation_reason, summary=summary, concerns=concerns
    )

    async def opened() -> dict[str, Any] | None:
        rows = json_of(
            await coordinator.get("/cases", params={"consultation_id": h.consultation_id}), 200
        )
        return rows[0] if rows else None

    case = await eventually(opened)
    return Escalated8050(h.household_id, h.mother, h.son, h.consultation_id, case)


async def consents(
    window: httpx.AsyncClient,
    coordinator: httpx.AsyncClient,
    h: Escalated8050,
    member_id: str,
    agencies: list[str],
    purposes: Sequence[str] = ("information_sharing", "multi_layered_meeting"),
) -> dict[str, Any]:
    """``member_id`` consents at ``window`` to ``agencies`` for ``purposes``; once the
    case's meetings are at the 重層的支援会議 stage, that stage as ``coordinator`` reads it."""
    json_of(
        await window.post(
            f"/households/{h.household_id}/consents",
            json={
                "member_id": member_id,
                "given_by": "person",
                "agencies": agencies,
                "purposes": list(purposes),
            },
        ),
        201,
    )

    async def consented() -> dict[str, Any] | None:
        now = json_of(await coordinator.get(f"/cases/{h.case_id}/meetings"), 200)
        return now if now["stage"]["value"] == "multi_layered" else None

    return await eventually(consented)
