"""Events come in: new rows from the three event tables become `Event` values.

Rows are read in id order, a batch at a time. One high-water mark is not enough on
PostgreSQL, where a row with a lower id can commit after a higher one has been read: ids
skipped over are kept as *gaps* (see store.py) and looked for again on every poll until they
appear or are older than the gap timeout (a rolled-back insert never appears).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from notifier.core.values import Event
from notifier.core.vocabulary import event_from_row
from notifier.db.schema import EVENT_SOURCES
from notifier.db.tables import Feedback

# Where each source's events live: the order system's three event tables, and notifier's
# own feedback table (what customers told us through links), read as `case.*` events.
SOURCES: dict[str, tuple[sa.Table, str]] = {
    **EVENT_SOURCES,
    "feedback": (Feedback.__table__, "case_id"),  # type: ignore[attr-defined]
}


def _select(conn: sa.Connection, source: str) -> sa.Select[Any]:
    table, subject_column = SOURCES[source]
    as_text = conn.dialect.name == "sqlite"
    # Text in SQLite so that one bad row cannot break the batch; native types elsewhere.
    occurred = sa.cast(table.c.occurred_at, sa.Text) if as_text else table.c.occurred_at
    data = sa.cast(table.c.data, sa.Text)
    return sa.select(
        table.c.id,
        table.c.type,
        table.c[subject_column].label("subject_id"),
        occurred.label("occurred_at"),
        data.label("data"),
    )


def read_after(conn: sa.Connection, source: str, position: int, limit: int) -> list[Event]:
    """Up to `limit` events with id > position, in id order."""
    table, _ = SOURCES[source]
    query = _select(conn, source).where(table.c.id > position).order_by(table.c.id).limit(limit)
    return [event_from_row(source, row) for row in conn.execute(query).mappings()]


def read_ids(conn: sa.Connection, source: str, ids: Iterable[int]) -> list[Event]:
    """The events with these ids that exist now (gaps that have since committed)."""
    table, _ = SOURCES[source]
    return read_in(conn, source, table.c.id, ids)


def read_about(
    conn: sa.Connection, source: str, subjects: Iterable[int], types: Iterable[str]
) -> list[Event]:
    """The events of these types ('order.delivered') about these orders, cases or products."""
    table, subject_column = SOURCES[source]
    short_types = [name.split(".", 1)[1] for name in types]
    return read_in(conn, source, table.c[subject_column], subjects, table.c.type.in_(short_types))


def read_in(
    conn: sa.Connection, source: str, column: sa.ColumnElement[Any], values: Iterable[int], *where: Any
) -> list[Event]:
    """The events whose `column` is one of `values` (and `where`), in id order; 500 values
    a query, so a long list never exceeds a database's limit on parameters."""
    wanted = sorted(set(values))
    found: list[Event] = []
    for start in range(0, len(wanted), 500):
        query = _select(conn, source).where(column.in_(wanted[start : start + 500]), *where)
        found.extend(event_from_row(source, row) for row in conn.execute(query).mappings())
    return sorted(found, key=lambda event: event.id)


