"""The outbox, attempts, event cursors and gaps, suppressions, published state.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from notifier.db.schema import BLOB, MYSQL_TABLE, NAME, TEXT, UTC_TIMESTAMP

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = UTC_TIMESTAMP
# Ids: INTEGER here, BIGINT from 0004 on PostgreSQL; MySQL's tables are made BIGINT at once.
ID = sa.Integer().with_variant(mysql.BIGINT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "notifier_notifications",
        sa.Column("id", ID, primary_key=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("rule", NAME, nullable=False),
        sa.Column("template", TEXT, nullable=False),
        sa.Column("category", TEXT, nullable=False),
        sa.Column("source", NAME, nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("event_type", TEXT, nullable=False),
        sa.Column("event_occurred_at", TS, nullable=False),
        sa.Column("thread", NAME, nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("recipient", NAME, nullable=True),
        sa.Column("state", NAME, nullable=False),
        sa.Column("reason", TEXT, nullable=True),
        sa.Column("detail", TEXT, nullable=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", TS, nullable=True),
        sa.Column("lease_owner", TEXT, nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("message_id", TEXT, nullable=True),
        sa.Column("message", BLOB, nullable=True),
        sa.Column("locale", TEXT, nullable=True),
        sa.Column("subject", TEXT, nullable=True),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("smtp_reply", TEXT, nullable=True),
        sa.Column("resend_of", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        **MYSQL_TABLE,
    )
    op.create_index("ix_notifier_notifications_due", "notifier_notifications", ["state", "next_attempt_at"])
    op.create_index("ix_notifier_notifications_thread", "notifier_notifications", ["thread", "state"])
    op.create_index("ix_notifier_notifications_rule", "notifier_notifications", ["rule"])
    op.create_index("ix_notifier_notifications_customer_id", "notifier_notifications", ["customer_id"])
    op.create_index("ix_notifier_notifications_recipient", "notifier_notifications", ["recipient"])
    op.create_table(
        "notifier_attempts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("notification_id", ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("outcome", TEXT, nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("reply", TEXT, nullable=False),
        sa.Column("worker", TEXT, nullable=False),
        **MYSQL_TABLE,
    )
    op.create_index("ix_notifier_attempts_notification_id", "notifier_attempts", ["notification_id"])
    op.create_table(
        "notifier_cursors",
        sa.Column("source", NAME, primary_key=True),
        sa.Column("position", ID, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        **MYSQL_TABLE,
    )
    op.create_table(
        "notifier_gaps",
        sa.Column("source", NAME, primary_key=True),
        sa.Column("event_id", ID, primary_key=True, autoincrement=False),
        sa.Column("noticed_at", TS, nullable=False),
        **MYSQL_TABLE,
    )
    op.create_table(
        "notifier_suppressions",
        sa.Column("address", NAME, primary_key=True),
        sa.Column("reason", TEXT, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        **MYSQL_TABLE,
    )
    op.create_table(
        "notifier_state",
        sa.Column("key", NAME, primary_key=True),
        sa.Column("value", TEXT, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    for table in ("notifier_state", "notifier_suppressions", "notifier_gaps", "notifier_cursors",
                  "notifier_attempts", "notifier_notifications"):
        op.drop_table(table)
