"""At most one open override per account, enforced by the database (a partial unique index),
so two people overriding the same account at once cannot both win

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a store written before this may hold two open overrides of one account: keep the newest
    op.execute(
        "UPDATE overrides SET ended_at = CURRENT_TIMESTAMP, ended_by = 'healthscore', "
        "end_reason = 'replaced' WHERE ended_at IS NULL AND id NOT IN "
        "(SELECT keep FROM (SELECT MAX(id) AS keep FROM overrides WHERE ended_at IS NULL "
        "GROUP BY account_id) AS newest)"
    )
    op.create_index("one_open_override", "overrides", ["account_id"], unique=True,
                    postgresql_where=sa.text("ended_at IS NULL"),
                    sqlite_where=sa.text("ended_at IS NULL"))


def downgrade() -> None:
    op.drop_index("one_open_override", table_name="overrides")
