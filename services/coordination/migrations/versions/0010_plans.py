"""the plans read model: plan versions, the actions of each version, reviews, and the
requests a case made to the other pillars

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_versions",
        sa.Column("case_id", sa.String(80), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("adopted_on", sa.String(10), nullable=False),
        sa.Column("review_on", sa.String(10), nullable=False),
        sa.Column("meeting_id", sa.String(64)),
        sa.Column("adopted_by", sa.String(64), nullable=False),
        sa.Column("adopted_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "plan_actions",
        sa.Column("case_id", sa.String(80), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("action_id", sa.String(64), primary_key=True),
        sa.Column("goal_id", sa.String(64), nullable=False),
        sa.Column("responsible_agency", sa.String(64), nullable=False, index=True),
        sa.Column("due_on", sa.String(10)),
    )
    op.create_table(
        "plan_reviews",
        sa.Column("review_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(80), nullable=False, index=True),
        sa.Column("plan_version", sa.Integer, nullable=False),
        sa.Column("reviewed_on", sa.String(10), nullable=False),
        sa.Column("next_review_on", sa.String(10), nullable=False),
        sa.Column("goal_progress", sa.Text, nullable=False),
        sa.Column("reviewed_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "case_requests",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(80), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("action_id", sa.String(64)),
        sa.Column("to_agency", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    for table in ("case_requests", "plan_reviews", "plan_actions", "plan_versions"):
        op.drop_table(table)
