"""Idempotency-Key: the keys agencies' systems send with a POST, and the answers they got

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from kyosei_platform.idempotency import drop_idempotency_v1, idempotency_v1

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    idempotency_v1(op)


def downgrade() -> None:
    drop_idempotency_v1(op)
