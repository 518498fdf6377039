"""64-bit ids: every id, event id and read position in notifier's tables becomes BIGINT on
PostgreSQL, so an event id above 2,147,483,647 is read, planned and sent. SQLite's INTEGER is
64-bit already, and MariaDB / MySQL's tables are BIGINT from 0001: there this revision
changes nothing.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# table -> its columns that hold ids, event ids or a read position.
COLUMNS: dict[str, tuple[str, ...]] = {
    "notifier_notifications": ("id", "event_id", "subject_id", "customer_id", "resend_of"),
    "notifier_attempts": ("id", "notification_id"),
    "notifier_cursors": ("position",),
    "notifier_gaps": ("event_id",),
    "notifier_feedback": ("id", "case_id"),
}


def _alter(to: type[sa.types.TypeEngine[int]], frm: type[sa.types.TypeEngine[int]], word: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: INTEGER holds 64 bits; MySQL: made BIGINT in 0001
    for table, columns in COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=to(), existing_type=frm())
        # A SERIAL's sequence is typed too (AS integer stops at 2**31 - 1).
        query = sa.text("SELECT pg_get_serial_sequence(:table, 'id')")
        sequence = op.get_bind().execute(query, {"table": table}).scalar() if "id" in columns else None
        if sequence:
            op.execute(f"ALTER SEQUENCE {sequence} AS {word}")


def upgrade() -> None:
    _alter(sa.BigInteger, sa.Integer, "bigint")


def downgrade() -> None:
    _alter(sa.Integer, sa.BigInteger, "integer")
