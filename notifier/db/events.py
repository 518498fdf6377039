"""Events come in: new rows from the three event tables become `Event` values.

Rows are read in id order, a batch at a time. One high-water mark is not enough on
PostgreSQL, where a row with a lower id can commit after a higher one has been read: ids
skipped over are kept as *gaps* (see store.py) and looked for again on every poll until they
appear or are older than the gap timeout (a rolled-back insert never appears).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from notifier.core.timing import as_utc
from notifier.db.schema import EVENT_SOURCES
from notifier.db.tables import Feedback

# The event vocabulary (SPEC §2): each event's documented data keys and their kinds.
VOCABULARY: dict[str, dict[str, str]] = {
    "order.placed": {},
    "order.dispatched": {
        "carrier": "text",
        "tracking_number": "text",
        "tracking_url": "text",
        "eta": "date",
    },
    "order.delivered": {"delivered_at": "timestamp", "signed_by": "text"},
    "order.cancelled": {"reason": "text"},
    "product.price_change": {
        "old_price": "money",
        "new_price": "money",
        "currency": "text",
        "effective_at": "timestamp",
    },
    "case.opened": {},
    "case.agent_replied": {"agent": "text"},
    "case.customer_replied": {},
    "case.resolved": {"resolution": "text"},
    "case.reopened": {},
    "case.not_solved": {"comment": "text"},  # a customer clicked "not solved" (notifier_feedback)
}

# Where each source's events live: the order system's three event tables, and notifier's
# own feedback table (what customers told us through links), read as `case.*` events.
SOURCES: dict[str, tuple[sa.Table, str]] = {
    **EVENT_SOURCES,
    "feedback": (Feedback.__table__, "case_id"),  # type: ignore[attr-defined]
}
_KIND = {"feedback": "case"}


def kind_of(source: str) -> str:
    """What a source's events are about: 'order', 'case' or 'product'."""
    return _KIND.get(source, source)


# Largest run of missing ids remembered as gaps; a bigger jump is a sequence jump, not commits.
MAX_GAP_RUN = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One row of an event table, read and checked."""

    source: str  # order | case | product
    id: int
    type: str  # 'order.placed'
    subject_id: int  # the order, case or product id
    occurred_at: datetime  # aware, UTC
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    problem: str | None = None  # why this row cannot be used, in plain words

    @property
    def thread(self) -> str:
        """Messages about one order (or case) go out in event order."""
        return f"{kind_of(self.source)}:{self.subject_id}"


def parse_timestamp(value: Any) -> datetime:
    """A database or JSON timestamp -> aware UTC datetime (naive means UTC, per the schema)."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        return as_utc(datetime.fromisoformat(text))
    raise ValueError(f"{value!r} is not a timestamp")


def _convert(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "timestamp":
        return parse_timestamp(value)
    if kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    if kind == "money":
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not an amount") from exc
    return str(value)


def typed_data(event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The event's data with documented keys converted (times, dates, amounts) and present.

    Raises ValueError naming the key when a documented value cannot be read.
    """
    result = dict(data)
    for key, kind in VOCABULARY.get(event_type, {}).items():
        try:
            result[key] = _convert(kind, data.get(key))
        except ValueError as exc:
            raise ValueError(f"data key {key!r}: {exc}") from exc
    return result


def _parse_data(raw: Any) -> tuple[dict[str, Any], str | None]:
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, dict):
        return raw, None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        return {}, f"data is not valid JSON ({exc})"
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        return {}, f"data is JSON but not an object: {raw[:60]!r}"
    return value, None


def event_from_row(source: str, row: Mapping[str, Any] | sa.RowMapping) -> Event:
    """A database row -> Event; a row that cannot be used keeps its problem in words."""
    event_type = f"{kind_of(source)}.{row['type']}"
    data, problem = _parse_data(row["data"])
    try:
        occurred_at = parse_timestamp(row["occurred_at"])
    except (ValueError, TypeError):
        return Event(
            source=source,
            id=row["id"],
            type=event_type,
            subject_id=row["subject_id"],
            occurred_at=as_utc(datetime(1970, 1, 1)),
            problem=f"occurred_at {row['occurred_at']!r} is not a timestamp",
        )
    if problem is None:
        try:
            data = typed_data(event_type, data)
        except ValueError as exc:
            problem = str(exc)
    return Event(
        source=source,
        id=row["id"],
        type=event_type,
        subject_id=row["subject_id"],
        occurred_at=occurred_at,
        data=MappingProxyType(data),
        problem=problem,
    )


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


def missing_ids(position: int, events: list[Event]) -> list[int]:
    """Ids skipped between `position` and the events read after it (ascending ids)."""
    missing: list[int] = []
    previous = position
    for event in events:
        run = event.id - previous - 1
        if 0 < run <= MAX_GAP_RUN:
            missing.extend(range(previous + 1, event.id))
        previous = event.id
    return missing
