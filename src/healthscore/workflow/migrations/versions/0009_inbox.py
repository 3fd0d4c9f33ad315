"""The in-app inbox: one row per notification a user gets in the app, with its read flag;
and the channels each user chose (in-app, email, webhook; NULL: every channel they can get)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("account_id", sa.String(100), nullable=True),
        sa.Column("cta_id", sa.Integer(), nullable=True),
        sa.Column("read_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_inbox_user_read", "inbox", ["user", "read_at"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("notify_channels", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("notify_channels")
    op.drop_table("inbox")
