"""the meetings read model: meetings and the items re-shared between them

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meetings",
        sa.Column("meeting_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(80), nullable=False, index=True),
        sa.Column("household_id", sa.String(64), index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("convening_agency", sa.String(64), nullable=False),
        sa.Column("participants", sa.Text, nullable=False),
        sa.Column("member_ids", sa.Text, nullable=False),
        sa.Column("scheduled_for", sa.String(40), nullable=False),
        sa.Column("held_on", sa.String(10)),
        sa.Column("consent_obtained", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("corrections", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "meeting_reshares",
        sa.Column("meeting_id", sa.String(64), primary_key=True),
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("to_meeting_id", sa.String(64), primary_key=True),
        sa.Column("reshared_by", sa.String(64), nullable=False),
        sa.Column("reshared_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("meeting_reshares")
    op.drop_table("meetings")
