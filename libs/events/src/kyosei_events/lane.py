"""Group commit of the store's own appends: the append lane.

:meth:`EventStore.append <kyosei_events.store.EventStore.append>` outside a unit of work
(a store without inline projections) does not open a transaction of its own. It queues
the append here; one task per store drains the queue, and every append waiting when it
looks is written in one transaction, with one statement, on one connection it holds
while appends keep coming. One writer pays one round trip per append and nothing
else; sixteen writers share round trips and commits instead of queueing for them.

Each append keeps its own outcome. Heads come from the writer's cache or from one read
of the streams a batch needs; appends to the same stream in one batch chain onto each
other in the order they were made; an append whose expected version is already passed
fails alone with :class:`ConcurrencyError`, and so does an event too large to publish
(:class:`EventTooLarge`). When the database refuses a batch (another process wrote one
of its streams first, or an event id was used before), nothing of it is kept and each
append is tried again alone, so only the one at fault fails. A failure of the database
itself fails the batch it hit; the appends queued behind it go on, on a new connection.

The two backends use the driver below SQLAlchemy, on a connection taken from the
engine's pool:

- PostgreSQL (asyncpg): one prepared ``INSERT ... SELECT FROM unnest(...) RETURNING``
  in its implicit transaction (a single-row batch: ``INSERT ... VALUES``), so a batch
  is one round trip and atomic; every row's ``tx_id`` is that transaction's id.
- SQLite (aiosqlite): the engine's one connection (database.py), so the lane takes
  turns with the service's other transactions instead of competing for SQLite's write
  lock; a batch is ``BEGIN IMMEDIATE``, the inserts and ``COMMIT`` in one call on the
  connection's thread, made between the service's transactions (see _SqliteSession).

An append whose caller is cancelled before its batch is taken is not written; once
taken, it may commit, as any database call cancelled in flight may.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from asyncpg import UniqueViolationError  # type: ignore[import-untyped]
from prometheus_client import Histogram
from sqlalchemy import Integer, Table, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .records import ConcurrencyError, NewEvent, RecordedEvent
from .tables import events
from .writer import Head, StreamWriter, resolve_head

# The most events written in one batch: a longer queue is drained in several.
MAX_BATCH_EVENTS = 512
# How long PostgreSQL's connection is kept after a batch, for the next one.
HOLD_SECONDS = 1.0

BATCH_EVENTS = Histogram(
    "kyosei_events_append_batch_events",
    "Events written per group commit of the store's appends",
    ["store"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)

# The columns of a row as the lane sends them, in the table's order (position and
# tx_id are the database's), and those that are integers.
_COLUMNS = tuple(c.name for c in events.c if c.name not in ("position", "tx_id"))
_INTEGER_COLUMNS = {c.name for c in events.c if c.name in _COLUMNS and isinstance(c.type, Integer)}
_StoredHead = tuple[int, str, str]
_T = TypeVar("_T")


@dataclass(slots=True, eq=False)
class _Append:
    stream_id: str
    events: Sequence[NewEvent]
    expected: int | None
    future: asyncio.Future[list[RecordedEvent]]
    rows: list[dict[str, Any]] = field(default_factory=list)


class _Rejected(Exception):
    """The database refused a batch for one of its rows (a unique key): try each alone."""

    def __init__(self, statement: str, cause: Exception, event_id_taken: bool) -> None:
        super().__init__(str(cause))
        # What a unit of work's append raises for the same row, without the parameters.
        self.cause = IntegrityError(statement, None, cause, hide_parameters=True)
        self.event_id_taken = event_id_taken


class _Session(Protocol):
    """A backend's connection, held while a drain lasts."""

    async def read_heads(self, stream_ids: Sequence[str]) -> dict[str, _StoredHead]: ...

    async def insert(self, rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
        """Insert ``rows`` in one transaction: their (position, tx_id), in order.
        :class:`_Rejected` when a unique key refuses one of them."""
        ...

    def broken(self) -> None:
        """The connection failed: it must not go back to the pool."""

    async def close(self) -> None: ...


class AppendLane:
    """The queue and the draining task of one store's appends."""

    def __init__(
        self,
        engine: AsyncEngine,
        writer: StreamWriter,
        committed: Callable[[list[RecordedEvent]], None],
        *,
        name: str,
        max_batch_events: int = MAX_BATCH_EVENTS,
    ) -> None:
        """``committed`` is called with what each batch wrote, once it has committed."""
        self.engine = engine
        self.writer = writer
        self.max_batch_events = max_batch_events
        self._committed = committed
        self._dialect = engine.dialect.name
        self._batch_events = BATCH_EVENTS.labels(name)
        self._queue: deque[_Append] = deque()
        self._task: asyncio.Task[None] | None = None
        self._inline = False
        self._held: _PostgresSession | None = None
        self._sqlite: _SqliteSession | None = None
        self._held_until = 0.0
        self._hold_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sql: dict[str, str] | None = None
        # A disposed engine closes its pool: the kept connection goes with it.
        event.listen(engine.sync_engine, "engine_disposed", self._engine_disposed)

    async def append(
        self, stream_id: str, new_events: Sequence[NewEvent], expected: int | None
    ) -> list[RecordedEvent]:
        if not new_events:
            return []
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a store used from a new event loop starts over
            self._loop, self._task, self._inline = loop, None, False
            self._queue.clear()
            self._held = self._hold_timer = None
        request = _Append(stream_id, new_events, expected, loop.create_future())
        if self._task is not None or self._inline:
            # a batch is being written: this one joins the next
            self._queue.append(request)
            return await request.future
        # Nothing is being written: write this append here, with no task in between.
        self._inline = True
        try:
            await self._write_inline(request)
        finally:
            self._inline = False
            if self._queue and self._task is None:
                self._task = loop.create_task(self._drain())
        return request.future.result()

    async def _write_inline(self, request: _Append) -> None:
        session = await self._acquire()
        try:
            await self._write(session, [request])
        except BaseException:  # the database failed, or the caller was cancelled
            session.broken()
            raise
        finally:
            await self._release(session)

    # -- draining --------------------------------------------------------------------

    async def _drain(self) -> None:
        session: _Session | None = None
        batch: list[_Append] = []
        try:
            while self._queue:
                batch = self._take()
                if not batch:
                    continue
                try:
                    if session is None:
                        session = await self._acquire()
                    await self._write(session, batch)
                except Exception as exc:  # the database failed: this batch fails
                    if session is not None:
                        session.broken()
                        await self._release(session)
                        session = None
                    _fail(batch, exc)
                batch = []
        except BaseException as exc:  # cancelled: so is every append still waiting
            if session is not None:
                session.broken()
            _fail(batch, exc)
            _fail(self._queue, exc)
            self._queue.clear()
            raise
        finally:
            self._task = None
            if session is not None:
                await self._release(session)
            if self._queue:  # arrived while the connection was being returned
                self._task = asyncio.get_running_loop().create_task(self._drain())

    def _take(self) -> list[_Append]:
        """The appends waiting now, oldest first, up to the batch size (at least one);
        those whose callers have gone are dropped."""
        batch: list[_Append] = []
        count = 0
        while self._queue:
            request = self._queue[0]
            if batch and count + len(request.events) > self.max_batch_events:
                break
            self._queue.popleft()
            if not request.future.done():
                batch.append(request)
                count += len(request.events)
        return batch

    async def _write(self, session: _Session, batch: list[_Append]) -> None:
        """Write ``batch`` in one transaction; if the database refuses it, each alone."""
        ready = await self._prepare(session, batch)
        if not ready:
            return
        try:
            await self._insert(session, ready)
        except _Rejected as rejected:
            if len(ready) > 1:
                for request in ready:
                    if not request.future.done():
                        await self._write(session, [request])
                return
            (request,) = ready
            if rejected.event_id_taken:
                request.future.set_exception(rejected.cause)
            else:
                request.future.set_exception(ConcurrencyError(request.stream_id, request.expected))

    async def _prepare(self, session: _Session, batch: list[_Append]) -> list[_Append]:
        """Each append's rows, chained onto its head; the appends that failed on their
        own (their futures set) are left out of the answer."""
        unknown = [r.stream_id for r in batch if r.expected != 0 and not self._cached(r)]
        stored = await session.read_heads(sorted(set(unknown))) if unknown else {}
        pending: dict[str, Head] = {}
        ready: list[_Append] = []
        for request in batch:
            try:
                head = self.writer.known_head(request.stream_id, request.expected, pending)
                if head is None:
                    head = resolve_head(
                        request.stream_id, request.expected, stored.get(request.stream_id)
                    )
                request.rows = await self.writer.build_rows(request.stream_id, request.events, head)
            except Exception as exc:
                request.future.set_exception(exc)
                continue
            last = request.rows[-1]
            pending[request.stream_id] = (last["version"], last["hash"], last["partition_key"])
            ready.append(request)
        return ready

    def _cached(self, request: _Append) -> bool:
        try:
            return self.writer.known_head(request.stream_id, request.expected) is not None
        except ConcurrencyError:
            return True  # fails without reading anything

    async def _insert(self, session: _Session, batch: list[_Append]) -> None:
        rows = [row for request in batch for row in request.rows]
        ids = await session.insert(rows)
        recorded: list[RecordedEvent] = []
        it = iter(ids)
        for request in batch:
            mine = [
                RecordedEvent(position=p, tx_id=t, **row)
                for row, (p, t) in zip(request.rows, it, strict=False)
            ]
            recorded.extend(mine)
            if not request.future.done():
                request.future.set_result(mine)
        self._batch_events.observe(len(rows))
        self._committed(recorded)

    # -- backends --------------------------------------------------------------------

    async def _acquire(self) -> _Session:
        """A connection for a batch: on PostgreSQL the one kept from the batch before
        while appends keep coming, else one from the engine's pool."""
        if self._held is not None:
            session, self._held = self._held, None
            return session
        if self._sql is None:
            self._sql = _statements(self.engine)
        if self._dialect == "postgresql":
            return _PostgresSession(await self.engine.raw_connection(), self._sql)
        if self._sqlite is None:
            self._sqlite = _SqliteSession(self.engine, self._sql)
        return self._sqlite

    async def _release(self, session: _Session) -> None:
        """After a batch: a sound PostgreSQL connection is kept for the next batch until
        appends pause for :data:`HOLD_SECONDS` (a pooled connection fewer meanwhile);
        on SQLite, the connection is the engine's one, used between transactions."""
        if isinstance(session, _PostgresSession) and session.sound and self._held is None:
            self._held = session
            self._held_until = asyncio.get_running_loop().time() + HOLD_SECONDS
            if self._hold_timer is None:
                self._hold_timer = asyncio.get_running_loop().call_later(
                    HOLD_SECONDS, self._hold_expired
                )
            return
        with suppress(Exception):
            await session.close()

    def _hold_expired(self) -> None:
        self._hold_timer = None
        if self._held is None:
            return
        loop = asyncio.get_running_loop()
        left = self._held_until - loop.time()
        if left > 0:
            self._hold_timer = loop.call_later(left, self._hold_expired)
            return
        held, self._held = self._held, None
        held.let_go()

    def _engine_disposed(self, _engine: Any) -> None:
        if self._sqlite is not None:
            self._sqlite.broken()  # its connection is closed
        held, self._held = self._held, None
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        if held is not None:
            held.broken()  # its pool is gone: close it rather than return it
            held.let_go()


def _fail(requests: Iterable[_Append], exc: BaseException) -> None:
    for request in requests:
        if not request.future.done():
            if isinstance(exc, asyncio.CancelledError):
                request.future.cancel()
            else:
                request.future.set_exception(exc)


def _statements(engine: AsyncEngine) -> dict[str, str]:
    """The lane's SQL for this engine's dialect, with the events table's name as the
    engine maps it (a service's schema on PostgreSQL)."""
    table = _table_name(engine, events)
    names = ", ".join(_COLUMNS)
    heads = (
        f"SELECT e.stream_id, e.version, e.hash, e.partition_key FROM {table} AS e "
        f"JOIN (SELECT stream_id, max(version) AS version FROM {table} "
        "WHERE stream_id IN ({streams}) GROUP BY stream_id) AS h "
        "ON e.stream_id = h.stream_id AND e.version = h.version"
    )
    if engine.dialect.name == "postgresql":
        tx_id = "pg_current_xact_id()::text::bigint"
        values = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
        arrays = ", ".join(
            f"${i}::{'int' if c in _INTEGER_COLUMNS else 'text'}[]"
            for i, c in enumerate(_COLUMNS, start=1)
        )
        return {
            "heads": heads.replace("IN ({streams})", "= ANY($1::text[])"),
            "one": f"INSERT INTO {table} (tx_id, {names}) VALUES ({tx_id}, {values}) "
            "RETURNING position, tx_id",
            "many": f"INSERT INTO {table} (tx_id, {names}) "
            f"SELECT {tx_id}, * FROM unnest({arrays}) "
            "RETURNING position, tx_id, stream_id, version",
        }
    values = ", ".join("?" for _ in _COLUMNS)
    return {
        "heads": heads,
        "one": f"INSERT INTO {table} (tx_id, {names}) VALUES (0, {values}) RETURNING position",
    }


def _table_name(engine: AsyncEngine, table: Table) -> str:
    preparer = engine.dialect.identifier_preparer
    schema = engine.get_execution_options().get("schema_translate_map", {}).get(table.schema)
    name = preparer.quote(table.name)
    return f"{preparer.quote_schema(schema)}.{name}" if schema else name


class _PostgresSession:
    def __init__(self, raw: Any, sql: dict[str, str]) -> None:
        self._raw = raw
        self._conn: Any = raw.driver_connection  # asyncpg.Connection
        self._sql = sql
        self.sound = True

    async def read_heads(self, stream_ids: Sequence[str]) -> dict[str, _StoredHead]:
        rows = await self._conn.fetch(self._sql["heads"], list(stream_ids))
        return {r[0]: (int(r[1]), str(r[2]), str(r[3])) for r in rows}

    async def insert(self, rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
        try:
            if len(rows) == 1:
                row = rows[0]
                got = await self._conn.fetchrow(self._sql["one"], *[row[c] for c in _COLUMNS])
                assert got is not None
                return [(int(got[0]), int(got[1]))]
            columns = [[row[c] for row in rows] for c in _COLUMNS]
            result = await self._conn.fetch(self._sql["many"], *columns)
        except UniqueViolationError as exc:
            taken = "event_id" in (exc.constraint_name or "")
            raise _Rejected(self._sql["one"], exc, taken) from None
        # RETURNING's order is not promised: match the rows by (stream, version)
        ids = {(r[2], r[3]): (int(r[0]), int(r[1])) for r in result}
        return [ids[row["stream_id"], row["version"]] for row in rows]

    def broken(self) -> None:
        self.sound = False

    async def close(self) -> None:
        self.let_go()

    def let_go(self) -> None:
        """Back to the pool (closed, if it failed). Needs no await: no transaction of
        SQLAlchemy's is open on it, so returning it runs nothing on the connection."""
        if not self._raw.is_valid:
            return
        if self.sound:
            self._raw.close()
        else:
            self._raw.invalidate()


class _SqliteSession:
    """Calls on the engine's one connection, each on the connection's own thread
    (aiosqlite runs one per connection), between the service's transactions.

    A batch is one call, so no other statement can run inside it. It runs at once when
    no transaction is open on the connection, whoever has it checked out of the pool:
    one that has not begun yet starts after it. Otherwise the call is made again on the
    connection taken from the pool, which waits for that transaction to end."""

    def __init__(self, engine: AsyncEngine, sql: dict[str, str]) -> None:
        self._engine = engine
        self._sql = sql
        self._direct: Any = None  # the aiosqlite connection, as last taken from the pool

    async def read_heads(self, stream_ids: Sequence[str]) -> dict[str, _StoredHead]:
        sql = self._sql["heads"].replace("{streams}", ", ".join("?" for _ in stream_ids))

        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(sql, list(stream_ids)).fetchall()

        rows = await self._call(read)
        return {r[0]: (int(r[1]), str(r[2]), str(r[3])) for r in rows}

    async def insert(self, rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
        sql = self._sql["one"]
        params = [tuple(row[c] for c in _COLUMNS) for row in rows]

        def write(db: sqlite3.Connection) -> list[tuple[int, int]]:
            db.execute("BEGIN IMMEDIATE")
            try:
                ids = [(db.execute(sql, p).fetchone()[0], 0) for p in params]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return ids

        try:
            return await self._call(write)
        except sqlite3.IntegrityError as exc:
            raise _Rejected(sql, exc, "event_id" in str(exc)) from None

    async def _call(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        aio = self._direct
        if aio is not None:
            try:
                ran, result = await aio._execute(_when_idle, fn, aio._conn)
            except (ValueError, sqlite3.ProgrammingError):  # closed: the pool has another
                self._direct = None
            else:
                if ran:
                    return cast(_T, result)
        async with self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            taken: Any = raw.driver_connection
            self._direct = taken
            return cast(_T, await taken._execute(fn, taken._conn))

    def broken(self) -> None:
        self._direct = None

    async def close(self) -> None:
        pass


def _when_idle(fn: Callable[[sqlite3.Connection], _T], db: sqlite3.Connection) -> tuple[bool, Any]:
    """On the connection's thread: (True, what ``fn`` returns), or (False, None) when a
    transaction is open on the connection (its statements come from its holder only)."""
    if db.in_transaction:
        return False, None
    return True, fn(db)
