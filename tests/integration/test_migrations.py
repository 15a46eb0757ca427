"""Alembic migrations of every service, on SQLite and in a per-service PostgreSQL schema,
and the auditor's `kyosei verify` command against a migrated store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import inspect, text

from kyosei_events import EventStore, KeyVault, NewEvent
from kyosei_events.catalogue.coordination import CaseOpened
from kyosei_events.crypto import master_key_from_hex
from kyosei_events.database import create_engine
from kyosei_platform.migrate import upgrade
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings
from tests.conftest import Database

MASTER = "ab" * 32


def settings_for(db: Database, tmp_path: Path, service: str) -> Settings:
    keys = f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db"
    return Settings(
        database_url=db.url,
        db_schema=db.schema,
        keys_database_url=keys,
        keys_db_schema=None,
        kafka_bootstrap=["127.0.0.1:9"],
        master_key=MASTER,
        auth_secret="x" * 32,
    )


async def tables_of(db: Database) -> set[str]:
    engine = create_engine(db.url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names(schema=db.schema)))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", ["intake", "coordination"])
async def test_migrations_create_the_store_and_read_models(
    database: Database, tmp_path: Path, service: str
) -> None:
    settings = settings_for(database, tmp_path, service)
    await asyncio.to_thread(upgrade, discover()[service], settings)
    tables = await tables_of(database)
    assert {"events", "checkpoints", "processed_messages", "anchors", "alembic_version"} <= tables
    assert ("consultations" if service == "intake" else "cases") in tables
    if service == "coordination":
        assert {"meetings", "meeting_reshares", "case_consultations"} <= tables
        assert {"case_review_flags", "case_ended_members", "community_issues"} <= tables
    assert "directory_households" in tables, "every service keeps the household directory"
    assert "idempotency_keys" in tables, "every service keeps the Idempotency-Keys it was sent"
    # Running again is a no-op, not an error.
    await asyncio.to_thread(upgrade, discover()[service], settings)
    engine = create_engine(database.url, schema=database.schema)
    async with engine.connect() as conn:
        table = f'"{database.schema}".alembic_version' if database.schema else "alembic_version"
        head = {"intake": "0008", "coordination": "0011"}[service]
        assert (await conn.execute(text(f"select version_num from {table}"))).scalar() == head
    await engine.dispose()


async def test_kyosei_verify_reports_a_tampered_event(database: Database, tmp_path: Path) -> None:
    settings = settings_for(database, tmp_path, "coordination")
    await asyncio.to_thread(upgrade, discover()["coordination"], settings)
    engine = create_engine(database.url, schema=database.schema)
    keys = create_engine(settings.keys_database_url)
    store = EventStore(engine, KeyVault(keys, master_key_from_hex(MASTER)))
    for n in range(3):
        opened = CaseOpened(
            case_id=f"case-{n}",
            consultation_id=f"c-{n}",
            escalated_by="a",
            concerns=["isolation"],
            opened_at=datetime.now(UTC),
        )
        await store.append(f"case-{n}", [NewEvent(opened, f"h-{n}")], 0)
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
    kyosei = [sys.executable, "-m", "kyosei_platform.cli", "verify", "coordination"]

    ok = await asyncio.to_thread(
        subprocess.run, kyosei, env=env, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert "3 streams, 3 events, 0 broken" in ok.stdout

    async with engine.begin() as conn:
        table = f'"{database.schema}".events' if database.schema else "events"
        await conn.execute(
            text(
                f"update {table} set payload = replace(payload, 'isolation', "
                "'care') where stream_id = 'case-1'"
            )
        )
    await engine.dispose()
    await keys.dispose()
    bad = await asyncio.to_thread(
        subprocess.run, kyosei, env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    assert "BROKEN case-1 at version 1" in bad.stdout
    assert "content does not match its hash" in bad.stdout


async def test_a_migration_that_reshapes_read_models_rebuilds_them(
    database: Database, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """An intake store at revision 0001 with events in it: `kyosei migrate` takes it to
    head and rebuilds the new read models from those events."""
    from alembic import command
    from alembic.config import Config

    from kyosei_events.catalogue.intake import (
        ConsultationLinkedToHousehold,
        HouseholdRegistered,
    )
    from kyosei_events.tables import events
    from kyosei_households.directory import households
    from kyosei_intake.projections import consultations
    from tests.backbone_support import consultation

    service = discover()["intake"]
    settings = settings_for(database, tmp_path, "intake")
    cfg = Config()
    cfg.set_main_option("script_location", str(service.migrations))
    cfg.attributes["url"] = settings.database_url
    cfg.attributes["schema"] = settings.db_schema
    await asyncio.to_thread(command.upgrade, cfg, "0001")
    engine = create_engine(database.url, schema=database.schema)
    keys = create_engine(settings.keys_database_url)
    vault = KeyVault(keys, master_key_from_hex(MASTER))
    await vault.create_tables()
    # Events written by the 0001 service: rows of its shape (no partition key), no
    # inline projection of today's shape. One consultation was received with its
    # household, one without and then linked to it.
    scratch_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'scratch'}.db")
    scratch = EventStore(scratch_engine, vault, name="intake")
    await scratch.create_tables()
    received, unlinked = consultation("hh-1"), consultation(None)
    cid = unlinked.consultation_id
    registered = HouseholdRegistered(
        household_id="hh-1", registered_by="agency-a", registered_at=datetime.now(UTC)
    )
    linked = ConsultationLinkedToHousehold(
        consultation_id=cid, household_id="hh-1", linked_at=datetime.now(UTC)
    )
    written = [
        *await scratch.append(
            f"consultation-{received.consultation_id}", [NewEvent(received, "hh-1")], 0
        ),
        *await scratch.append("household-hh-1", [NewEvent(registered, "hh-1")], 0),
        *await scratch.append(f"consultation-{cid}", [NewEvent(unlinked, cid)], 0),
        *await scratch.append(f"consultation-{cid}", [NewEvent(linked, "hh-1")], 1),
    ]
    await scratch_engine.dispose()
    old_shape = sa.Table(
        "events",
        sa.MetaData(),
        *(
            sa.Column(c.name, c.type)
            for c in events.c
            if c.name not in {"position", "partition_key"}
        ),
    )
    async with engine.begin() as conn:
        for rec in written:
            await conn.execute(
                old_shape.insert().values({c.name: getattr(rec, c.name) for c in old_shape.c})
            )

    await asyncio.to_thread(upgrade, service, settings)
    assert "migrated 0001 -> 0008; rebuilding read models" in capfd.readouterr().out
    async with engine.connect() as conn:
        rows = (await conn.execute(consultations.select())).mappings().all()
        directory = (await conn.execute(households.select())).mappings().all()
        keyed = (
            await conn.execute(
                sa.select(events.c.stream_id, events.c.subject, events.c.partition_key).order_by(
                    events.c.position
                )
            )
        ).all()
    assert sorted((r["consultation_id"], r["status"], r["member_ids"]) for r in rows) == sorted(
        [(received.consultation_id, "pending", "[]"), (cid, "pending", "[]")]
    )
    assert [(r["household_id"], r["merged_into"]) for r in directory] == [("hh-1", None)]
    # Every event's partition key is its stream's first subject: the linked
    # consultation's events keep its own id, though the link's subject is the household.
    assert [tuple(k) for k in keyed] == [
        (f"consultation-{received.consultation_id}", "hh-1", "hh-1"),
        ("household-hh-1", "hh-1", "hh-1"),
        (f"consultation-{cid}", cid, cid),
        (f"consultation-{cid}", "hh-1", cid),
    ]
    await engine.dispose()
    await keys.dispose()
