"""The event store: one implementation on SQLAlchemy 2 (async) for SQLite and PostgreSQL.

:class:`EventStore` appends, reads and keeps checkpoints; :class:`UnitOfWork` is one
transaction of appends, read-model writes, processed marks and checkpoints.

- ``append`` with an expected version; a conflict raises :class:`ConcurrencyError`
  (HTTP 409 at the API). The append itself (head lookup, sealing, hashing, the one
  INSERT) is writer.py's, used by both classes.
- a global ``position`` orders the log; ``read_log`` returns events in commit-safe
  order: on PostgreSQL each row carries the id of the transaction that wrote it and
  the log is read in (tx_id, position) order, only below the oldest transaction
  still running, so a reader never skips an event that commits late. On SQLite,
  writers are serialised by the database, so position order is commit order.
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

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import ColumnElement, literal, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import verification
from .codec import decode_payload
from .crypto import KeyVault
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
from .writer import StreamWriter, utc_now

_COLUMNS = [c for c in events.c]


def _row_to_recorded(row: Any) -> RecordedEvent:
    m = row._mapping
    return RecordedEvent(
        position=m["position"],
        tx_id=m["tx_id"],
        stream_id=m["stream_id"],
        version=m["version"],
        event_id=m["event_id"],
        event_type=m["event_type"],
        schema_version=m["schema_version"],
        recorded_at=m["recorded_at"],
        subject=m["subject"],
        metadata=m["metadata"],
        payload=m["payload"],
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )


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

    async def append(
        self,
        stream_id: str,
        new_events: Sequence[NewEvent],
        expected_version: int | None,
    ) -> list[RecordedEvent]:
        """Append to a stream. ``expected_version`` 0 means the stream must be new;
        ``None`` appends at whatever the head is."""
        recorded = await self.store.writer.append(
            self.conn, stream_id, new_events, expected_version
        )
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
        row = (
            await self.conn.execute(
                select(events.c.version)
                .where(events.c.stream_id == stream_id)
                .order_by(events.c.version.desc())
                .limit(1)
            )
        ).first()
        return 0 if row is None else int(row[0])

    async def mark_processed(self, consumer: str, message_id: str) -> bool:
        """Record a processed message. False when it was processed before."""
        stmt = (
            self.store.writer.insert(processed_messages)
            .values(consumer=consumer, message_id=message_id, processed_at=utc_now())
            .on_conflict_do_nothing()
        )
        result = await self.conn.execute(stmt)
        return bool(result.rowcount)

    async def save_checkpoint(
        self, name: str, cursor: LogCursor, *, forward_only: bool = True
    ) -> None:
        """Save where reader ``name`` has got to. The checkpoint only moves forward: a
        cursor at or before the saved one changes nothing (a relay that lost the lead
        and finishes a stale batch cannot rewind it). ``forward_only=False`` moves it
        anywhere (a rebuild starting over)."""
        stmt = self.store.writer.insert(checkpoints).values(
            name=name, tx_id=cursor.tx_id, position=cursor.position
        )
        newer = tuple_(checkpoints.c.tx_id, checkpoints.c.position) < tuple_(
            stmt.excluded.tx_id, stmt.excluded.position
        )
        await self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[checkpoints.c.name],
                set_={"tx_id": cursor.tx_id, "position": cursor.position},
                where=newer if forward_only else None,
            )
        )


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
    ) -> None:
        """``max_message_bytes``: the largest Kafka message an event may become; a
        larger one is refused with :class:`EventTooLarge` (None: no limit)."""
        self.engine = engine
        self.projections = list(projections)
        self.vault = vault
        self.name = name
        self.max_message_bytes = max_message_bytes
        self.dialect = engine.dialect.name
        self.writer = StreamWriter(vault, self.dialect, max_message_bytes)
        self.wakeup = Wakeup(engine)
        if self.dialect == "postgresql":
            self._horizon: ColumnElement[Any] = literal_column(
                "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            )
        else:
            self._horizon = literal(1)

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
        if self.dialect == "postgresql" and len(new_events) == 1 and not self.projections:
            # One event is one single-row INSERT, atomic on its own: run it in PostgreSQL's
            # implicit transaction rather than BEGIN ... COMMIT, two round trips fewer. The
            # unique (stream_id, version) key still decides conflicts, and tx_id is still
            # the id of the transaction that wrote the row. (Several events may be sent as
            # several INSERTs, so they keep the explicit transaction.)
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                recorded = await self.writer.append(conn, stream_id, new_events, expected_version)
            if recorded:
                self._committed(recorded)
            return recorded
        async with self.unit_of_work() as uow:
            return await uow.append(stream_id, new_events, expected_version)

    def _committed(self, appended: list[RecordedEvent]) -> None:
        self.writer.committed(appended)
        self.wakeup.committed()

    # -- reading ---------------------------------------------------------------------

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        async with self.engine.connect() as conn:
            return await _read_stream(conn, stream_id, after_version)

    async def read_log(self, after: LogCursor = START, limit: int = 1000) -> list[RecordedEvent]:
        """Committed events after ``after``, in commit-safe order, at most ``limit``."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(*_COLUMNS)
                .where(
                    tuple_(events.c.tx_id, events.c.position)
                    > tuple_(literal(after.tx_id), literal(after.position)),
                    events.c.tx_id < self._horizon,
                )
                .order_by(events.c.tx_id, events.c.position)
                .limit(limit)
            )
            return [_row_to_recorded(r) for r in rows]

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
            self.writer.remember_head(stream_id, recorded[-1].version, recorded[-1].hash)
        return [await self.decode(r) for r in recorded], (recorded[-1].version if recorded else 0)

    async def checkpoint(self, name: str) -> LogCursor:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(checkpoints.c.tx_id, checkpoints.c.position).where(
                        checkpoints.c.name == name
                    )
                )
            ).first()
        return START if row is None else LogCursor(int(row[0]), int(row[1]))

    async def save_checkpoint(
        self, name: str, cursor: LogCursor, *, forward_only: bool = True
    ) -> None:
        """Save a checkpoint; it only moves forward unless ``forward_only`` is False."""
        async with self.unit_of_work() as uow:
            await uow.save_checkpoint(name, cursor, forward_only=forward_only)

    # -- verifying -------------------------------------------------------------------

    async def verify_stream(self, stream_id: str) -> verification.ChainReport:
        """Recompute a stream's chain; report the first event whose link is broken."""
        return await verification.verify_stream(self, stream_id)

    async def verify_all(self) -> list[verification.ChainReport]:
        return await verification.verify_all(self)


async def _read_stream(
    conn: AsyncConnection, stream_id: str, after_version: int = 0
) -> list[RecordedEvent]:
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(events.c.stream_id == stream_id, events.c.version > after_version)
        .order_by(events.c.version)
    )
    return [_row_to_recorded(r) for r in rows]
