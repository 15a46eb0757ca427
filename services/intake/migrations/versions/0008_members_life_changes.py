"""the household directory keeps members' life changes, people combined by a merge and
dismissed duplicate candidates

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from kyosei_households.migrations import directory_v2, drop_directory_v2

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    directory_v2(op)


def downgrade() -> None:
    drop_directory_v2(op)
