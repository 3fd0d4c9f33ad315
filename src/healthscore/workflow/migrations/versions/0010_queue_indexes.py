"""Indexes for the work queue: open CTAs by owner (mine / my team) and by due date, open
tasks by due date (My day), and the audit log by entity (a CTA's history), so a page reads
the rows it shows, not every open CTA

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ctas_status_owner", "ctas", ["status", "owner"])
    op.create_index("ix_ctas_status_due_on", "ctas", ["status", "due_on"])
    op.create_index("ix_tasks_status_due_on", "tasks", ["status", "due_on"])
    op.create_index("ix_audit_entity_entity_id", "audit", ["entity", "entity_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_entity_entity_id", "audit")
    op.drop_index("ix_tasks_status_due_on", "tasks")
    op.drop_index("ix_ctas_status_due_on", "ctas")
    op.drop_index("ix_ctas_status_owner", "ctas")
