"""Values CSMs enter for manual measures (sentiment 1-5, EBR refused...), with who and when

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manual_values",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("measure", sa.String(100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("entered_by", sa.String(100), nullable=False),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_manual_values_account_id", "manual_values", ["account_id"])


def downgrade() -> None:
    op.drop_table("manual_values")
