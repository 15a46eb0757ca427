"""Engines for the event store: SQLite (embedded default) and PostgreSQL (production).

On PostgreSQL each service has its own schema; tables are declared without one and
mapped onto it with ``schema_translate_map``, so the same code and migrations serve
every service. On SQLite each service has its own file.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# Execution option: the connection runs one read-only statement (SQLite: no transaction).
READ_ALONE = "kyosei_read_alone"


def create_engine(
    url: str, *, schema: str | None = None, pool_size: int = 10, max_overflow: int = 10
) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite:///…`` or ``postgresql+asyncpg://…``).

    On PostgreSQL the pool keeps ``pool_size`` connections and opens up to
    ``max_overflow`` more under load (closed again when returned); the relay's leader
    lock and its LISTEN each hold one of them for as long as they last.

    On SQLite (``pool_size`` does not apply) the engine has one connection: every
    transaction takes SQLite's one write lock up front (BEGIN IMMEDIATE), so only one
    can run at a time anyway, and waiting for the pooled connection queues the
    service's transactions in order inside the process instead of each polling
    SQLite's busy handler (16 concurrent writers: p99 per append ~35 ms instead of
    ~350 ms, ``make bench``). Another process (a ``kyosei`` command) still waits on the
    busy handler, up to 30 s, as before.

    A database error never shows the statement's parameters (``hide_parameters``):
    they can be a policy's opened personal fields, and the error's text goes to log
    lines and dead-letter reasons."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30},
            hide_parameters=True,
            pool_size=1,
            max_overflow=0,
            pool_timeout=30,
            # Rolled back on return only when a transaction is still open (_reset).
            pool_reset_on_return=None,
        )
        _sqlite_setup(engine)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    # No pre-ping: on asyncpg it costs three round trips per checkout, more than an
    # append itself. A connection that died with a database restart is detected when
    # used and the pool is invalidated; the request in flight fails (the relay and
    # consumers retry), and recycling bounds how long an idle connection is kept.
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
        hide_parameters=True,
    )
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


def _sqlite_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Take control of transactions: pysqlite's implicit BEGIN is deferred, and a
        # deferred transaction that reads then writes can fail under a concurrent
        # writer. BEGIN IMMEDIATE takes the write lock up front instead.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _reset(dbapi_conn: Any, _record: Any, state: Any) -> None:
        # A connection back in the pool with no transaction open (the append lane's,
        # which commits its own; a unit of work already committed) needs no rollback,
        # and skipping it saves a call on the connection's thread.
        if dbapi_conn is None or not state.asyncio_safe:
            return
        try:
            open_transaction = dbapi_conn.driver_connection.in_transaction
        except ValueError:  # closed
            return
        if open_transaction:
            dbapi_conn.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # A connection marked for one read-only statement (READ_ALONE) runs it in
        # sqlite3's autocommit, under a snapshot of its own: no write lock, and no
        # BEGIN and ROLLBACK around it (each a call on the connection's thread).
        if not conn.get_execution_options().get(READ_ALONE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
