"""a case's life: closing (status closed, reason, date, to whom), members whose support
ended, review flags raised by members' life changes, and community issues

Revision ID: 0009
Revises: 0008
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _schema() -> str | None:
    """The service's schema: Alembic's column operations name their table by text, which
    the connection's schema_translate_map (kyosei_platform.migrate) does not reach."""
    translate: dict[Any, str] = (
        op.get_bind().get_execution_options().get("schema_translate_map") or {}
    )
    return translate.get(None)


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=_schema()) as batch:
        batch.add_column(sa.Column("closed_reason", sa.String(32)))
        batch.add_column(sa.Column("closed_on", sa.String(10)))
        batch.add_column(sa.Column("handed_to", sa.String(64)))
    op.create_table(
        "case_review_flags",
        sa.Column("case_id", sa.String(80), primary_key=True),
        sa.Column("change_id", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("occurred_on", sa.String(10), nullable=False),
        sa.Column("flagged_at", sa.String(40), nullable=False),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("reviewed_by", sa.String(64)),
    )
    op.create_table(
        "case_ended_members",
        sa.Column("case_id", sa.String(80), primary_key=True),
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("handed_to", sa.String(64)),
        sa.Column("ended_on", sa.String(10), nullable=False),
    )
    op.create_table(
        "community_issues",
        sa.Column("issue_id", sa.String(64), primary_key=True),
        sa.Column("area", sa.String(200), nullable=False, index=True),
        sa.Column("theme", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("concerns", sa.Text, nullable=False),
        sa.Column("cases_seen", sa.String(8), nullable=False),
        sa.Column("raised_by", sa.String(64), nullable=False),
        sa.Column("raised_at", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("community_issues")
    op.drop_table("case_ended_members")
    op.drop_table("case_review_flags")
    with op.batch_alter_table("cases", schema=_schema()) as batch:
        batch.drop_column("handed_to")
        batch.drop_column("closed_on")
        batch.drop_column("closed_reason")
