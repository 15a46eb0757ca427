"""Alembic operations for the household directory's tables, called from the
migrations of every service that keeps the directory. Each function is one released
shape of the tables; a later change gets a new function called by a new revision."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def directory_v1(op: Any) -> None:
    op.create_table(
        "directory_households",
        sa.Column("household_id", sa.String(64), primary_key=True),
        sa.Column("registered_by", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.String(40), nullable=False),
        sa.Column("merged_into", sa.String(64), index=True),
    )
    op.create_table(
        "directory_members",
        sa.Column("household_id", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("relationship", sa.String(32), nullable=False),
    )
    op.create_table(
        "directory_proxies",
        sa.Column("proxy_id", sa.String(64), primary_key=True),
        sa.Column("household_id", sa.String(64), nullable=False, index=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("proxy_member_id", sa.String(64)),
    )
    op.create_table(
        "directory_consents",
        sa.Column("consent_id", sa.String(64), primary_key=True),
        sa.Column("household_id", sa.String(64), nullable=False, index=True),
        sa.Column("member_id", sa.String(64)),
        sa.Column("given_by", sa.String(16), nullable=False),
        sa.Column("proxy_id", sa.String(64)),
        sa.Column("agencies", sa.Text, nullable=False),
        sa.Column("all_agencies", sa.Boolean, nullable=False),
        sa.Column("purposes", sa.Text, nullable=False),
        sa.Column("given_on", sa.String(10), nullable=False),
        sa.Column("withdrawn_on", sa.String(10)),
    )
    op.create_table(
        "directory_refusals",
        sa.Column("refusal_id", sa.String(64), primary_key=True),
        sa.Column("household_id", sa.String(64), nullable=False, index=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("refused_by", sa.String(16), nullable=False),
        sa.Column("proxy_id", sa.String(64)),
        sa.Column("agencies", sa.Text, nullable=False),
        sa.Column("all_agencies", sa.Boolean, nullable=False),
        sa.Column("purposes", sa.Text, nullable=False),
        sa.Column("refused_on", sa.String(10), nullable=False),
        sa.Column("recorded_by", sa.String(64)),
    )


def drop_directory_v1(op: Any) -> None:
    for name in (
        "directory_refusals",
        "directory_consents",
        "directory_proxies",
        "directory_members",
        "directory_households",
    ):
        op.drop_table(name)


def directory_v2(op: Any) -> None:
    """Members' life changes, people combined by a merge (``same_as``), and the
    duplicate candidates dismissed at registration."""
    op.add_column("directory_members", sa.Column("same_as", sa.String(64)), schema=_schema(op))
    op.create_table(
        "directory_member_changes",
        sa.Column("change_id", sa.String(64), primary_key=True),
        sa.Column("household_id", sa.String(64), nullable=False, index=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("effective_on", sa.String(10), nullable=False),
        sa.Column("detail", sa.String(32)),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("recorded_by", sa.String(64)),
        sa.Column("retracted_at", sa.String(40)),
    )
    op.create_table(
        "directory_dismissals",
        sa.Column("household_id", sa.String(64), primary_key=True),
        sa.Column("other_household_id", sa.String(64), primary_key=True, index=True),
        sa.Column("dismissed_by", sa.String(64), nullable=False),
        sa.Column("dismissed_by_staff", sa.String(64)),
        sa.Column("dismissed_at", sa.String(40), nullable=False),
    )


def drop_directory_v2(op: Any) -> None:
    op.drop_table("directory_dismissals")
    op.drop_table("directory_member_changes")
    with op.batch_alter_table("directory_members", schema=_schema(op)) as batch:
        batch.drop_column("same_as")


def _schema(op: Any) -> str | None:
    """The service's schema: Alembic's column operations name their table by text, which
    the connection's schema_translate_map (kyosei_platform.migrate) does not reach."""
    translate = op.get_bind().get_execution_options().get("schema_translate_map") or {}
    schema: str | None = translate.get(None)
    return schema
