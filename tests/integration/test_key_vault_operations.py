"""Operating the key vault: a master-key rotation re-wraps every household key (resumable,
readable with either key meanwhile), and an erased key stays erased when the vault is
restored from a backup taken before the erasure."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from kyosei_events import EventStore, KeyVault
from kyosei_events.catalogue.intake import ConsultationReceived
from kyosei_events.crypto import MasterKeyMismatch
from kyosei_events.database import create_engine
from kyosei_platform import keys
from kyosei_platform.settings import Settings
from tests.backbone_support import JAPANESE_SUMMARY, consultation, new
from tests.conftest import Database

OLD = bytes(range(32))
NEW = bytes(range(32, 64))
HOUSEHOLDS = [f"hh-{i:03}" for i in range(25)]

Open = Callable[..., AbstractAsyncContextManager[EventStore]]


@pytest.fixture
def open_store(tmp_path: Path) -> Open:
    """The same store and key vault (SQLite files), opened with the given master keys."""

    @asynccontextmanager
    async def opened(master: bytes, previous: bytes | None = None) -> AsyncIterator[EventStore]:
        vault_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db")
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'store'}.db")
        vault = KeyVault(vault_engine, master, cache_size=0, previous_master_key=previous)
        store = EventStore(engine, vault, name="intake")
        try:
            await vault.create_tables()
            await store.create_tables()
            yield store
        finally:
            await engine.dispose()
            await vault_engine.dispose()

    return opened


async def summaries(store: EventStore) -> dict[str, str | None]:
    got: dict[str, str | None] = {}
    for stream_id in await store.stream_ids():
        for rec in await store.read_stream(stream_id):
            event = (await store.decode(rec)).event
            assert isinstance(event, ConsultationReceived)
            got[event.household_id or ""] = event.summary
    return got


async def hashes(store: EventStore) -> dict[str, list[str]]:
    return {s: [r.hash for r in await store.read_stream(s)] for s in await store.stream_ids()}


async def test_rewrap_moves_every_key_to_the_new_master_key(open_store: Open) -> None:
    async with open_store(OLD) as store:
        for h in HOUSEHOLDS:
            await store.append(f"c-{h}", [new(consultation(h))], 0)
        before = await hashes(store)
        index = store.vault.blind_index("松戸")

    # Services during the rotation: the new key, and the old one to read what is not
    # re-wrapped yet; new households get keys under the new one; search is unchanged.
    async with open_store(NEW, OLD) as store:
        assert store.vault.blind_index("松戸") == index
        assert set((await summaries(store)).values()) == {JAPANESE_SUMMARY}
        await store.append("c-late", [new(consultation("hh-late"))], 0)
        # Interrupted halfway: one batch of ten, then the process dies.
        done, already, last = await store.vault.rewrap(limit=10)
        assert (done, already, last) == (10, 0, HOUSEHOLDS[9])

    # Run again from the start: it skips what is done and completes.
    async with open_store(NEW, OLD) as store:
        seen: list[tuple[int, int]] = []
        done, already = await keys.rewrap(
            store.vault, batch=7, progress=lambda d, a: seen.append((d, a))
        )
        assert (done, already) == (len(HOUSEHOLDS) - 10, 11)
        assert seen[-1] == (done, already) and len(seen) == 4

    # Only the new master key from now on: every personal field opens, no hash moved.
    async with open_store(NEW) as store:
        assert set((await summaries(store)).values()) == {JAPANESE_SUMMARY}
        after = await hashes(store)
        assert {s: after[s] for s in before} == before
        assert all(r.ok for r in await store.verify_all())

    # The old master key alone no longer opens them.
    async with open_store(OLD) as store:
        with pytest.raises(MasterKeyMismatch):
            await store.vault.key_for(HOUSEHOLDS[0], create=False)


async def test_an_erased_key_stays_erased_after_restoring_the_vault(
    open_store: Open, tmp_path: Path
) -> None:
    async with open_store(OLD) as store:
        await store.append("c-1", [new(consultation("hh-1"))], 0)
        await store.append("c-2", [new(consultation("hh-2"))], 0)
    shutil.copy(tmp_path / "keys.db", tmp_path / "keys-backup.db")  # the nightly backup

    async with open_store(OLD) as store:
        assert await keys.erase(store.engine, store.vault, "hh-1") is True
        assert (await summaries(store))["hh-1"] is None

    # The vault is lost and restored from the backup: the erased key is back ...
    shutil.copy(tmp_path / "keys-backup.db", tmp_path / "keys.db")
    async with open_store(OLD) as store:
        assert (await summaries(store))["hh-1"] == JAPANESE_SUMMARY
        # ... until the reconcile step, which the store's record of the erasure drives.
        assert await keys.reconcile(store.engine, store.vault) == (1, 1)
        assert await summaries(store) == {"hh-1": None, "hh-2": JAPANESE_SUMMARY}
        assert await keys.reconcile(store.engine, store.vault) == (1, 0)
        assert all(r.ok for r in await store.verify_all())


async def test_the_commands_report_their_progress(
    open_store: Open, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with open_store(OLD) as store:
        for h in HOUSEHOLDS[:3]:
            await store.append(f"c-{h}", [new(consultation(h))], 0)

    def settings(previous: bytes | None) -> Settings:
        return Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'store'}.db",
            keys_database_url=f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db",
            kafka_bootstrap=["127.0.0.1:9"],
            master_key=NEW.hex(),
            previous_master_key=previous.hex() if previous else None,
            auth_secret="s" * 32,
        )

    assert await keys.rewrap_command(settings(None), 2) == 2
    assert "KYOSEI_PREVIOUS_MASTER_KEY" in capsys.readouterr().out
    assert await keys.rewrap_command(settings(OLD), 2) == 0
    out = capsys.readouterr().out
    assert "… 2 keys: 2 re-wrapped, 0 already" in out
    assert "keys rewrap: 3 re-wrapped, 0 already under KYOSEI_MASTER_KEY" in out

    assert await keys.erase_command("intake", settings(None), HOUSEHOLDS[0]) == 0
    assert await keys.reconcile_command("intake", settings(None)) == 0
    out = capsys.readouterr().out
    assert f"household {HOUSEHOLDS[0]} erased" in out
    assert "records 1 erased households; 0 of their keys" in out
    async with open_store(NEW) as store:
        assert (await summaries(store))[HOUSEHOLDS[0]] is None


async def test_rewrap_and_reconcile_on_each_database(database: Database) -> None:
    """The vault and the erasure records on SQLite and on PostgreSQL (in a schema)."""
    engine = database.engine()
    try:
        old = KeyVault(engine, OLD, cache_size=0)
        await old.create_tables()
        raw = {h: await old.key_for(h, create=True) for h in HOUSEHOLDS[:5]}
        assert await keys.erase(engine, old, HOUSEHOLDS[0]) is True

        rotating = KeyVault(engine, NEW, cache_size=0, previous_master_key=OLD)
        assert await keys.rewrap(rotating, batch=2) == (4, 0)
        assert await keys.rewrap(rotating, batch=2) == (0, 4)

        new_only = KeyVault(engine, NEW, cache_size=0)
        for h in HOUSEHOLDS[1:5]:
            opened = await new_only.key_for(h, create=False)
            nonce = b"\0" * 12
            assert opened.decrypt(nonce, raw[h].encrypt(nonce, b"x", None), None) == b"x"
        assert await keys.reconcile(engine, new_only) == (1, 0)
        assert await new_only.household_ids() == set(HOUSEHOLDS[1:5])
    finally:
        await engine.dispose()
