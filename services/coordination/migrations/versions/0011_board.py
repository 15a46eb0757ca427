"""the board's read models: cases on the coordinator's board, case timelines, actions
assigned to agencies, and the outreach started for a case

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "board_cases",
        sa.Column("case_id", sa.String(80), primary_key=True),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.Column("plan_version", sa.Integer),
        sa.Column("approaches", sa.Text, nullable=False),
        sa.Column("next_review_on", sa.String(10)),
        sa.Column("flags", sa.Text, nullable=False),
        sa.Column("confidential_held", sa.Boolean, nullable=False),
        sa.Column("multi_layered_held", sa.Boolean, nullable=False),
        sa.Column("ended_member_ids", sa.Text, nullable=False),
        sa.Column("last_activity_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "timeline_entries",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(80), nullable=False, index=True),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("label_ja", sa.String(100), nullable=False),
        sa.Column("agency_id", sa.String(64)),
        sa.Column("ref_id", sa.String(80)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "assigned_actions",
        sa.Column("case_id", sa.String(80), primary_key=True),
        sa.Column("plan_version", sa.Integer, primary_key=True),
        sa.Column("action_id", sa.String(64), primary_key=True),
        sa.Column("goal_id", sa.String(64), nullable=False),
        sa.Column("responsible_agency", sa.String(64), nullable=False, index=True),
        sa.Column("due_on", sa.String(10)),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
    )
    op.create_table(
        "outreach_links",
        sa.Column("outreach_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(80), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("outreach_links")
    op.drop_table("assigned_actions")
    op.drop_table("timeline_entries")
    op.drop_table("board_cases")
