"""Signed anchors: tampering that keeps every chain intact is found when it touches
anything before the latest anchor. Tampering goes straight at the tables."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, insert, select, text, update

from kyosei_events import EventStore, KeyVault
from kyosei_events.anchors import (
    AnchorError,
    anchor_periodically,
    check_anchor,
    latest_anchor,
    make_anchor,
    public_key,
    signing_key,
)
from kyosei_events.codec import link_hash
from kyosei_events.crypto import master_key_from_hex
from kyosei_events.database import create_engine
from kyosei_events.records import RecordedEvent
from kyosei_events.tables import anchors, events
from kyosei_platform.migrate import upgrade
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings
from tests.backbone_support import case_opened, new
from tests.conftest import Database, _drop, _new_database
from tests.integration.test_migrations import MASTER, settings_for

KEY = signing_key("11" * 32)
PUBLIC = KEY.public_key()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """As conftest's, but on PostgreSQL in a database of its own: an anchor covers the
    log only below every transaction still running in the database, and these tests
    anchor what they have just written, so no other run may write beside them."""
    db = await _new_database(request.param, tmp_path, "anchors", own=True)
    yield db
    await _drop(db)


async def seed(store: EventStore) -> None:
    """Three streams whose events interleave in the log: a has 3, b and c 2 each."""
    for stream_id, expected in [("a", 0), ("b", 0), ("a", 1), ("c", 0), ("b", 1), ("a", 2)]:
        await store.append(stream_id, [new(case_opened())], expected)
    await store.append("c", [new(case_opened())], 1)


async def anchored(store: EventStore) -> None:
    await seed(store)
    await make_anchor(store, "test", KEY)


async def problems(store: EventStore) -> list[str]:
    stored = await latest_anchor(store.engine)
    assert stored is not None
    return await check_anchor(store, stored, PUBLIC)


async def chains_ok(store: EventStore) -> bool:
    return all(r.ok for r in await store.verify_all())


async def rehash_from(store: EventStore, stream_id: str, recs: list[RecordedEvent]) -> None:
    """Store ``recs`` (a stream's events, some edited) with every hash recomputed."""
    prev = recs[0].prev_hash
    async with store.engine.begin() as conn:
        for rec in recs:
            h = link_hash(prev, rec.record())
            await conn.execute(
                update(events)
                .where(events.c.stream_id == stream_id, events.c.version == rec.version)
                .values(payload=rec.payload, prev_hash=prev, hash=h)
            )
            prev = h


async def test_an_untouched_store_matches_its_anchor(store: EventStore) -> None:
    await anchored(store)
    assert await problems(store) == []
    # Later events are not covered and break nothing; a second anchor covers them.
    await store.append("a", [new(case_opened())], 3)
    await store.append("d", [new(case_opened())], 0)
    assert await problems(store) == []
    second = await make_anchor(store, "test", KEY)
    assert second.streams["a"][0] == 4 and "d" in second.streams and second.events == 9
    assert await problems(store) == []


async def test_deleting_a_streams_last_event_is_found(store: EventStore) -> None:
    await anchored(store)
    async with store.engine.begin() as conn:
        await conn.execute(delete(events).where(events.c.stream_id == "a", events.c.version == 3))
    assert await chains_ok(store), "the chain alone cannot show this"
    found = await problems(store)
    assert any("stream a: 2 events before the anchor, anchored with 3" in p for p in found)


async def test_deleting_a_whole_stream_is_found(store: EventStore) -> None:
    await anchored(store)
    async with store.engine.begin() as conn:
        await conn.execute(delete(events).where(events.c.stream_id == "b"))
    assert await chains_ok(store)
    found = await problems(store)
    assert "stream b: removed (anchored with 2 events)" in found


async def test_swapping_two_events_places_in_the_log_is_found(store: EventStore) -> None:
    await anchored(store)
    async with store.engine.begin() as conn:
        rows = (
            await conn.execute(
                select(events.c.position, events.c.tx_id)
                .where(events.c.version == 1, events.c.stream_id.in_(["a", "b"]))
                .order_by(events.c.stream_id)
            )
        ).all()
        (pa, ta), (pb, tb) = rows
        # Through a free position: position is the primary key.
        await conn.execute(update(events).where(events.c.position == pa).values(position=-1))
        await conn.execute(
            update(events).where(events.c.position == pb).values(position=pa, tx_id=ta)
        )
        await conn.execute(
            update(events).where(events.c.position == -1).values(position=pb, tx_id=tb)
        )
    assert await chains_ok(store)
    found = await problems(store)
    assert any("differs from the anchor" in p for p in found), found


async def test_a_forged_event_with_a_recomputed_hash_before_the_anchor_is_found(
    store: EventStore,
) -> None:
    await anchored(store)
    head = (await store.read_stream("a"))[-1]
    forged = dataclasses.replace(
        head, version=4, event_id="00000000-0000-0000-0000-00000000f0f0", prev_hash=head.hash
    )
    forged = dataclasses.replace(forged, hash=link_hash(head.hash, forged.record()))
    row: dict[str, Any] = dataclasses.asdict(forged)
    row.update(position=0, tx_id=0)  # a free place early in the log
    async with store.engine.begin() as conn:
        await conn.execute(insert(events).values(**row))
    assert await chains_ok(store), "its hash is right: the chain alone cannot show this"
    found = await problems(store)
    assert any("anchored with 7" in p for p in found), found
    assert any("differs from the anchor" in p for p in found), found

    # Placed below the start of the log, where readers of the log never look.
    async with store.engine.begin() as conn:
        await conn.execute(update(events).where(events.c.position == 0).values(tx_id=-5))
    assert await chains_ok(store)
    assert "1 events are placed before the start of the log (forged tx_id or position)" in (
        await problems(store)
    )


async def test_an_edit_with_the_chain_recomputed_after_it_is_found(store: EventStore) -> None:
    await anchored(store)
    recs = await store.read_stream("a")
    payload = json.loads(recs[1].payload)
    payload["escalated_by"] = "agency-forged"
    edited = dataclasses.replace(recs[1], payload=json.dumps(payload, ensure_ascii=False))
    await rehash_from(store, "a", [edited, recs[2]])
    assert await chains_ok(store), "the chain was recomputed: it alone cannot show this"
    found = await problems(store)
    assert "stream a: events up to version 3 were changed (head hash differs from the anchor)" in (
        found
    )


async def test_a_tampered_anchor_fails_its_signature(store: EventStore) -> None:
    await anchored(store)
    stored = await latest_anchor(store.engine)
    assert stored is not None
    body = json.loads(stored.body)
    body["streams"]["a"][0] = 2  # make a truncation of stream a look anchored
    async with store.engine.begin() as conn:
        await conn.execute(
            update(anchors)
            .where(anchors.c.anchor_id == stored.anchor_id)
            .values(body=json.dumps(body))
        )
    found = await problems(store)
    assert len(found) == 1 and "signature does not verify" in found[0]
    # An anchor signed with another key does not verify either.
    other = public_key(Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex())
    assert "signature does not verify" in (await check_anchor(store, stored, other))[0]


async def test_an_anchor_is_refused_over_tampering_it_would_bless(store: EventStore) -> None:
    await anchored(store)
    async with store.engine.begin() as conn:
        await conn.execute(delete(events).where(events.c.stream_id == "c"))
    with pytest.raises(AnchorError, match="stream c: removed"):
        await make_anchor(store, "test", KEY)


@pytest.mark.postgres
async def test_an_anchor_stops_below_a_transaction_still_running_in_the_database(
    tmp_path: Path, vault: KeyVault
) -> None:
    """A transaction of any schema of the database that is still running may yet commit
    events before those written after it began: the anchor stops below it, and the
    next one, once it has ended, covers the rest. Nothing is reported as tampering."""
    db = await _new_database("postgresql", tmp_path, "anchors", own=True)
    engine = db.engine()
    other = create_engine(db.url)
    try:
        store = EventStore(engine, vault, name="test-postgresql")
        await store.create_tables()
        first = await make_anchor(store, "test", KEY)
        assert first.events == 0 and first.streams == {}
        await seed(store)
        async with other.connect() as conn:
            # Another transaction of the database (any schema's): it holds an id now.
            await conn.execute(text("select pg_current_xact_id()"))
            await store.append("a", [new(case_opened())], 3)
            await store.append("d", [new(case_opened())], 0)
            held = await make_anchor(store, "test", KEY)
            assert held.events == 7 and held.streams["a"][0] == 3 and "d" not in held.streams
            assert await problems(store) == []
            await conn.commit()
        covered = await make_anchor(store, "test", KEY)
        assert covered.events == 9 and covered.streams["a"][0] == 4 and "d" in covered.streams
        assert await problems(store) == []
    finally:
        await other.dispose()
        await engine.dispose()
        await _drop(db)


async def test_what_is_not_found_changes_after_the_latest_anchor(store: EventStore) -> None:
    """Events after the anchor are only chain-checked: a forged append with a correct
    hash, or one deleted from the end, looks like an ordinary write."""
    await anchored(store)
    await store.append("a", [new(case_opened())], 3)
    async with store.engine.begin() as conn:
        await conn.execute(delete(events).where(events.c.stream_id == "a", events.c.version == 4))
    assert await problems(store) == []
    assert await chains_ok(store)


async def test_kyosei_anchor_and_verify_on_a_migrated_store(
    database: Database, tmp_path: Path
) -> None:
    """The operator's `kyosei anchor` signs with the private key; the auditor's
    `kyosei verify` checks with the public key `kyosei checkpoint-key` printed."""
    settings = settings_for(database, tmp_path, "coordination")
    await asyncio.to_thread(upgrade, discover()["coordination"], settings)
    engine = create_engine(database.url, schema=database.schema)
    keys = create_engine(settings.keys_database_url)
    store = EventStore(engine, KeyVault(keys, master_key_from_hex(MASTER)))
    for n in range(3):
        await store.append(f"case-{n}", [new(case_opened())], 0)
    await store.append("case-2", [new(case_opened())], 1)
    env = {
        **os.environ,
        "KYOSEI_DATABASE_URL": database.url,
        "KYOSEI_KEYS_DATABASE_URL": settings.keys_database_url,
        "KYOSEI_KEYS_DB_SCHEMA": "",
        "KYOSEI_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "KYOSEI_MASTER_KEY": MASTER,
        "KYOSEI_AUTH_SECRET": "x" * 32,
    }
    if database.schema:
        env["KYOSEI_DB_SCHEMA"] = database.schema

    def kyosei(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kyosei_platform.cli", *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )

    operator = {"KYOSEI_CHECKPOINT_SIGNING_KEY": "22" * 32}
    none = await asyncio.to_thread(kyosei, "verify", "coordination")
    assert none.returncode == 0 and "no anchor" in none.stdout
    made = await asyncio.to_thread(kyosei, "anchor", "coordination", **operator)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "anchored 3 streams, 4 events" in made.stdout
    printed = await asyncio.to_thread(kyosei, "checkpoint-key", **operator)
    public = printed.stdout.splitlines()[0]
    assert public == signing_key("22" * 32).public_key().public_bytes_raw().hex()
    auditor = {"KYOSEI_CHECKPOINT_PUBLIC_KEY": public}
    ok = await asyncio.to_thread(kyosei, "verify", "coordination", **auditor)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3 streams, 4 events" in ok.stdout

    async with engine.begin() as conn:
        await conn.execute(
            delete(events).where(events.c.stream_id == "case-2", events.c.version == 2)
        )
    await engine.dispose()
    await keys.dispose()
    bad = await asyncio.to_thread(kyosei, "verify", "coordination", **auditor)
    assert bad.returncode == 1
    assert "0 broken" in bad.stdout, "the chains alone still hold"
    assert "ANCHOR stream case-2: 1 events before the anchor, anchored with 2" in bad.stdout
    wrong = {"KYOSEI_CHECKPOINT_PUBLIC_KEY": "33" * 32}
    forged = await asyncio.to_thread(kyosei, "verify", "coordination", **wrong)
    assert forged.returncode == 1


async def test_the_running_service_anchors_on_its_own_schedule_while_leading(
    store: EventStore,
) -> None:
    await seed(store)
    leading = False
    task = asyncio.create_task(anchor_periodically(store, "test", KEY, 0.05, lambda: leading))
    try:
        await asyncio.sleep(0.3)
        assert await latest_anchor(store.engine) is None, "only the relay's leader anchors"
        leading = True
        for _ in range(100):
            if await latest_anchor(store.engine) is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await problems(store) == []


def test_anchor_settings_are_checked_at_start() -> None:
    base = {
        "database_url": "sqlite+aiosqlite:///x.db",
        "keys_database_url": "sqlite+aiosqlite:///k.db",
        "kafka_bootstrap": ["127.0.0.1:9"],
        "master_key": MASTER,
        "auth_secret": "x" * 32,
    }
    assert Settings(**base).anchor_interval == 0, "off unless set"
    with pytest.raises(ValueError, match="needs KYOSEI_CHECKPOINT_SIGNING_KEY"):
        Settings(**base, anchor_interval=15)
    with pytest.raises(ValueError, match="64 hex characters"):
        Settings(**base, checkpoint_signing_key="not-a-key")
    with pytest.raises(ValueError, match="64 hex characters"):
        Settings(**base, checkpoint_public_key="abc")
    Settings(**base, anchor_interval=15, checkpoint_signing_key="44" * 32)
