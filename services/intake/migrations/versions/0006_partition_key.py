"""events.partition_key: one Kafka key for every event of a stream (its first subject)

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from kyosei_events.migrations import drop_store_v2, store_v2

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    store_v2(op)


def downgrade() -> None:
    drop_store_v2(op)
