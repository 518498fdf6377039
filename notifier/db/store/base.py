"""notifier's own tables as the store's modules use them, and the dialect's INSERT.

`insert_into(...).on_conflict_do_nothing()` reads the same on every database. MariaDB /
MySQL has no ON CONFLICT: there it is `ON DUPLICATE KEY UPDATE <key> = <key>`, which leaves
the row there untouched and, unlike INSERT IGNORE, still fails on every other error (a value
too long, a NULL where none may be) instead of turning it into a warning and a truncated row.
MySQL counts such a row as affected, so `insert_new` counts the duplicates met on the way
(a session variable the UPDATE branch adds one to) and takes them off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

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

_SKIPPED = "@notifier_skipped"  # MySQL: duplicates `insert_new` met, ever, on this connection
_SEEN = "notifier_skipped_seen"  # ... how many were taken off already (connection info; gone with it)


class _MySQLInsert(mysql.Insert):
    """MySQL's INSERT, with the two ON CONFLICT forms the store writes."""

    inherit_cache = True

    def on_conflict_do_nothing(
        self, index_elements: Sequence[str] | None = None, *, count: bool = False
    ) -> Any:
        column = self.table.primary_key.columns.values()[0]  # type: ignore[attr-defined]
        quote = mysql.dialect().identifier_preparer.quote  # type: ignore[no-untyped-call]
        same = f"{self.table.name}.{quote(column.name)}"  # type: ignore[attr-defined]
        if count:  # one more duplicate met; the row keeps its key
            same = f"IF(({_SKIPPED} := COALESCE({_SKIPPED}, 0) + 1) > 0, {same}, {same})"
        return self.on_duplicate_key_update({column.name: sa.literal_column(same)})

    def on_conflict_do_update(
        self, index_elements: Sequence[str] | None = None, set_: Mapping[str, Any] | None = None
    ) -> Any:
        return self.on_duplicate_key_update(dict(set_ or {}))


def insert_into(conn: sa.Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "mysql":
        return _MySQLInsert(table)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_new(
    conn: sa.Connection,
    table: sa.Table,
    key: str,
    *,
    rows: Sequence[Mapping[str, Any]] | None = None,
    values: Mapping[str, Any] | None = None,
    select: tuple[Sequence[str], sa.Select[Any]] | None = None,
) -> int:
    """INSERT rows (a list, one row's values, or (columns, a SELECT)), leaving alone a row whose
    unique `key` is already there; how many were inserted."""
    statement = insert_into(conn, table)
    if values is not None:
        statement = statement.values(**values)
    elif select is not None:
        statement = statement.from_select(list(select[0]), select[1])
    mysql_ = conn.dialect.name == "mysql"
    if mysql_:
        statement = statement.on_conflict_do_nothing(count=True)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=[key])
    statement = statement.execution_options(preserve_rowcount=True)  # else -1 on PostgreSQL
    info = conn.connection.info
    if mysql_ and info.get(_SEEN, 0) is None:  # a failed insert may have counted some: look
        info[_SEEN] = _skipped_ever(conn)
    try:
        result = conn.execute(statement, list(rows)) if rows is not None else conn.execute(statement)
    except sa.exc.DBAPIError:
        info[_SEEN] = None
        raise
    count = max(result.rowcount or 0, 0)
    if not mysql_:
        return count
    ever = _skipped_ever(conn)
    skipped, info[_SEEN] = ever - info.get(_SEEN, 0), ever
    return max(count - skipped, 0)


def _skipped_ever(conn: sa.Connection) -> int:
    return int(conn.exec_driver_sql(f"SELECT COALESCE({_SKIPPED}, 0)").scalar_one())


def hold(conn: sa.Connection, name: str, now: Any) -> None:
    """MariaDB / MySQL: lock the notifier_state row `name` (made if missing) until this
    transaction ends, the stand-in for PostgreSQL's pg_advisory_xact_lock (GET_LOCK lasts
    the session, not the transaction). ON DUPLICATE KEY UPDATE takes the row's lock."""
    row = {"key": name, "value": "locked by a transaction while it works", "updated_at": now}
    conn.execute(insert_into(conn, STATE).values(**row).on_conflict_do_nothing())
