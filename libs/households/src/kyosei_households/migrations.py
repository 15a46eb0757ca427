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
