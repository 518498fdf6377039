"""What customers tell us through links in emails ("not solved"), read back as case events.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifier_feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.String(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notifier_feedback_case_id", "notifier_feedback", ["case_id"])


def downgrade() -> None:
    op.drop_table("notifier_feedback")
