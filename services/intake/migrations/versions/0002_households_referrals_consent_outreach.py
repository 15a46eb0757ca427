"""read models for households, search, parties, referrals, consent and outreach

The consultations read model gains outcome columns. Read models are derived from
events: ``kyosei migrate`` rebuilds them after this revision.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _consultations_v2() -> None:
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
        sa.Column("escalated", sa.Boolean, nullable=False),
        sa.Column("returned", sa.Boolean, nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False, index=True),
        sa.Column("outcome_at", sa.String(40)),
        sa.Column("concern_report_id", sa.String(64)),
        sa.Column("version", sa.Integer, nullable=False),
    )


def upgrade() -> None:
    op.drop_table("consultations")
    _consultations_v2()
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
        "household_search_index",
        sa.Column("household_id", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("token", sa.String(32), primary_key=True),
    )
    op.create_index("ix_household_search_token", "household_search_index", ["token"])
    op.create_table(
        "household_parties",
        sa.Column("household_id", sa.String(64), primary_key=True),
        sa.Column("agency_id", sa.String(64), primary_key=True),
        sa.Column("part", sa.String(24), primary_key=True),
    )
    op.create_index("ix_household_parties_agency", "household_parties", ["agency_id"])
    op.create_table(
        "referrals",
        sa.Column("referral_id", sa.String(64), primary_key=True),
        sa.Column("consultation_id", sa.String(64), nullable=False, index=True),
        sa.Column("household_id", sa.String(64), index=True),
        sa.Column("from_agency", sa.String(64), nullable=False, index=True),
        sa.Column("to_agency", sa.String(64), nullable=False, index=True),
        sa.Column("concerns", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decline_reason", sa.String(32)),
        sa.Column("made_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
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
    op.create_table(
        "outreach_cases",
        sa.Column("outreach_id", sa.String(64), primary_key=True),
        sa.Column("household_id", sa.String(64), index=True),
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


def downgrade() -> None:
    for table in (
        "outreach_cases",
        "consents",
        "referrals",
        "household_parties",
        "household_search_index",
        "households",
        "consultations",
    ):
        op.drop_table(table)
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
