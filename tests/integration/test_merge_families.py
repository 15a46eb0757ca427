"""Merged household records resolved in one statement, on SQLite and PostgreSQL: the
same answer as following each record's merges one by one."""

from __future__ import annotations

from sqlalchemy import insert

from kyosei_households import merge_families, record_ids, survivor_of
from kyosei_households.directory import households, metadata
from tests.conftest import Database

# c <- b <- a (a merged into b, b into c); d <- e; f alone.
MERGED_INTO = {"a": "b", "b": "c", "c": None, "e": "d", "d": None, "f": None, "g": "c"}


async def test_merge_families_match_survivors_and_records(database: Database) -> None:
    engine = database.engine()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                insert(households),
                [
                    {
                        "household_id": h,
                        "registered_by": "houkatsu",
                        "registered_at": "2026-01-01T00:00:00+00:00",
                        "merged_into": into,
                    }
                    for h, into in MERGED_INTO.items()
                ],
            )
        async with engine.connect() as conn:
            assert await merge_families(conn, []) == {}
            assert await merge_families(conn, ["unknown"]) == {}
            assert await merge_families(conn, ["f"]) == {"f": "f"}
            family = await merge_families(conn, ["a", "e", "unknown"])
            assert family == {"a": "c", "b": "c", "c": "c", "g": "c", "d": "d", "e": "d"}
            for start in ("a", "e"):
                survivor = await survivor_of(conn, start)
                assert survivor is not None and family[start] == survivor
                assert {r for r, s in family.items() if s == survivor} == set(
                    await record_ids(conn, survivor)
                )
    finally:
        await engine.dispose()
