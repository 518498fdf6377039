"""Events come in: new rows from the three event tables become `Event` values.

Rows are read in id order, a batch at a time. One high-water mark is not enough on
PostgreSQL, where a row with a lower id can commit after a higher one has been read: ids
skipped over are kept as *gaps* (see store.py) and looked for again on every poll until they
appear or are older than the gap timeout (a rolled-back insert never appears).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from notifier.core.timing import as_utc
from notifier.core.values import Event, kind_of
from notifier.core.vocabulary import event_from_row
from notifier.db import cells
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
    # As SQLite holds them (text, or bytes for a blob that may not be UTF-8, which a CAST would
    # fail the whole query on); checked one value at a time (db/cells.py). Native types elsewhere.
    occurred = sa.type_coerce(table.c.occurred_at, sa.types.NullType()) if as_text else table.c.occurred_at
    data = sa.type_coerce(table.c.data, sa.types.NullType()) if as_text else sa.cast(table.c.data, sa.Text)
    return sa.select(
        table.c.id,
        table.c.type,
        table.c[subject_column].label("subject_id"),
        occurred.label("occurred_at"),
        data.label("data"),
    )


_NEVER = as_utc(datetime(1970, 1, 1))


def to_event(source: str, row: Mapping[Any, Any]) -> Event:
    """One event row -> Event; a row that cannot be used (a type that is no text, a subject id
    that is no number, data that is not JSON, ...) is an Event with its problem in words."""
    table = SOURCES[source][0].name
    where = f"{table} row {row['id']}"
    try:
        kind = cells.text(row["type"], f"{table}.type of {where}")
        subject_id = cells.integer(row["subject_id"], f"{table}.{SOURCES[source][1]} of {where}")
        data = row["data"]
        if isinstance(data, bytes):
            data = cells.text(data, f"{table}.data of {where}")
        event = event_from_row(source, {**row, "type": kind, "subject_id": subject_id, "data": data})
        # The words quote the bad value: keep them short whatever its size.
        return replace(event, problem=event.problem[:500]) if event.problem else event
    except Exception as exc:  # BadValue, or what no check foresaw: this event's problem only
        return Event(
            source=source,
            id=row["id"],
            type=f"{kind_of(source)}.{row['type'] if isinstance(row['type'], str) else 'unknown'}",
            subject_id=row["subject_id"] if isinstance(row["subject_id"], int) else 0,
            occurred_at=_NEVER,
            problem=str(exc)[:500] or type(exc).__name__,
        )


def read_after(conn: sa.Connection, source: str, position: int, limit: int) -> list[Event]:
    """Up to `limit` events with id > position, in id order."""
    table, _ = SOURCES[source]
    query = _select(conn, source).where(table.c.id > position).order_by(table.c.id).limit(limit)
    return [to_event(source, row) for row in conn.execute(query).mappings()]


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
        found.extend(to_event(source, row) for row in conn.execute(query).mappings())
    return sorted(found, key=lambda event: event.id)


def types_present(conn: sa.Connection) -> set[str]:
    """Every event type the order system's event tables hold ('case.opened'): with the capture
    mapping's, what `check` calls rules that can fire here (core.capture.can_never_fire)."""
    inspector = sa.inspect(conn)
    found: set[str] = set()
    for source, (table, _) in EVENT_SOURCES.items():
        if inspector.has_table(table.name) or table.name in inspector.get_view_names():
            kinds = conn.execute(sa.select(table.c.type).distinct()).scalars()
            found |= {f"{source}.{kind}" for kind in kinds if isinstance(kind, str)}
    return found
