"""Tables of the event store, shared by every service (each in its own schema on PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

store_metadata = MetaData()

# position: the global order of the log (autoincrement; on SQLite the rowid).
# (stream_id, version) unique: the optimistic-concurrency check. Appends take no
# table lock; commit-order gaps in `position` are handled by reading the log in
# (tx_id, position) order below the oldest running transaction (see store.py).
# partition_key: since store_v2 (migrations.py).
events = Table(
    "events",
    store_metadata,
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("tx_id", BigInteger, nullable=False),
    Column("stream_id", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(128), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The Kafka key of every event of the stream: the subject of its first event, so a
    # stream whose subject changes (a consultation linked to a household) keeps one
    # partition and its order.
    Column("partition_key", String(128), nullable=False),
    UniqueConstraint("stream_id", "version", name="events_stream_version_key"),
    Index("events_log_order", "tx_id", "position"),
    Index("events_subject", "subject"),
    sqlite_autoincrement=True,
)

# Where a reader of the log (the relay, a projection) has got to.
checkpoints = Table(
    "checkpoints",
    store_metadata,
    Column("name", String(128), primary_key=True),
    Column("tx_id", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=False),
)

# Messages a consumer has processed, written in the same transaction as its effect.
processed_messages = Table(
    "processed_messages",
    store_metadata,
    Column("consumer", String(128), primary_key=True),
    Column("message_id", String(128), primary_key=True),
    Column("processed_at", String(32), nullable=False),
)

# Signed anchors of the store's heads (anchors.py): every stream's head and a running
# hash of the log, signed with the operator's Ed25519 key, which is not in the database.
anchors = Table(
    "anchors",
    store_metadata,
    Column("anchor_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("signature", String(128), nullable=False),
    sqlite_autoincrement=True,
)
