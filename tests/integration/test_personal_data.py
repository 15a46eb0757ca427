"""Personal data is sealed per household (AES-GCM), opens byte for byte, cannot be
moved to another event or field, and becomes unreadable on erasure while the chain
still verifies."""

from __future__ import annotations

import asyncio
import json
import os
import unicodedata
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import delete, event, select, update

from kyosei_events import CorruptEvent, EventStore, KeyErased, KeyVault, SealBroken
from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.intake import Channel, ConsultationReceived, Window
from kyosei_events.crypto import PREFIX, household_keys
from kyosei_events.tables import events
from tests.backbone_support import CALLER_NAME, JAPANESE_SUMMARY, consultation, matched, new
from tests.conftest import MASTER_KEY, Database


async def raw_row(store: EventStore, event_id: str) -> dict[str, Any]:
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(events).where(events.c.event_id == event_id))).one()
    return dict(row._mapping)


async def set_payload(store: EventStore, event_id: str, payload: dict[str, Any]) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(events)
            .where(events.c.event_id == event_id)
            .values(payload=json.dumps(payload, ensure_ascii=False))
        )


def fragments(text: str) -> list[str]:
    """Distinctive pieces of the plaintext, any of which would betray it."""
    return [text, "ひらがな", "漢字", "𠮷", "介護", "ひきこもり", "ＡＢＣ１２３", "ﾊﾝｶｸ", "👨‍👩‍👧"]


async def test_personal_fields_are_not_stored_in_plaintext(store: EventStore) -> None:
    (rec,) = await store.append("c-1", [new(consultation("hh-1"))], 0)
    row = await raw_row(store, rec.event_id)
    everything = json.dumps({k: str(v) for k, v in row.items()}, ensure_ascii=False)
    for piece in [*fragments(JAPANESE_SUMMARY), CALLER_NAME, "山田", "花子", "ﾔﾏﾀﾞ", "😊"]:
        assert piece not in everything, f"{piece!r} is stored in plaintext"
    stored = json.loads(row["payload"])
    assert stored["summary"].startswith(PREFIX)
    assert stored["caller_name"].startswith(PREFIX)
    # The other fields stay readable (read models and routing use them).
    assert stored["agency_id"] == "agency-a"
    assert stored["concerns"] == ["care", "withdrawal"]
    # Nothing personal in what the envelope carries either.
    assert all(
        "花子" not in v.decode() and "介護" not in v.decode()
        for _, v in rec.envelope("urn:kyosei:intake").to_headers()
    )


async def test_personal_fields_decode_byte_exact(store: EventStore) -> None:
    event = consultation("hh-1")
    await store.append("c-1", [new(event)], 0)
    (rec,) = await store.read_stream("c-1")
    decoded = await EventStore(store.engine, store.vault).decode(rec)
    got = decoded.event
    assert isinstance(got, ConsultationReceived)
    assert decoded.erased_fields == frozenset()
    assert got.summary.encode("utf-8") == JAPANESE_SUMMARY.encode("utf-8")
    assert got.caller_name is not None
    assert got.caller_name.encode("utf-8") == CALLER_NAME.encode("utf-8")
    # Not normalised: the decomposed が and the trailing space survive.
    assert "か\u3099" in got.summary
    assert unicodedata.normalize("NFC", got.summary) != got.summary
    assert got.summary.endswith(" ")
    assert got == event


async def test_an_absent_personal_field_stays_absent(store: EventStore) -> None:
    await store.append("c-1", [new(consultation("hh-1", caller_name=None))], 0)
    (rec,) = await store.read_stream("c-1")
    assert json.loads(rec.payload)["caller_name"] is None
    assert (await store.decode(rec)).event.caller_name is None  # type: ignore[attr-defined]


async def test_erasure_makes_personal_fields_unreadable_and_the_chain_still_verifies(
    store: EventStore, vault: KeyVault
) -> None:
    mine = [new(consultation("hh-1")), new(consultation("hh-1", caller_name=None))]
    await store.append("c-1", mine, 0)
    await store.append("m-1", [new(matched("hh-1"))], 0)
    await store.append("c-2", [new(consultation("hh-2"))], 0)
    stored_before = [r.payload for r in await store.read_subject("hh-1")]

    assert await vault.erase("hh-1") is True
    assert await vault.erase("hh-1") is False

    recs = await store.read_stream("c-1")
    first = await store.decode(recs[0])
    e = first.event
    assert isinstance(e, ConsultationReceived)
    assert e.summary is None and e.caller_name is None
    assert first.erased_fields == {"summary", "caller_name"}
    original = mine[0].event
    assert isinstance(original, ConsultationReceived)
    for name in (
        "consultation_id",
        "household_id",
        "agency_id",
        "window",
        "channel",
        "concerns",
        "complex",
        "received_at",
    ):
        assert getattr(e, name) == getattr(original, name), name
    # ... and typed as usual, so read models can use them (e.g. rebuild after erasure).
    assert isinstance(e.window, Window) and isinstance(e.channel, Channel)
    assert all(isinstance(c, Concern) for c in e.concerns)
    assert isinstance(e.received_at, datetime)

    second = await store.decode(recs[1])
    assert second.erased_fields == {"summary"}  # caller_name was never there
    (m,) = await store.read_stream("m-1")
    assert (await store.decode(m)).erased_fields == {"fit_notes"}

    # The stored events are untouched and every chain still verifies.
    assert [r.payload for r in await store.read_subject("hh-1")] == stored_before
    assert all(r.ok for r in await store.verify_all())

    # Another household is not affected.
    (other,) = await store.read_stream("c-2")
    assert (await store.decode(other)).event.summary == JAPANESE_SUMMARY  # type: ignore[attr-defined]

    # The key is gone for good: a new vault over the same key database cannot open it.
    with pytest.raises(KeyErased):
        await KeyVault(vault._engine, bytes(range(32))).key_for("hh-1", create=False)


async def test_a_sealed_field_cannot_be_moved_to_another_event(store: EventStore) -> None:
    a, b = new(consultation("hh-1", summary="Ａの相談")), new(consultation("hh-1"))
    await store.append("c-1", [a, b], 0)
    ra, rb = await store.read_stream("c-1")
    pa, pb = json.loads(ra.payload), json.loads(rb.payload)
    await set_payload(store, rb.event_id, pb | {"summary": pa["summary"]})
    (_, moved) = await store.read_stream("c-1")
    with pytest.raises(SealBroken, match="summary does not open"):
        await store.decode(moved)
    # The untouched event still opens.
    assert (await store.decode(ra)).event.summary == "Ａの相談"  # type: ignore[attr-defined]


async def test_a_sealed_field_cannot_be_moved_to_another_field(store: EventStore) -> None:
    (rec,) = await store.append("c-1", [new(consultation("hh-1"))], 0)
    payload = json.loads(rec.payload)
    await set_payload(store, rec.event_id, payload | {"caller_name": payload["summary"]})
    (moved,) = await store.read_stream("c-1")
    with pytest.raises(SealBroken, match="caller_name does not open"):
        await store.decode(moved)


async def test_a_sealed_field_cannot_be_moved_to_another_household(store: EventStore) -> None:
    (r1,) = await store.append("c-1", [new(consultation("hh-1"))], 0)
    (r2,) = await store.append("c-2", [new(consultation("hh-2"))], 0)
    p1, p2 = json.loads(r1.payload), json.loads(r2.payload)
    await set_payload(store, r2.event_id, p2 | {"summary": p1["summary"]})
    (moved,) = await store.read_stream("c-2")
    with pytest.raises(SealBroken, match="summary does not open"):
        await store.decode(moved)


async def test_an_erased_event_is_still_validated(store: EventStore, vault: KeyVault) -> None:
    (rec,) = await store.append("c-1", [new(consultation("hh-1"))], 0)
    await vault.erase("hh-1")
    await set_payload(store, rec.event_id, json.loads(rec.payload) | {"window": "nowhere"})
    (edited,) = await store.read_stream("c-1")
    with pytest.raises(CorruptEvent, match="window"):
        await store.decode(edited)


async def test_the_key_cache_stays_within_its_size(vault: KeyVault) -> None:
    """More households than the cache holds all keep working; the least recently used
    keys leave the cache and are read back from the key database when needed."""
    small = KeyVault(vault._engine, bytes(range(32)), cache_size=3)
    sealed = {}
    for n in range(10):
        hh = f"hh-lru-{n}"
        sealed[hh] = await small.seal(hh, f"e-{n}", {"name": f"名前{n}"}, ["name"])
        assert small.cached_keys() <= 3
    for n in reversed(range(10)):
        hh = f"hh-lru-{n}"
        opened, erased = await small.open(hh, f"e-{n}", sealed[hh], ["name"])
        assert (opened, erased) == ({"name": f"名前{n}"}, frozenset())
        assert small.cached_keys() <= 3
    # A recently used key stays; the oldest goes first.
    await small.key_for("hh-lru-0", create=False)
    await small.key_for("hh-lru-5", create=False)
    assert set(small._cache) == {"hh-lru-1", "hh-lru-0", "hh-lru-5"}

    uncached = KeyVault(vault._engine, bytes(range(32)), cache_size=0)
    assert (await uncached.open("hh-lru-7", "e-7", sealed["hh-lru-7"], ["name"]))[0] == {
        "name": "名前7"
    }
    assert uncached.cached_keys() == 0


async def test_an_erased_key_is_never_served_from_the_cache(
    vault: KeyVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup already under way when the key is erased (here, by another process,
    which tells this one to forget it) does not put the erased key in the cache."""
    await vault.key_for("hh-race", create=True)
    vault.forget_cached("hh-race")
    unwrap = vault._unwrap

    def unwrap_while_erased_elsewhere(household_id: str, wrapped: bytes) -> Any:
        key = unwrap(household_id, wrapped)
        vault.forget_cached(household_id)  # the erasure lands mid-lookup
        return key

    monkeypatch.setattr(vault, "_unwrap", unwrap_while_erased_elsewhere)
    await vault.key_for("hh-race", create=False)
    monkeypatch.undo()
    assert await KeyVault(vault._engine, bytes(range(32))).erase("hh-race") is True
    with pytest.raises(KeyErased):
        await vault.key_for("hh-race", create=False)

    # Erasing in this process while a lookup is under way: the same.
    await vault.key_for("hh-race-2", create=True)
    vault.forget_cached("hh-race-2")

    def unwrap_while_erased_here(household_id: str, wrapped: bytes) -> Any:
        key = unwrap(household_id, wrapped)
        vault._erasures += 1  # what erase() does before and after its DELETE
        return key

    monkeypatch.setattr(vault, "_unwrap", unwrap_while_erased_here)
    await vault.key_for("hh-race-2", create=False)
    monkeypatch.undo()
    assert "hh-race-2" not in vault._cache
    assert await vault.erase("hh-race-2") is True
    with pytest.raises(KeyErased):
        await vault.key_for("hh-race-2", create=False)


async def test_a_key_first_used_by_two_processes_at_once_is_one_key(database: Database) -> None:
    """Two vaults with cold caches (two processes) asking for the same new household's
    key at the same moment get the same key (on PostgreSQL one statement inserts it or
    reads the one another inserted); a household without a key is not given one when
    only asked to read."""
    engine = database.engine()
    first, second = KeyVault(engine, MASTER_KEY), KeyVault(engine, MASTER_KEY)
    await first.create_tables()
    try:
        ids = [f"hh-race-{i}" for i in range(20)]
        keys = await asyncio.gather(
            *(v.key_for(h, create=True) for h in ids for v in (first, second))
        )
        cold = KeyVault(engine, MASTER_KEY)
        for i, household_id in enumerate(ids):
            nonce = os.urandom(12)
            sealed = keys[2 * i].encrypt(nonce, household_id.encode(), None)
            assert keys[2 * i + 1].decrypt(nonce, sealed, None) == household_id.encode()
            again = await cold.key_for(household_id, create=False)
            assert again.decrypt(nonce, sealed, None) == household_id.encode()
        assert await first.household_ids() == set(ids)
        with pytest.raises(KeyErased):
            await cold.key_for("hh-never-written", create=False)
        assert "hh-never-written" not in await first.household_ids()
    finally:
        await engine.dispose()


async def test_a_batch_of_keys_is_read_in_one_statement(database: Database) -> None:
    """KeyVault.prefetch: keys not cached are read together and then open the fields
    sealed with them; a household without a key is left to key_for (erased)."""
    engine = database.engine()
    writer = KeyVault(engine, MASTER_KEY)
    await writer.create_tables()
    sealed = {}
    for h in ("hh-a", "hh-b", "hh-c"):
        sealed[h] = await writer.seal(h, f"ev-{h}", {"summary": f"相談 {h}"}, ["summary"])
    reader = KeyVault(engine, MASTER_KEY)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        assert await reader.prefetch(["hh-a", "hh-b", "hh-c", "hh-none", "hh-a"]) == 3
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert reader.cached_keys() == 3
    assert len(statements) <= 1  # one on SQLite; PostgreSQL's goes to the driver directly
    async with engine.begin() as conn:  # gone from the table: only the cache has them now
        await conn.execute(delete(household_keys))
    for h, payload in sealed.items():
        opened, erased = await reader.open(h, f"ev-{h}", payload, ["summary"])
        assert opened == {"summary": f"相談 {h}"} and not erased
    with pytest.raises(KeyErased):
        await reader.key_for("hh-none", create=False)
    assert await reader.prefetch(["hh-a", "hh-b"]) == 0  # cached already
    await engine.dispose()
