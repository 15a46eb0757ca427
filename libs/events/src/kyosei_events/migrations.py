"""Alembic operations for the store's tables, called from each service's migrations.

Each function is one released shape of the tables; a service's revision calls it,
and a later change to the store gets a new function called by a new revision.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def store_v1(op: Any) -> None:
    op.create_table(
        "events",
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("tx_id", sa.BigInteger, nullable=False),
        sa.Column("stream_id", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("stream_id", "version", name="events_stream_version_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("events_log_order", "events", ["tx_id", "position"])
    op.create_index("events_subject", "events", ["subject"])
    op.create_table(
        "checkpoints",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("tx_id", sa.BigInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "processed_messages",
        sa.Column("consumer", sa.String(128), primary_key=True),
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("processed_at", sa.String(32), nullable=False),
    )


def drop_store_v1(op: Any) -> None:
    op.drop_table("processed_messages")
    op.drop_table("checkpoints")
    op.drop_table("events")


def store_v2(op: Any) -> None:
    """events.partition_key: the Kafka key of every event of a stream, the subject of the
    stream's first event (a consultation's subject changes to its household's id when it
    is linked; its key does not). Existing rows are filled from their stream's first
    event. Hashes do not change: the key is not in the chain record."""
    schema = _schema(op)
    op.add_column(
        "events",
        sa.Column("partition_key", sa.String(128), nullable=False, server_default=""),
        schema=schema,
    )
    table = sa.Table(
        "events",
        sa.MetaData(),
        sa.Column("stream_id", sa.String(128)),
        sa.Column("version", sa.Integer),
        sa.Column("subject", sa.String(128)),
        sa.Column("partition_key", sa.String(128)),
    )
    earliest = table.alias("earliest")
    first_subject = (
        sa.select(earliest.c.subject)
        .where(earliest.c.stream_id == table.c.stream_id)
        .order_by(earliest.c.version)
        .limit(1)
        .scalar_subquery()
    )
    op.execute(table.update().values(partition_key=first_subject))
    if op.get_bind().dialect.name != "sqlite":  # SQLite cannot drop a default in place
        op.alter_column("events", "partition_key", server_default=None, schema=schema)


def drop_store_v2(op: Any) -> None:
    op.drop_column("events", "partition_key", schema=_schema(op))


def _schema(op: Any) -> str | None:
    """The service's schema: Alembic's column operations name their table by text, which
    the connection's schema_translate_map (kyosei_platform.migrate) does not reach."""
    translate = op.get_bind().get_execution_options().get("schema_translate_map") or {}
    schema: str | None = translate.get(None)
    return schema


def anchors_v1(op: Any) -> None:
    """Signed anchors of every stream's head and of the log (anchors.py)."""
    op.create_table(
        "anchors",
        sa.Column(
            "anchor_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
        ),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sqlite_autoincrement=True,
    )


def drop_anchors_v1(op: Any) -> None:
    op.drop_table("anchors")
