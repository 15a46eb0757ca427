"""consultations keep unmet-need types, the place, the review date and the outreach;
community places of agencies

The consultations read model is created in its new shape (a longer status for the new
outcomes, the month it was received for the monthly figures) and the agencies' community
places get a table. Read models are derived from events: ``kyosei migrate`` rebuilds
them after this revision.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _consultations(*, figures: bool) -> None:
    op.create_table(
        "consultations",
        sa.Column("consultation_id", sa.String(64), primary_key=True),
        sa.Column("household_id", sa.String(64), index=True),
        sa.Column("member_ids", sa.Text, nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False, index=True),
        sa.Column("window", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("concerns", sa.Text, nullable=False),
        sa.Column("complex", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(24 if figures else 16), nullable=False),
        sa.Column("escalated", sa.Boolean, nullable=False),
        sa.Column("returned", sa.Boolean, nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False, index=True),
        sa.Column("outcome_at", sa.String(40)),
        sa.Column("concern_report_id", sa.String(64)),
        *(
            [
                sa.Column("unmet_needs", sa.Text, nullable=False),
                sa.Column("place_id", sa.String(64)),
                sa.Column("received_month", sa.String(7), nullable=False, index=True),
                sa.Column("review_on", sa.String(10), index=True),
                sa.Column("outreach_id", sa.String(64)),
            ]
            if figures
            else []
        ),
        sa.Column("version", sa.Integer, nullable=False),
    )


def upgrade() -> None:
    op.drop_table("consultations")
    _consultations(figures=True)
    op.create_table(
        "consultation_places",
        sa.Column("place_id", sa.String(64), primary_key=True),
        sa.Column("agency_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("registered_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consultation_places")
    op.drop_table("consultations")
    _consultations(figures=False)
