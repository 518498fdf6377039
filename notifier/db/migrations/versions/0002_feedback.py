"""What customers tell us through links in emails ("not solved"), read back as case events.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from notifier.db.schema import MYSQL_TABLE, TEXT, UTC_TIMESTAMP

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.Integer().with_variant(mysql.BIGINT(), "mysql", "mariadb")  # BIGINT on PostgreSQL from 0004


def upgrade() -> None:
    op.create_table(
        "notifier_feedback",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("type", TEXT, nullable=False),
        sa.Column("occurred_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("data", TEXT, nullable=True),
        sqlite_autoincrement=True,
        **MYSQL_TABLE,
    )
    op.create_index("ix_notifier_feedback_case_id", "notifier_feedback", ["case_id"])


def downgrade() -> None:
    op.drop_table("notifier_feedback")
