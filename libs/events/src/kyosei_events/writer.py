"""The append path, shared by the store's append lane (lane.py) and its units of work.

:class:`StreamWriter` finds the head a stream's new events chain onto (from a cache of
recently written heads when the expected version matches it, else from the table),
seals personal fields with the household key, hashes each event onto the chain
(codec.py) and writes them on the caller's connection: on PostgreSQL a row a statement
on the driver (direct.py) for the few events of an append, in one INSERT otherwise. No table-wide
lock: the unique (stream_id, version) key is the concurrency check. Every event of a
stream gets the stream's partition key (its Kafka key): the subject of its first event,
kept with the head. On PostgreSQL
each row records the id of the transaction that wrote it (``tx_id``), which the
store's log reads order by.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import ColumnElement, bindparam, literal, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from .canonical import canonical_text
from .codec import GENESIS, link_hash, record_of
from .crypto import KeyVault
from .direct import fetch
from .records import (
    MESSAGE_OVERHEAD,
    ConcurrencyError,
    EventTooLarge,
    NewEvent,
    RecordedEvent,
)
from .tables import events

# What a stream's next event chains onto: its version, hash and partition key (None:
# the stream is new, and its first event's subject becomes the key).
Head = tuple[int, str, str | None]
NEW_STREAM: Head = (0, GENESIS, None)

# The text columns a published message carries (as payload, key or headers; the
# metadata's values become headers; the event type is in the type and the schema's
# address, the event id in the id and the default correlation id), and a bound on what
# it carries besides them: header names, constants, the two hashes, version numbers.
_SIZED_COLUMNS = (
    "payload",
    "metadata",
    "stream_id",
    "event_id",
    "event_id",
    "event_type",
    "event_type",
    "subject",
    "partition_key",
    "recorded_at",
)
_FIXED_HEADER_BYTES = 1024

# Stream heads kept in memory per store (about 390 bytes each): an append to a stream
# whose head is cached skips reading it. The least recently appended go first.
HEAD_CACHE_SIZE = 100_000

# An append of at most this many events in a unit of work is written on PostgreSQL a
# row a statement on the driver (direct.py); a longer one in one statement through
# SQLAlchemy (several VALUES rows), fewer round trips.
DIRECT_ROWS = 8

APPENDED = Counter(
    "kyosei_events_appended_total",
    "Events appended to the store and committed, by event type",
    ["store", "event_type"],
)


def utc_now() -> str:
    """The current time as the store writes it (``recorded_at``, ``processed_at``)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class StreamWriter:
    """Appends hash-chained events to streams; keeps a cache of stream heads."""

    def __init__(
        self,
        vault: KeyVault,
        dialect: str,
        max_message_bytes: int | None = None,
        head_cache_size: int = HEAD_CACHE_SIZE,
        *,
        name: str = "events",
    ) -> None:
        """``name``: the store's, the label of ``kyosei_events_appended_total``."""
        if head_cache_size < 0:
            raise ValueError("the head cache size must be 0 or more")
        self.vault = vault
        self.name = name
        self.head_cache_size = head_cache_size
        self.dialect = dialect
        self.max_message_bytes = max_message_bytes
        # stream id -> (version, hash, partition key) of its head
        self._heads: OrderedDict[str, Head] = OrderedDict()
        self._appended: dict[str, Any] = {}  # event type -> its APPENDED child
        if dialect == "postgresql":
            tx_id: ColumnElement[Any] = literal_column("pg_current_xact_id()::text::bigint")
        else:
            tx_id = literal(0)
        # Built once: a statement built per append regenerates its cache key every time.
        self._insert_events = (
            events.insert()
            .values(tx_id=tx_id)
            .returning(events.c.position, events.c.tx_id, sort_by_parameter_order=True)
        )
        # The same INSERT taking a shared advisory lock first (see _insert_locking).
        self._locking_inserts: dict[str, Any] = {}
        self._select_head = (
            select(events.c.version, events.c.hash, events.c.partition_key)
            .where(events.c.stream_id == bindparam("stream_id"))
            .order_by(events.c.version.desc())
            .limit(1)
        )

    def _insert_locking(self, lock: str) -> Any:
        """The INSERT of events that takes the transaction-level shared advisory lock
        ``lock`` (PostgreSQL) before it writes a row: in the same round trip, not a
        statement of its own. Each row's ``tx_id`` is read after the lock is granted, so
        no row is written while another transaction holds the lock exclusively."""
        stmt = self._locking_inserts.get(lock)
        if stmt is None:
            quoted = lock.replace("'", "''")
            tx_id: ColumnElement[Any] = literal_column(
                "(SELECT pg_current_xact_id()::text::bigint "
                f"FROM pg_advisory_xact_lock_shared(hashtext('{quoted}')))"
            )
            stmt = (
                events.insert()
                .values(tx_id=tx_id)
                .returning(events.c.position, events.c.tx_id, sort_by_parameter_order=True)
            )
            self._locking_inserts[lock] = stmt
        return stmt

    def insert(self, table: Any) -> Any:
        """An INSERT into ``table`` in this dialect (with ``on_conflict_do_…``)."""
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    async def append(
        self,
        conn: AsyncConnection,
        stream_id: str,
        new_events: Sequence[NewEvent],
        expected: int | None,
        *,
        lock: str | None = None,
    ) -> list[RecordedEvent]:
        """Write ``new_events`` after version ``expected`` (0: a new stream, None: the
        head) on ``conn``; :class:`ConcurrencyError` if the stream is not there. Call
        :meth:`committed` once the transaction has committed. ``lock`` (PostgreSQL): a
        shared advisory lock the INSERT takes, until the transaction ends, before it
        writes anything."""
        if not new_events:
            return []
        head = self.known_head(stream_id, expected)
        if head is None:
            head = resolve_head(stream_id, expected, await self._read_head(conn, stream_id))
        rows = await self.build_rows(stream_id, new_events, head)
        try:
            insert = self._insert_events if lock is None else self._insert_locking(lock)
            if self.dialect == "postgresql" and len(rows) <= DIRECT_ROWS:
                # On the driver (direct.py), a row a statement: the rows of one
                # append are few, each statement far cheaper than SQLAlchemy's one.
                ids = [(await fetch(conn, insert, row))[0] for row in rows]
            else:
                ids = list((await conn.execute(insert, rows)).all())
        except IntegrityError as exc:
            if "event_id" in str(exc.orig):
                raise
            raise ConcurrencyError(stream_id, expected) from None
        return [
            RecordedEvent(position=int(p), tx_id=int(t), **row)
            for (p, t), row in zip(ids, rows, strict=True)
        ]

    def known_head(
        self, stream_id: str, expected: int | None, pending: Mapping[str, Head] | None = None
    ) -> Head | None:
        """The head to chain onto, when it is known without reading the table: a new
        stream's, a cached head at ``expected``, or the head that appends ``pending``
        ahead of this one in the same transaction will leave. None: read the table.
        :class:`ConcurrencyError` when the known head is already past ``expected``."""
        head = pending.get(stream_id) if pending is not None else None
        if head is None:
            if expected is None:
                return None  # a cached head may be stale: another process may have written
            head = self._heads.get(stream_id)
            if head is None:
                return NEW_STREAM if expected == 0 else None
        if expected is None or head[0] == expected:
            return head
        if head[0] > expected:
            raise ConcurrencyError(stream_id, expected, head[0])
        return None  # the table may be further on than what is known here

    async def build_rows(
        self, stream_id: str, new_events: Sequence[NewEvent], head: Head
    ) -> list[dict[str, Any]]:
        """The rows of ``new_events`` chained onto ``head``: personal fields sealed with
        the household key, each hashed onto the one before; an event too large to
        publish raises :class:`EventTooLarge`."""
        version, prev, key = head
        partition_key = key if key is not None else new_events[0].subject
        rows: list[dict[str, Any]] = []
        now = utc_now()
        for new in new_events:
            version += 1
            ev = new.event
            payload = ev.model_dump(mode="json")
            personal = ev.personal_fields()
            if personal:
                payload = await self.vault.seal(new.subject, new.event_id, payload, personal)
            columns: dict[str, Any] = {
                "stream_id": stream_id,
                "version": version,
                "event_id": new.event_id,
                "event_type": ev.event_type,
                "schema_version": ev.schema_version,
                "recorded_at": now,
                "subject": new.subject,
                "metadata": canonical_text(new.metadata.as_dict()),
                "payload": canonical_text(payload),
            }
            hash_ = link_hash(prev, record_of(**columns))
            rows.append(
                {**columns, "prev_hash": prev, "hash": hash_, "partition_key": partition_key}
            )
            prev = hash_
            if self.max_message_bytes is not None:
                self._check_size(rows[-1])
        return rows

    def _check_size(self, row: dict[str, Any]) -> None:
        """Refuse an event whose published message would exceed the limit: stored, it
        would stop the relay (Kafka refuses it), so it must never enter the outbox."""
        assert self.max_message_bytes is not None
        limit = self.max_message_bytes - MESSAGE_OVERHEAD
        # An upper bound first, from character counts (at most 4 UTF-8 bytes each; the
        # headers carry these columns, hashes and numbers): most events are far below
        # the limit and skip building their message.
        chars = sum(len(row[c]) for c in _SIZED_COLUMNS)
        if 4 * chars + _FIXED_HEADER_BYTES <= limit:
            return
        size = RecordedEvent(position=0, tx_id=0, **row).message_size() + MESSAGE_OVERHEAD
        if size > self.max_message_bytes:
            raise EventTooLarge(row["stream_id"], row["event_type"], size, self.max_message_bytes)

    def committed(self, appended: Sequence[RecordedEvent]) -> None:
        """``appended`` has committed: remember the new heads and count the events."""
        for rec in appended:
            counter = self._appended.get(rec.event_type)
            if counter is None:
                counter = self._appended[rec.event_type] = APPENDED.labels(
                    self.name, rec.event_type
                )
            counter.inc()
            self._remember(rec.stream_id, rec.version, rec.hash, rec.partition_key)

    def remember_head(self, stream_id: str, version: int, hash_: str, partition_key: str) -> None:
        """A stream's head as read: the next append after it skips a query."""
        self._remember(stream_id, version, hash_, partition_key)

    def _remember(self, stream_id: str, version: int, hash_: str, partition_key: str) -> None:
        # Bounded here, on every write to the cache: a process that only reads (loads
        # aggregates, never appends) must not grow it either.
        if self.head_cache_size == 0:
            return
        self._heads[stream_id] = (version, hash_, partition_key)
        self._heads.move_to_end(stream_id)
        while len(self._heads) > self.head_cache_size:
            self._heads.popitem(last=False)

    def cached_heads(self) -> int:
        """How many stream heads are held in memory now (at most ``head_cache_size``)."""
        return len(self._heads)

    async def _read_head(
        self, conn: AsyncConnection, stream_id: str
    ) -> tuple[int, str, str] | None:
        rows = await fetch(conn, self._select_head, {"stream_id": stream_id})
        return (int(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None


def resolve_head(stream_id: str, expected: int | None, stored: tuple[int, str, str] | None) -> Head:
    """The head to chain onto, given the stream's newest stored event (None: no event):
    :class:`ConcurrencyError` unless it is at ``expected`` (None: wherever it is)."""
    if stored is None:
        if expected:
            raise ConcurrencyError(stream_id, expected)
        return NEW_STREAM
    if expected is not None and stored[0] != expected:
        raise ConcurrencyError(stream_id, expected, stored[0])
    return stored
