"""Saved views: a user's named filters, sort and scope of a list page (the accounts list)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_views",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("page", sa.String(30), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("owner", "page", "name", name="uq_saved_views_owner_page_name"),
    )
    op.create_index("ix_saved_views_owner", "saved_views", ["owner"])


def downgrade() -> None:
    op.drop_table("saved_views")
