"""signed anchors of the store's stream heads and log

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from kyosei_events.migrations import anchors_v1, drop_anchors_v1

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    anchors_v1(op)


def downgrade() -> None:
    drop_anchors_v1(op)
