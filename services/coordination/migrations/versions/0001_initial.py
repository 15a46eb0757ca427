"""event store and the cases read model

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from kyosei_events.migrations import drop_store_v1, store_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    store_v1(op)
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(80), primary_key=True),
        sa.Column("household_id", sa.String(64), index=True),
        sa.Column("consultation_id", sa.String(64), nullable=False),
        sa.Column("escalated_by", sa.String(64), nullable=False, index=True),
        sa.Column("concerns", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cases")
    drop_store_v1(op)
