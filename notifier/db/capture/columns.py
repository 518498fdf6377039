"""What the database says about a capture mapping: the shop's tables and columns exist, and of
what kind each column is, so that a trigger writes times as UTC text and numbers as numbers.

Checked at `capture install`, `capture check` and `notifier check`: every problem at once, at
the line of the mapping that names the table or column, with "did you mean" for a near miss.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy import types

from notifier.core.capture import EVENT_TABLES, Capture, CaptureMap, Column
from notifier.core.suggest import did_you_mean
from notifier.errors import Problem


class Kind(StrEnum):
    """What a column holds, as far as writing it into an event row goes."""

    UTC_TIMESTAMP = "utc_timestamp"  # a point in time the database keeps in UTC (timestamptz)
    TIMESTAMP = "timestamp"  # a date and time without a zone: UTC, as SPEC §2 has it
    SESSION_TIMESTAMP = "session_timestamp"  # MySQL TIMESTAMP: shown in the session's time zone
    DATE = "date"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    TEXT = "text"  # text, and anything else: written as it is
    UNTYPED = "untyped"  # SQLite: no declared type


TIMESTAMPS = (Kind.UTC_TIMESTAMP, Kind.TIMESTAMP, Kind.SESSION_TIMESTAMP)


def kind_of(column_type: types.TypeEngine[object], dialect: str) -> Kind:
    if isinstance(column_type, types.NullType):
        return Kind.UNTYPED
    if isinstance(column_type, types.DateTime):
        if dialect in ("mysql", "mariadb") and isinstance(column_type, types.TIMESTAMP):
            return Kind.SESSION_TIMESTAMP
        return Kind.UTC_TIMESTAMP if column_type.timezone else Kind.TIMESTAMP
    if isinstance(column_type, types.Date):
        return Kind.DATE
    if isinstance(column_type, types.Boolean):
        return Kind.BOOLEAN
    if isinstance(column_type, types.Integer):
        # MySQL's BOOLEAN is TINYINT(1): it stays a number (0/1), which notifier reads as one.
        return Kind.INTEGER
    if isinstance(column_type, types.Numeric | types.Float):
        return Kind.NUMBER
    return Kind.TEXT


@dataclass(frozen=True, slots=True)
class Shape:
    """The database's side of a mapping: each entry's table's columns and their kinds."""

    tables: dict[str, dict[str, Kind]]

    def kind(self, capture: Capture, column: Column | str) -> Kind:
        name = column.name if isinstance(column, Column) else column
        return self.tables[capture.table][name]


def shape_of(conn: sa.Connection, mapping: CaptureMap) -> tuple[Shape, list[Problem]]:
    """The columns of every table the mapping names, and every problem with the mapping here."""
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    views = set(inspector.get_view_names())
    dialect = conn.dialect.name
    problems: list[Problem] = []
    found: dict[str, dict[str, Kind]] = {}
    for events_table, _ in {EVENT_TABLES[c.source] for c in mapping.captures}:
        if events_table not in tables:
            where = (
                "is a view here: capture writes rows, so it" if events_table in views else "is not here; it"
            )
            problems.append(
                Problem(
                    mapping.path,
                    None,
                    f"{events_table} {where} must be a table (notifier init-db creates it)",
                )
            )
    for capture in mapping.captures:
        line = capture.table_line or capture.line
        if capture.table not in tables:
            if capture.table in views:
                words = f"{capture.table} is a view: a trigger sits on the table the shop writes"
            else:
                words = f"there is no table {capture.table!r} here{did_you_mean(capture.table, tables)}"
            problems.append(Problem(mapping.path, line, f"entry {capture.number} ({capture.event}): {words}"))
            continue
        if capture.table not in found:
            found[capture.table] = {
                column["name"]: kind_of(column["type"], dialect)
                for column in inspector.get_columns(capture.table)
            }
        problems.extend(_column_problems(mapping.path, capture, found[capture.table], dialect))
    return Shape(found), problems


def _column_problems(path: str, capture: Capture, columns: dict[str, Kind], dialect: str) -> list[Problem]:
    label = f"entry {capture.number} ({capture.event})"
    problems: list[Problem] = []
    seen: set[str] = set()
    for column in capture.columns():
        if column.name not in columns and column.name not in seen:
            seen.add(column.name)
            problems.append(
                Problem(
                    path,
                    column.line or capture.line,
                    f"{label}: {capture.table} has no column {column.name!r}"
                    + did_you_mean(column.name, columns),
                )
            )
    subject = columns.get(capture.subject.name)
    if subject is not None and subject not in (Kind.INTEGER, Kind.UNTYPED, Kind.NUMBER):
        problems.append(
            Problem(
                path,
                capture.subject.line or capture.line,
                f"{label}: subject {capture.subject} is {subject.value}; an event's "
                f"{EVENT_TABLES[capture.source][1]} is a number (the {capture.source}'s id)",
            )
        )
    if isinstance(capture.occurred_at, Column):
        kind = columns.get(capture.occurred_at.name)
        if kind is not None and dialect != "sqlite" and kind not in (*TIMESTAMPS, Kind.DATE):
            problems.append(
                Problem(
                    path,
                    capture.occurred_at.line or capture.line,
                    f"{label}: occurred_at {capture.occurred_at} is {kind.value}, not a timestamp, so its "
                    "time zone is unknown; name a timestamp column, or leave occurred_at out (the time "
                    "of the change)",
                )
            )
    return problems
