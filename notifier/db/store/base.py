"""notifier's own tables as the store's modules use them, and the dialect's INSERT."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from notifier.db.tables import (
    Attempt,
    Cursor,
    Feedback,
    Gap,
    Notification,
    StateEntry,
    Suppression,
    TemplateVersion,
)

NOTIFICATIONS: sa.Table = Notification.__table__  # type: ignore[attr-defined]
ATTEMPTS: sa.Table = Attempt.__table__  # type: ignore[attr-defined]
CURSORS: sa.Table = Cursor.__table__  # type: ignore[attr-defined]
GAPS: sa.Table = Gap.__table__  # type: ignore[attr-defined]
STATE: sa.Table = StateEntry.__table__  # type: ignore[attr-defined]
SUPPRESSIONS: sa.Table = Suppression.__table__  # type: ignore[attr-defined]
FEEDBACK: sa.Table = Feedback.__table__  # type: ignore[attr-defined]
TEMPLATE_VERSIONS: sa.Table = TemplateVersion.__table__  # type: ignore[attr-defined]


def insert_into(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
