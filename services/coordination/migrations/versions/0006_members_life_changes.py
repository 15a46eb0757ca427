"""the household directory keeps members' life changes, people combined by a merge and
dismissed duplicate candidates

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from kyosei_households.migrations import directory_v2, drop_directory_v2

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    directory_v2(op)


def downgrade() -> None:
    drop_directory_v2(op)
