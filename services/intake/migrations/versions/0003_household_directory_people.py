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


def upgrade() -> None:
    op.drop_table("households")
    op.drop_table("consents")
    directory_v1(op)
    with op.batch_alter_table("consultations") as batch:
        batch.add_column(sa.Column("member_ids", sa.Text, nullable=False, server_default="[]"))
    with op.batch_alter_table("outreach_cases") as batch:
        batch.add_column(sa.Column("member_id", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("outreach_cases") as batch:
        batch.drop_column("member_id")
    with op.batch_alter_table("consultations") as batch:
        batch.drop_column("member_ids")
    drop_directory_v1(op)
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
