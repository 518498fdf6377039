"""Decisions recorded with each notification: the rule's fingerprint and what the due time
was computed from, in words fixed when it was planned (what `history` shows later).

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notifier.db.schema import TEXT

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN of a nullable column: plain ALTER TABLE on SQLite, PostgreSQL and MySQL.
    op.add_column("notifier_notifications", sa.Column("rule_fingerprint", TEXT, nullable=True))
    op.add_column("notifier_notifications", sa.Column("due_basis", TEXT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifier_notifications") as batch:
        batch.drop_column("due_basis")
        batch.drop_column("rule_fingerprint")
