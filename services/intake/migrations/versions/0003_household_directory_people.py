"""the shared household directory; consultations and outreach name the people they are about

Households, members, merges and consents move to the household directory
(kyosei_households), which every service keeps; consultations gain ``member_ids`` and
outreach cases ``member_id``, so that consent can open one person's records. Read
models are derived from events: ``kyosei migrate`` rebuilds them after this revision.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from kyosei_households.migrations import directory_v1, drop_directory_v1

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _consultations(*, people: bool) -> None:
    op.create_table(
        "consultations",
        sa.Column("consultation_id", sa.String(64), primary_key=True),
        sa.Column("household_id", sa.String(64), index=True),
        *([sa.Column("member_ids", sa.Text, nullable=False)] if people else []),
        sa.Column("agency_id", sa.String(64), nullable=False, index=True),
        sa.Column("window", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("concerns", sa.Text, nullable=False),
        sa.Column("complex", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("escalated", sa.Boolean, nullable=False),
        sa.Column("returned", sa.Boolean, nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False, index=True),
        sa.Column("outcome_at", sa.String(40)),
        sa.Column("concern_report_id", sa.String(64)),
        sa.Column("version", sa.Integer, nullable=False),
    )


def _outreach_cases(*, people: bool) -> None:
    op.create_table(
        "outreach_cases",
        sa.Column("outreach_id", sa.String(64), primary_key=True),
        sa.Column("household_id", sa.String(64), index=True),
        *([sa.Column("member_id", sa.String(64))] if people else []),
        sa.Column("agency_id", sa.String(64), nullable=False, index=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("origin_ref", sa.String(64)),
        sa.Column("concerns", sa.Text, nullable=False),
        sa.Column("stage", sa.String(24), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_result", sa.String(24)),
        sa.Column("last_contact_at", sa.String(40)),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )


def upgrade() -> None:
    # Read models: dropped and created in their new shape, then rebuilt from events.
    for table in ("households", "consents", "consultations", "outreach_cases"):
        op.drop_table(table)
    directory_v1(op)
    _consultations(people=True)
    _outreach_cases(people=True)


def downgrade() -> None:
    drop_directory_v1(op)
    op.drop_table("consultations")
    op.drop_table("outreach_cases")
    _consultations(people=False)
    _outreach_cases(people=False)
    op.create_table(
        "households",
        sa.Column("household_id", sa.String(64), primary_key=True),
        sa.Column("registered_by", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.String(40), nullable=False),
        sa.Column("merged_into", sa.String(64), index=True),
        sa.Column("member_count", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.String(64), primary_key=True),
        sa.Column("household_id", sa.String(64), nullable=False, index=True),
        sa.Column("member_id", sa.String(64)),
        sa.Column("given_by", sa.String(16), nullable=False),
        sa.Column("agencies", sa.Text, nullable=False),
        sa.Column("all_agencies", sa.Boolean, nullable=False),
        sa.Column("purposes", sa.Text, nullable=False),
        sa.Column("given_on", sa.String(10), nullable=False),
        sa.Column("withdrawn_on", sa.String(10)),
        sa.Column("recorded_by", sa.String(64)),
    )
