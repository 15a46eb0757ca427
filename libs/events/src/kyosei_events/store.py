"""The event store: one implementation on SQLAlchemy 2 (async) for SQLite and PostgreSQL.

:class:`EventStore` appends, reads and keeps checkpoints; :class:`UnitOfWork` is one
transaction of appends, read-model writes, processed marks and checkpoints.

- ``append`` with an expected version; a conflict raises :class:`ConcurrencyError`
  (HTTP 409 at the API). The append itself (head lookup, sealing, hashing, the one
  INSERT) is writer.py's, used by both classes; the store's own appends are group
  committed by the append lane (lane.py).
- a global ``position`` orders the log; ``read_log`` returns events in commit-safe
  order: on PostgreSQL each row carries the id of the transaction that wrote it and
  the log is read in (tx_id, position) order, only below the oldest transaction
  still running in this database (transactions in other databases of the cluster
  cannot write it and do not hold it back), so a reader never skips an event that
  commits late. On SQLite, writers are serialised by the database, so position order
  is commit order.
- each stream is a SHA-256 hash chain (codec.py); ``verify_stream`` reports the
  first broken link (verification.py); signed anchors of the heads and the log
  (anchors.py, table ``anchors``) find what a chain cannot: truncation, a removed
  stream, reordered positions, a rehashed rewrite before the anchor.
- personal fields are sealed with the household key (crypto.py) before storing.
- an event whose published message would exceed ``max_message_bytes`` is refused
  (:class:`EventTooLarge`): nothing enters the outbox that Kafka would refuse.
- the store is the outbox: the relay (relay.py) publishes what it has committed, woken
  by wakeup.py.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Integer,
    bindparam,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import verification
from .codec import decode_payload
from .crypto import KeyVault
from .database import READ_ALONE
from .direct import execute, fetch
from .lane import AppendLane
from .records import (
    DEFAULT_MAX_MESSAGE_BYTES,
    START,
    DecodedEvent,
    LogCursor,
    Metadata,
    NewEvent,
    RecordedEvent,
)
from .tables import checkpoints, events, processed_messages
from .wakeup import Wakeup
from .writer import HEAD_CACHE_SIZE, StreamWriter, utc_now

_COLUMNS = [c for c in events.c]


_NAMES = tuple(c.key for c in _COLUMNS)


def _row_to_recorded(row: Sequence[Any], offset: int = 0) -> RecordedEvent:
    """An event from a row of ``_COLUMNS`` (after ``offset`` other columns)."""
    return RecordedEvent(**dict(zip(_NAMES, row[offset:], strict=True)))


class InlineProjection(Protocol):
    """A read model updated in the transaction of every append (see projection.py)."""

    name: str

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None: ...


class UnitOfWork:
    """One database transaction: appends, read-model writes, processed marks, checkpoints."""

    def __init__(self, store: EventStore, conn: AsyncConnection) -> None:
        self.store = store
        self.conn = conn
        self.appended: list[RecordedEvent] = []
        self._writer_lock = False

    def _writer_lock_to_take(self) -> str | None:
        """Before the first append of a store with inline projections, on PostgreSQL:
        the read models' lock, which the append's INSERT takes in shared mode until
        commit (in the same round trip), so that appends run side by side but never
        while a rebuild holds it exclusively (see ``hold_writers_out``). The INSERT
        takes it before it writes a row, so a waiting writer has written no event a
        rebuild could miss. (On SQLite every transaction holds the one write lock:
        BEGIN IMMEDIATE.)"""
        if self._writer_lock or not self.store.projections or self.store.dialect != "postgresql":
            return None
        return self.store.read_model_lock

    async def hold_writers_out(self) -> None:
        """Until this transaction ends, no append of this service updates its read models:
        on PostgreSQL the read models' lock in exclusive mode (it waits for the appends
        in progress to commit); on SQLite this transaction already holds the write lock.
        A rebuild resets and replays under it, so live appends neither collide with the
        replay nor are lost or applied twice; they wait until it commits."""
        if self.store.dialect == "postgresql":
            await self.conn.execute(_EXCLUSIVE_LOCK, {"key": self.store.read_model_lock})

    async def read_committed_log(
        self, after: LogCursor = START, limit: int = 1000
    ) -> list[RecordedEvent]:
        """Events after ``after`` in log order, read in this transaction without the read
        horizon: only for a transaction that holds writers out (``hold_writers_out``),
        where no append is in progress, so every event there will ever be before it is
        committed and visible (a writer waiting for the lock may hold the horizon back,
        and it cannot commit before this transaction does)."""
        rows = await self.conn.execute(
            select(*_COLUMNS)
            .where(
                tuple_(events.c.tx_id, events.c.position)
                > tuple_(literal(after.tx_id), literal(after.position))
            )
            .order_by(events.c.tx_id, events.c.position)
            .limit(limit)
        )
        return [_row_to_recorded(r) for r in rows]

    async def append(
        self,
        stream_id: str,
        new_events: Sequence[NewEvent],
        expected_version: int | None,
    ) -> list[RecordedEvent]:
        """Append to a stream. ``expected_version`` 0 means the stream must be new;
        ``None`` appends at whatever the head is."""
        recorded = await self.store.writer.append(
            self.conn, stream_id, new_events, expected_version, lock=self._writer_lock_to_take()
        )
        if recorded:
            self._writer_lock = True  # taken by this INSERT, or not needed
        self.appended.extend(recorded)
        if self.store.projections:
            # Inline projections: the read model changes in the same transaction as
            # the append, so an API read right after a write sees it.
            decoded = [
                DecodedEvent(rec, new.event, new.metadata, frozenset())
                for rec, new in zip(recorded, new_events, strict=True)
            ]
            for projection in self.store.projections:
                await projection.apply(self, decoded)
        return recorded

    async def load(self, stream_id: str) -> tuple[list[DecodedEvent], int]:
        """A stream's events, decoded, and its version, read inside this transaction (on
        SQLite another connection would wait for this transaction's write lock)."""
        return await self.store.decode_stream(stream_id, await _read_stream(self.conn, stream_id))

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 if new), read inside this transaction."""
        rows = await fetch(self.conn, self.store.sql.stream_version, {"stream_id": stream_id})
        return int(rows[0][0]) if rows else 0

    async def mark_processed(self, consumer: str, message_id: str) -> bool:
        """Record a processed message. False when it was processed before."""
        marked = await execute(
            self.conn,
            self.store.sql.mark_processed,
            {"consumer": consumer, "message_id": message_id, "processed_at": utc_now()},
        )
        return bool(marked)

    async def save_checkpoint(
        self, name: str, cursor: LogCursor, *, forward_only: bool = True
    ) -> None:
        """Save where reader ``name`` has got to. The checkpoint only moves forward: a
        cursor at or before the saved one changes nothing (a relay that lost the lead
        and finishes a stale batch cannot rewind it). ``forward_only=False`` moves it
        anywhere (a rebuild starting over)."""
        await execute(
            self.conn,
            self.store.sql.save_checkpoint[forward_only],
            _checkpoint_params(name, cursor),
        )


def _checkpoint_params(name: str, cursor: LogCursor) -> dict[str, Any]:
    return {"name": name, "tx_id": cursor.tx_id, "position": cursor.position}


class _Statements:
    """The store's frequent statements, built once per dialect: a statement built per
    call has its cache key generated again every time, which for the log's read costs
    more than the round trip. Values come as bound parameters."""

    def __init__(self, dialect: str) -> None:
        after = tuple_(events.c.tx_id, events.c.position) > tuple_(
            bindparam("after_tx", type_=BigInteger), bindparam("after_position", type_=BigInteger)
        )
        log = select(*_COLUMNS).where(after)
        if dialect == "postgresql":
            log = log.where(events.c.tx_id < _PG_HORIZON)
        self.read_log = log.order_by(events.c.tx_id, events.c.position).limit(
            bindparam("limit", type_=Integer)
        )
        self.head = head = select(func.coalesce(func.max(events.c.position), 0))
        batch = self.read_log.subquery("batch")
        with_head = select(head.label("head")).subquery("head")
        self.read_log_and_head = (
            select(with_head.c.head, *batch.c)
            .select_from(with_head.outerjoin(batch, true()))
            .order_by(batch.c.tx_id, batch.c.position)
        )
        self.stream_version = (
            select(events.c.version)
            .where(events.c.stream_id == bindparam("stream_id"))
            .order_by(events.c.version.desc())
            .limit(1)
        )
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        self.mark_processed = insert(processed_messages).on_conflict_do_nothing()
        self.checkpoint = select(checkpoints.c.tx_id, checkpoints.c.position).where(
            checkpoints.c.name == bindparam("name")
        )
        upsert = insert(checkpoints)
        newer = tuple_(checkpoints.c.tx_id, checkpoints.c.position) < tuple_(
            upsert.excluded.tx_id, upsert.excluded.position
        )
        moved = {"tx_id": upsert.excluded.tx_id, "position": upsert.excluded.position}
        self.save_checkpoint = {
            forward: upsert.on_conflict_do_update(
                index_elements=[checkpoints.c.name],
                set_=moved,
                where=newer if forward else None,
            )
            for forward in (True, False)
        }


@functools.cache
def _statements(dialect: str) -> _Statements:
    return _Statements(dialect)


def _log_params(after: LogCursor, limit: int) -> dict[str, Any]:
    return {"after_tx": after.tx_id, "after_position": after.position, "limit": limit}


class EventStore:
    """Append-only, hash-chained event streams with a commit-safe global log."""

    def __init__(
        self,
        engine: AsyncEngine,
        vault: KeyVault,
        *,
        name: str = "events",
        projections: Sequence[InlineProjection] = (),
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        head_cache_size: int = HEAD_CACHE_SIZE,
    ) -> None:
        """``max_message_bytes``: the largest Kafka message an event may become; a
        larger one is refused with :class:`EventTooLarge` (None: no limit).
        ``head_cache_size``: how many streams' heads to keep in memory (least recently
        appended go first; 0 reads the head before every append)."""
        self.engine = engine
        self.projections = list(projections)
        self.vault = vault
        self.name = name
        self.max_message_bytes = max_message_bytes
        self.dialect = engine.dialect.name
        self.sql = _statements(self.dialect)
        self.writer = StreamWriter(
            vault, self.dialect, max_message_bytes, head_cache_size, name=name
        )
        self.wakeup = Wakeup(engine)
        self.lane = AppendLane(engine, self.writer, self._committed, name=name)
        # The advisory lock between appends (shared) and read-model rebuilds (exclusive),
        # one per service and schema: the same for the service and `kyosei rebuild`.
        schema = engine.get_execution_options().get("schema_translate_map", {}).get(None)
        self.read_model_lock = f"kyosei-read-models:{schema or ''}:{name}"

    # -- wiring ----------------------------------------------------------------------

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (in-process, no I/O) after every commit that appended."""
        self.wakeup.on_commit(listener)

    def notify_channel(self, channel: str) -> None:
        """On PostgreSQL, NOTIFY this channel after commits, for relays in other processes."""
        self.wakeup.use_channel(channel)

    async def create_tables(self) -> None:
        """Create the store's tables (tests and the embedded default; production uses Alembic)."""
        from .tables import store_metadata

        async with self.engine.begin() as conn:
            await conn.run_sync(store_metadata.create_all)

    # -- writing ---------------------------------------------------------------------

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        async with self.engine.connect() as conn:
            uow = UnitOfWork(self, conn)
            async with conn.begin():
                yield uow
        if uow.appended:
            self._committed(uow.appended)

    async def append(
        self,
        stream_id: str,
        new_events: Sequence[NewEvent],
        expected_version: int | None = None,
    ) -> list[RecordedEvent]:
        """Append to a stream in a transaction of its own. Without inline projections
        the append goes through the append lane (lane.py): group commit with the
        appends made at the same time, one round trip on its own. With them, a unit of
        work, so that the read models change in the same transaction."""
        if not self.projections:
            return await self.lane.append(stream_id, new_events, expected_version)
        async with self.unit_of_work() as uow:
            return await uow.append(stream_id, new_events, expected_version)

    def _committed(self, appended: list[RecordedEvent]) -> None:
        self.writer.committed(appended)
        self.wakeup.committed()

    # -- reading ---------------------------------------------------------------------

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        async with self.engine.connect() as conn:
            return await _read_stream(conn, stream_id, after_version)

    async def horizon(self) -> int:
        """The read horizon: every event with a lower ``tx_id`` is committed (or was
        rolled back) and visible to any statement that starts from now on."""
        if self.dialect != "postgresql":
            return _NO_HORIZON
        async with self._reading() as conn:
            return int((await conn.execute(select(_PG_HORIZON))).scalar_one())

    async def read_log(self, after: LogCursor = START, limit: int = 1000) -> list[RecordedEvent]:
        """Committed events after ``after``, in commit-safe order, at most ``limit``. On
        PostgreSQL one statement on its own (no transaction around it): the rows and the
        horizon they stop at under one snapshot (see _PG_HORIZON)."""
        async with self._reading() as conn:
            rows = await fetch(conn, self.sql.read_log, _log_params(after, limit))
            return [_row_to_recorded(r) for r in rows]

    async def read_log_and_head(
        self, after: LogCursor = START, limit: int = 1000
    ) -> tuple[list[RecordedEvent], int]:
        """:meth:`read_log`, and the log's highest position under the same snapshot
        (0 when empty), in one statement: the relay tells from it whether a read stopped
        short of a committed event (held back by the horizon)."""
        async with self._reading() as conn:
            rows = await fetch(conn, self.sql.read_log_and_head, _log_params(after, limit))
        # The head, then an event's columns (none when there is no event).
        found = [_row_to_recorded(r, 1) for r in rows if r[1] is not None]
        return found, int(rows[0][0])

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one statement, outside any transaction: on PostgreSQL one
        round trip, no BEGIN and ROLLBACK around it; on SQLite no write lock, and one
        call on the connection's thread instead of three."""
        async with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                await conn.execution_options(**{READ_ALONE: True})
            yield conn

    async def head_position(self) -> int:
        """The log's highest position (0 when empty)."""
        async with self._reading() as conn:
            return int((await conn.execute(self.sql.head)).scalar_one())

    async def read_positions(self, after: int, limit: int = 1000) -> list[RecordedEvent]:
        """Committed events with a position above ``after``, in position order (for
        republishing from a position an operator names; readers that must never skip
        a late commit use :meth:`read_log`)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(*_COLUMNS)
                .where(events.c.position > after)
                .order_by(events.c.position)
                .limit(limit)
            )
            return [_row_to_recorded(r) for r in rows]

    async def unread_up_to(self, after: LogCursor, position: int) -> int:
        """How many committed events at or below ``position`` lie after ``after`` in log
        order: events a reader has not had yet, though they may still be held back
        behind the horizon by a transaction that has not committed."""
        async with self.engine.connect() as conn:
            count = (
                await conn.execute(
                    select(func.count()).where(
                        events.c.position <= position,
                        tuple_(events.c.tx_id, events.c.position)
                        > tuple_(literal(after.tx_id), literal(after.position)),
                    )
                )
            ).scalar()
        return int(count or 0)

    async def read_subject(self, subject: str) -> list[RecordedEvent]:
        """Every event about one household (or other subject), in log order."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(*_COLUMNS).where(events.c.subject == subject).order_by(events.c.position)
            )
            return [_row_to_recorded(r) for r in rows]

    async def stream_ids(self) -> list[str]:
        """Every stream id, in order."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(events.c.stream_id).distinct().order_by("stream_id"))
            return [r[0] for r in rows]

    async def decode(self, recorded: RecordedEvent) -> DecodedEvent:
        event, erased = await decode_payload(
            self.vault,
            event_type=recorded.event_type,
            schema_version=recorded.schema_version,
            subject=recorded.subject,
            event_id=recorded.event_id,
            payload=recorded.payload,
        )
        meta = json.loads(recorded.metadata)
        return DecodedEvent(recorded, event, Metadata(**meta), erased)

    async def load(self, stream_id: str) -> tuple[list[DecodedEvent], int]:
        """A stream's events, decoded, and its version (for the next expected_version)."""
        return await self.decode_stream(stream_id, await self.read_stream(stream_id))

    async def decode_stream(
        self, stream_id: str, recorded: list[RecordedEvent]
    ) -> tuple[list[DecodedEvent], int]:
        """A stream's recorded events decoded, and its version; remembers its head."""
        if recorded:
            last = recorded[-1]
            self.writer.remember_head(stream_id, last.version, last.hash, last.partition_key)
        return [await self.decode(r) for r in recorded], (recorded[-1].version if recorded else 0)

    async def checkpoint(self, name: str) -> LogCursor:
        async with self._reading() as conn:
            rows = await fetch(conn, self.sql.checkpoint, {"name": name})
        return LogCursor(int(rows[0][0]), int(rows[0][1])) if rows else START

    async def save_checkpoint(
        self, name: str, cursor: LogCursor, *, forward_only: bool = True
    ) -> None:
        """Save a checkpoint; it only moves forward unless ``forward_only`` is False. On
        PostgreSQL one statement on its own (its own transaction, one round trip)."""
        if self.dialect == "postgresql":
            async with self._reading() as conn:
                await execute(
                    conn, self.sql.save_checkpoint[forward_only], _checkpoint_params(name, cursor)
                )
            return
        async with self.unit_of_work() as uow:
            await uow.save_checkpoint(name, cursor, forward_only=forward_only)

    # -- verifying -------------------------------------------------------------------

    async def verify_stream(self, stream_id: str) -> verification.ChainReport:
        """Recompute a stream's chain; report the first event whose link is broken."""
        return await verification.verify_stream(self, stream_id)

    async def verify_all(self) -> list[verification.ChainReport]:
        return await verification.verify_all(self)


# SQLite: writers are serialised and tx_id is always 0, so everything is below this.
_NO_HORIZON = 1

_EXCLUSIVE_LOCK = text("select pg_advisory_xact_lock(hashtext(:key))")

# The read horizon on PostgreSQL: the oldest transaction that may still write this
# database, as a 64-bit transaction id, computed in the statement that reads the rows, so
# both use one snapshot S: least(xmax(S), the lowest id in xip(S) that is not the id of
# a transaction of another database). Transactions of other databases of the cluster
# cannot write this store's table (a session never changes database), so they do not
# hold the log back; any other transaction running at S might (whatever it has written
# so far, its id was fixed when it first wrote anything), and so might a prepared
# transaction of this database. That includes other services' schemas of the same
# database: which tables a running transaction will still write is not known.
#
# Correctness: an event whose tx_id T is below the horizon is below xmax(S), so T either
# ended before S (its rows are visible to S, or it rolled back) or is in xip(S) and was
# then, when pg_stat_activity or pg_prepared_xacts was read after S, the transaction of
# another database, which cannot have written it. So a reader never moves its cursor
# past an event that commits later. What is only known by elimination errs the safe
# way: a transaction of another database that ended between S and that read, or whose
# id pg_stat_activity does not show, holds the log back until the next read.
_PG_HORIZON = literal_column(
    """(
    SELECT least(
        pg_snapshot_xmax(s)::text::bigint,
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s) AS x
         WHERE x::xid NOT IN (
             SELECT backend_xid FROM pg_stat_activity
             WHERE datname IS DISTINCT FROM current_database() AND backend_xid IS NOT NULL
             UNION ALL
             SELECT transaction FROM pg_prepared_xacts
             WHERE database IS DISTINCT FROM current_database())))
    FROM pg_current_snapshot() AS s)""",
    BigInteger,
)


_READ_STREAM = (
    select(*_COLUMNS)
    .where(
        events.c.stream_id == bindparam("stream_id"),
        events.c.version > bindparam("after_version", type_=Integer),
    )
    .order_by(events.c.version)
)


async def _read_stream(
    conn: AsyncConnection, stream_id: str, after_version: int = 0
) -> list[RecordedEvent]:
    rows = await fetch(conn, _READ_STREAM, {"stream_id": stream_id, "after_version": after_version})
    return [_row_to_recorded(r) for r in rows]
