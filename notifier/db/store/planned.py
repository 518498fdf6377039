"""Planned notifications into the outbox: one row per rule and occurrence, idempotent by key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from notifier.db.store.base import (
    NOTIFICATIONS,
    insert_into,
)


def insert_notifications(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert planned notifications; a key already present is left alone (idempotent)."""
    if not rows:
        return 0
    # preserve_rowcount: without it PostgreSQL reports -1 for a multi-row insert.
    statement = (
        insert_into(conn, NOTIFICATIONS)
        .on_conflict_do_nothing(index_elements=["key"])
        .execution_options(preserve_rowcount=True)
    )
    result = conn.execute(statement, list(rows))
    return max(result.rowcount or 0, 0)
