"""When a CTA turned critical (so a module's colour is known for past dates)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ctas") as batch:
        batch.add_column(sa.Column("critical_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ctas") as batch:
        batch.drop_column("critical_at")
