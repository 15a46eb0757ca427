"""The idempotency keys table on SQLite and PostgreSQL: one claim wins among concurrent
ones, a kept answer is found again, and an expired key is free again (and deleted)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from kyosei_platform.idempotency import IdempotencyKeys, idempotency_keys, idempotency_metadata
from tests.conftest import Database


async def test_one_claim_wins_and_an_expired_key_is_free_again(database: Database) -> None:
    engine = database.engine()
    async with engine.begin() as conn:
        await conn.run_sync(idempotency_metadata.create_all)
    keys = IdempotencyKeys(engine, timedelta(hours=24))
    try:
        claims = await asyncio.gather(*(keys.claim("agency-a", "k1", "h") for _ in range(10)))
        assert sum(c is None for c in claims) == 1
        assert all(c["status"] is None for c in claims if c is not None)  # still running

        await keys.keep("agency-a", "k1", 201, '{"id": 1}')
        held = await keys.claim("agency-a", "k1", "h")
        assert held is not None
        assert (held["status"], held["response_body"]) == (201, '{"id": 1}')
        # Per agency: another agency's same key is free.
        assert await keys.claim("agency-b", "k1", "h") is None

        # Older than the setting: ignored, and the old row is replaced.
        async with engine.begin() as conn:
            await conn.execute(
                update(idempotency_keys).values(created_at="2000-01-01T00:00:00.000000Z")
            )
        assert await keys.claim("agency-a", "k1", "other") is None
        keys._next_purge = 0.0  # the next claim deletes every expired key
        async with engine.begin() as conn:
            await conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.agency_id == "agency-b")
                .values(created_at="2000-01-01T00:00:00.000000Z")
            )
        assert await keys.claim("agency-c", "k2", "h") is None
        async with engine.connect() as conn:
            left = await conn.execute(
                select(idempotency_keys.c.agency_id).order_by(idempotency_keys.c.agency_id)
            )
            assert [r[0] for r in left] == ["agency-a", "agency-c"]
            count = await conn.execute(select(func.count()).select_from(idempotency_keys))
            assert count.scalar() == 2

        await keys.release("agency-a", "k1")
        assert await keys.claim("agency-a", "k1", "h") is None
    finally:
        await engine.dispose()
