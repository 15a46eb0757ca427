"""Alembic migrations of a service, in its own schema on PostgreSQL.

Each service has ``migrations/`` with an ``env.py`` that calls :func:`run_env`,
and revisions under ``migrations/versions``. ``kyosei migrate <service>`` runs them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

from kyosei_events.crypto import key_metadata
from kyosei_events.database import create_engine

from .maintenance import rebuild
from .service import Service
from .settings import Settings


def upgrade(service: Service, settings: Settings) -> None:
    """Run the service's migrations to head (blocking; call from a thread in async code).

    Read models are derived from events, so a revision may reshape them freely: after
    any revision is applied to an existing store, every read model is rebuilt.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(service.migrations))
    cfg.attributes["url"] = settings.database_url
    cfg.attributes["schema"] = settings.db_schema
    before = asyncio.run(_revision(settings))
    command.upgrade(cfg, "head")
    asyncio.run(_ensure_key_vault(settings))
    after = asyncio.run(_revision(settings))
    if before is not None and before != after:
        print(f"{service.name}: migrated {before} -> {after}; rebuilding read models")
        asyncio.run(rebuild(service, settings))


async def _revision(settings: Settings) -> str | None:
    """The store's Alembic revision; None for a new database."""
    engine = create_engine(settings.database_url, schema=settings.db_schema)
    try:
        async with engine.connect() as conn:

            def read(c: Connection) -> str | None:
                if not inspect(c).has_table("alembic_version", schema=settings.db_schema):
                    return None
                table = (
                    f'"{settings.db_schema}".alembic_version'
                    if settings.db_schema and c.dialect.name == "postgresql"
                    else "alembic_version"
                )
                return c.execute(text(f"select version_num from {table}")).scalar()

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


# Services starting together on a fresh PostgreSQL database each create schemas (their
# own, the shared key vault's) and the key vault's table. Two concurrent
# `CREATE SCHEMA IF NOT EXISTS` (or `CREATE TABLE` after both checked) of one name
# collide in the catalogue (unique violations in pg_namespace, pg_type): that DDL runs
# one at a time under this transaction-scoped advisory lock, across every service.
SCHEMA_DDL_LOCK = "kyosei-schema-ddl"


def _lock_schema_ddl(connection: Connection) -> None:
    """Inside a transaction on PostgreSQL: wait for the schema DDL lock (held until it ends)."""
    connection.execute(text("select pg_advisory_xact_lock(hashtext(:k))"), {"k": SCHEMA_DDL_LOCK})


def _create_schema(connection: Connection, schema: str) -> None:
    """``CREATE SCHEMA IF NOT EXISTS`` under the schema DDL lock, committed."""
    _lock_schema_ddl(connection)
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    connection.commit()


async def _ensure_key_vault(settings: Settings) -> None:
    """The shared key vault's schema and table, created by whichever service migrates
    first; in one transaction under the schema DDL lock, so services migrating at the
    same time find them created rather than collide."""
    schema = settings.keys_db_schema
    engine = create_engine(settings.keys_database_url)
    try:
        async with engine.connect() as conn:

            def create(c: Connection) -> None:
                if c.dialect.name == "postgresql":
                    _lock_schema_ddl(c)
                    if schema:
                        c.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                        c = c.execution_options(schema_translate_map={None: schema})
                key_metadata.create_all(c)
                c.commit()

            await conn.run_sync(create)
    finally:
        await engine.dispose()


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py."""
    url: str = context.config.attributes["url"]
    schema: str | None = context.config.attributes.get("schema")

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Replicas starting together each run migrations: one at a time, and the
            # later ones find the schema at head. Released when the session ends.
            connection.execute(
                text("select pg_advisory_lock(hashtext(:k))"), {"k": f"kyosei-migrate:{schema}"}
            )
            connection.commit()
        if schema and connection.dialect.name == "postgresql":
            _create_schema(connection, schema)
            connection = connection.execution_options(schema_translate_map={None: schema})
        kwargs: dict[str, Any] = {}
        if schema and connection.dialect.name == "postgresql":
            kwargs["version_table_schema"] = schema
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            **kwargs,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(run)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())
