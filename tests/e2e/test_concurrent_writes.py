"""Concurrent writers over HTTP on PostgreSQL: commands that write several streams
never deadlock each other, and the loser of a race is decided again on the new state
(here: a 409 saying the records are already one household), never a 500."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from kyosei_platform.auth import Role
from tests.conftest import PG_URL, require_postgres
from tests.e2e.harness import json_of, running_system

PAIRS = 20


async def test_opposite_merges_at_the_same_moment_never_answer_500(
    tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    require_postgres()
    async with running_system("postgresql", tmp_path, PG_URL, kafka_bootstrap) as system:
        window = system.client("intake", "houkatsu-matsudo-1", "staff-ito", Role.STAFF)
        ids = []
        for i in range(2 * PAIRS):
            registered = json_of(
                await window.post(
                    "/households",
                    json={
                        "members": [{"name": f"併合 太郎{i}", "birth_date": "1950-01-01"}],
                        "proceed_despite_duplicates": True,
                    },
                ),
                201,
            )
            ids.append(registered["household_id"])
        pairs = [(ids[2 * i], ids[2 * i + 1]) for i in range(PAIRS)]

        async def merge(into: str, duplicate: str) -> int:
            answer = await window.post(
                f"/households/{into}/merge",
                json={"duplicate_household_id": duplicate, "reason": "同じ世帯を二重に登録"},
            )
            if answer.status_code == 409:
                # The loser is decided again on the merged state: already one household
                # (or, read at the moment between, this record is merged: use the other).
                code = answer.json()["error"]["code"]
                assert code in ("already_merged", "household_merged"), answer.text
            return answer.status_code

        # Each pair: A into B and B into A at once; every pair at once.
        answers = await asyncio.gather(*(m for a, b in pairs for m in (merge(a, b), merge(b, a))))
        statuses = Counter(answers)
        assert statuses[500] == 0, statuses
        for n in range(PAIRS):
            # Exactly one of the two merges applied; the other lost the race.
            assert sorted(answers[2 * n : 2 * n + 2]) == [200, 409], (n, answers)
        for a, b in pairs:
            # Both ids lead to the one survivor, which holds both records.
            picture_a = json_of(await window.get(f"/households/{a}"), 200)
            picture_b = json_of(await window.get(f"/households/{b}"), 200)
            assert picture_a["household_id"] == picture_b["household_id"]
            assert sorted(picture_a["records"]) == sorted([a, b])
