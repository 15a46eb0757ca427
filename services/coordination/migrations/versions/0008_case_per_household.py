"""one open case per household: a case's main agency, members concerned, the
consultations behind it, and cases merged into another

Revision ID: 0008
Revises: 0007
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Tables as SQLAlchemy objects: the connection's schema_translate_map reaches them.
_cases = sa.Table(
    "cases",
    sa.MetaData(),
    sa.Column("case_id", sa.String(80)),
    sa.Column("consultation_id", sa.String(64)),
    sa.Column("escalated_by", sa.String(64)),
    sa.Column("opened_at", sa.String(40)),
    sa.Column("main_agency", sa.String(64)),
)


def _schema() -> str | None:
    """The service's schema: Alembic's column operations name their table by text, which
    the connection's schema_translate_map (kyosei_platform.migrate) does not reach."""
    translate: dict[Any, str] = (
        op.get_bind().get_execution_options().get("schema_translate_map") or {}
    )
    return translate.get(None)


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=_schema()) as batch:
        batch.alter_column("consultation_id", existing_type=sa.String(64), nullable=True)
        batch.alter_column("escalated_by", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("main_agency", sa.String(64)))
        batch.add_column(sa.Column("opened_by", sa.String(64)))
        batch.add_column(sa.Column("member_ids", sa.Text, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("merged_into", sa.String(80)))
        batch.create_index("ix_cases_main_agency", ["main_agency"])
    op.execute(_cases.update().values(main_agency=_cases.c.escalated_by))
    consultations = op.create_table(
        "case_consultations",
        sa.Column("consultation_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(80), nullable=False, index=True),
        sa.Column("escalated_by", sa.String(64), nullable=False),
        sa.Column("added_at", sa.String(40), nullable=False),
    )
    op.execute(
        consultations.insert().from_select(
            ["consultation_id", "case_id", "escalated_by", "added_at"],
            sa.select(
                _cases.c.consultation_id,
                _cases.c.case_id,
                _cases.c.escalated_by,
                _cases.c.opened_at,
            ),
        )
    )


def downgrade() -> None:
    op.drop_table("case_consultations")
    with op.batch_alter_table("cases", schema=_schema()) as batch:
        batch.drop_index("ix_cases_main_agency")
        batch.drop_column("merged_into")
        batch.drop_column("member_ids")
        batch.drop_column("opened_by")
        batch.drop_column("main_agency")
