"""The outbox, attempts, event cursors and gaps, suppressions, published state.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notifier_notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("template", sa.String(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("event_occurred_at", TS, nullable=False),
        sa.Column("thread", sa.String(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("detail", sa.String(), nullable=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", TS, nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("message", sa.LargeBinary(), nullable=True),
        sa.Column("locale", sa.String(), nullable=True),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("smtp_reply", sa.String(), nullable=True),
        sa.Column("resend_of", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
    )
    op.create_index("ix_notifier_notifications_due", "notifier_notifications", ["state", "next_attempt_at"])
    op.create_index("ix_notifier_notifications_thread", "notifier_notifications", ["thread", "state"])
    op.create_index("ix_notifier_notifications_rule", "notifier_notifications", ["rule"])
    op.create_index("ix_notifier_notifications_customer_id", "notifier_notifications", ["customer_id"])
    op.create_index("ix_notifier_notifications_recipient", "notifier_notifications", ["recipient"])
    op.create_table(
        "notifier_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("reply", sa.String(), nullable=False),
        sa.Column("worker", sa.String(), nullable=False),
    )
    op.create_index("ix_notifier_attempts_notification_id", "notifier_attempts", ["notification_id"])
    op.create_table(
        "notifier_cursors",
        sa.Column("source", sa.String(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "notifier_gaps",
        sa.Column("source", sa.String(), primary_key=True),
        sa.Column("event_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("noticed_at", TS, nullable=False),
    )
    op.create_table(
        "notifier_suppressions",
        sa.Column("address", sa.String(), primary_key=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "notifier_state",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("notifier_state", "notifier_suppressions", "notifier_gaps", "notifier_cursors",
                  "notifier_attempts", "notifier_notifications"):
        op.drop_table(table)
