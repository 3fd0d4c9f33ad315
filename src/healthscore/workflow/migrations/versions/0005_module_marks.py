"""Module marks: a CSM's colour for one module of an account, with a reason and an expiry;
at most one open mark per account and module, enforced by the database

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "module_marks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("module", sa.String(100), nullable=False),
        sa.Column("colour", sa.String(10), nullable=False),
        sa.Column("reason_code", sa.String(50), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("set_by", sa.String(100), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.Column("system_colour", sa.String(50)),
        sa.Column("as_of", sa.Date()),
        sa.Column("ended_at", sa.DateTime()),
        sa.Column("ended_by", sa.String(100)),
        sa.Column("end_reason", sa.String(50)),
    )
    op.create_index("ix_module_marks_account_id", "module_marks", ["account_id"])
    op.create_index("one_open_mark", "module_marks", ["account_id", "module"], unique=True,
                    postgresql_where=sa.text("ended_at IS NULL"),
                    sqlite_where=sa.text("ended_at IS NULL"))


def downgrade() -> None:
    op.drop_table("module_marks")
