"""the household directory, fed by intake's household events

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from kyosei_households.migrations import directory_v1, drop_directory_v1

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    directory_v1(op)


def downgrade() -> None:
    drop_directory_v1(op)
