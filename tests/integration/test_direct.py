"""Statements run on the driver directly (kyosei_events.direct): the same rows, the same
transaction and the same errors as SQLAlchemy's execute, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Numeric, String, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from kyosei_events.direct import NotDirect, execute, fetch
from tests.conftest import Database

metadata = MetaData()
items = Table(
    "direct_items",
    metadata,
    Column("item_id", String(32), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("label", String(64), nullable=True),
)
defaults = Table(
    "direct_defaults",
    metadata,
    Column("item_id", String(32), primary_key=True),
    Column("n", Integer, nullable=False, default=7),
    Column("amount", Numeric(10, 2), nullable=True),
)

_INSERT = items.insert()
_BY_ID = select(items.c.n, items.c.label).where(items.c.item_id == bindparam("item_id"))
_ALL = select(items.c.item_id, items.c.n).order_by(items.c.item_id)
_BUMP = items.update().where(items.c.n < bindparam("below")).values(n=items.c.n + 1)
_RETURNING = items.insert().returning(items.c.item_id, items.c.n)


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    engine = database.engine()
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_rows_and_counts_as_sqlalchemy_gives_them(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        assert await execute(conn, _INSERT, {"item_id": "a", "n": 1, "label": "相談"}) == 1
        assert await execute(conn, _INSERT, {"item_id": "b", "n": 5}) == 1
        returned = await fetch(conn, _RETURNING, {"item_id": "c", "n": 9, "label": None})
        assert [tuple(r) for r in returned] == [("c", 9)]
        assert [tuple(r) for r in await fetch(conn, _BY_ID, {"item_id": "a"})] == [(1, "相談")]
        assert await fetch(conn, _BY_ID, {"item_id": "zz"}) == []
        assert await execute(conn, _BUMP, {"below": 6}) == 2  # a and b
    async with engine.connect() as conn:
        seen = (await conn.execute(_ALL)).all()
    assert [tuple(r) for r in seen] == [("a", 2), ("b", 6), ("c", 9)]


async def test_in_the_transaction_sqlalchemy_holds(engine: AsyncEngine) -> None:
    """A direct write is rolled back with the transaction, and SQLAlchemy's statements
    in the same transaction see it before the commit."""
    async with engine.connect() as conn:
        async with conn.begin() as tx:
            await execute(conn, _INSERT, {"item_id": "gone", "n": 1})
            assert (await conn.execute(_BY_ID, {"item_id": "gone"})).first() is not None
            await tx.rollback()
        async with conn.begin():
            await conn.execute(_INSERT, {"item_id": "kept", "n": 2})
            assert [tuple(r) for r in await fetch(conn, _BY_ID, {"item_id": "kept"})] == [(2, None)]
    async with engine.connect() as conn:
        assert [r[0] for r in (await conn.execute(_ALL)).all()] == ["kept"]


async def test_a_unique_violation_is_sqlalchemys_integrity_error(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        async with conn.begin():
            await execute(conn, _INSERT, {"item_id": "a", "n": 1})
        with pytest.raises(IntegrityError) as caught:
            async with conn.begin():
                await execute(conn, _INSERT, {"item_id": "a", "n": 2, "label": "secret"})
        assert "secret" not in str(caught.value)  # parameters hidden
        # The connection is usable again after the failed transaction.
        async with conn.begin():
            assert await execute(conn, _INSERT, {"item_id": "b", "n": 3}) == 1


async def test_on_conflict_do_nothing_counts_none(engine: AsyncEngine) -> None:
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    once = insert(items).on_conflict_do_nothing()
    async with engine.begin() as conn:
        assert await execute(conn, once, {"item_id": "a", "n": 1}) == 1
        assert await execute(conn, once, {"item_id": "a", "n": 1}) == 0


async def test_statements_that_need_sqlalchemy_are_refused(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs every statement through SQLAlchemy's execute")
    async with engine.begin() as conn:
        with pytest.raises(NotDirect, match="default"):
            await execute(conn, defaults.insert(), {"item_id": "a"})
        with pytest.raises(NotDirect, match="converting"):
            await fetch(conn, select(defaults.c.amount))
        with pytest.raises(NotDirect, match="expanding"):
            await fetch(conn, select(items.c.n).where(items.c.item_id.in_(bindparam("ids"))))


async def test_autocommit_connection_commits_each_statement(engine: AsyncEngine) -> None:
    """On PostgreSQL the driver's transaction is started as SQLAlchemy would start it:
    not at all on an AUTOCOMMIT connection (the key vault's)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the store's SQLite engine begins every transaction itself")
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await execute(conn, _INSERT, {"item_id": "a", "n": 1})
        await conn.invalidate()  # no rollback: what is there was committed by itself
    async with engine.connect() as other:
        assert (await other.execute(_BY_ID, {"item_id": "a"})).first() is not None
