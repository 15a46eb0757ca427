"""event store and the consultations read model

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
        "consultations",
        sa.Column("consultation_id", sa.String(64), primary_key=True),
        sa.Column("household_id", sa.String(64), index=True),
        sa.Column("agency_id", sa.String(64), nullable=False, index=True),
        sa.Column("window", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("concerns", sa.Text, nullable=False),
        sa.Column("complex", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consultations")
    drop_store_v1(op)
