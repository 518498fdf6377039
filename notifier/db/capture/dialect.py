"""What the three databases' triggers share: a capture entry's condition and its event row as
SQL text. Each database's module (sqlite.py, postgresql.py, mysql.py) says the rest: how a
time becomes UTC text, how JSON is built, how a trigger is made, listed and dropped.

A trigger cannot take bind parameters, so literals are written into the SQL, quoted here and
nowhere else; table and column names are always quoted as identifiers.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import sqlalchemy as sa

from notifier.core.capture import (
    EVENT_TABLES,
    Capture,
    Column,
    Comparison,
    Condition,
    Literal,
    Now,
    Scalar,
    Value,
)
from notifier.db.capture.columns import TIMESTAMPS, Kind, Shape

NAME_PREFIX = "notifier_capture_"


class Dialect(ABC):
    """One database's trigger SQL."""

    name: str

    def __init__(self, conn: sa.Connection) -> None:
        self.preparer = conn.dialect.identifier_preparer

    # -- names and values --------------------------------------------------------------

    def quote(self, name: str) -> str:
        return str(self.preparer.quote_identifier(name))

    def table(self, name: str) -> str:
        return self.quote(name)

    def ref(self, column: Column) -> str:
        return f"{column.row.upper()}.{self.quote(column.name)}"

    def text(self, value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def literal(self, value: Scalar) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return repr(value) if math.isfinite(value) else "NULL"
        return self.text(value)

    # -- what each database says its own way --------------------------------------------

    @abstractmethod
    def differs(self, left: str, right: str) -> str:
        """NULL-safe 'left is not the same as right'."""

    @abstractmethod
    def now_text(self) -> str:
        """The time of the change, as UTC text."""

    @abstractmethod
    def now_time(self) -> str:
        """The time of the change, for the event table's occurred_at."""

    @abstractmethod
    def time_text(self, expression: str, kind: Kind) -> str:
        """A timestamp or date column's value as UTC text notifier reads."""

    @abstractmethod
    def occurred(self, expression: str, kind: Kind) -> str:
        """A column's value for the event table's occurred_at (NULL if it cannot be read)."""

    @abstractmethod
    def json_object(self, pairs: list[tuple[str, str]]) -> str:
        """A JSON object of (key, SQL expression)."""

    @abstractmethod
    def create(self, name: str, capture: Capture, guard: str, insert: str) -> list[str]:
        """The statements that make trigger `name`."""

    @abstractmethod
    def drop(self, name: str, table: str) -> list[str]:
        """The statements that remove trigger `name` (and what belongs to it) from `table`."""

    @abstractmethod
    def installed(self, conn: sa.Connection) -> list[tuple[str, str]]:
        """(name, table) of every notifier_capture_* trigger here (a table '' for a leftover
        that belongs to no table, such as a PostgreSQL function without its trigger)."""

    def locked(self, statements: list[str], tables: set[str]) -> list[str]:
        """The statements made atomic for the shop's writers, where a transaction does not
        already (it does on SQLite and PostgreSQL: DDL is transactional there)."""
        return statements

    # -- the trigger -------------------------------------------------------------------

    def statements(self, name: str, capture: Capture, shape: Shape) -> list[str]:
        return self.create(name, capture, self.guard(capture), self.insert(capture, shape))

    def guard(self, capture: Capture) -> str:
        """When the trigger writes: a subject to write about, every `when:`, one `changed:`."""
        parts = [f"{self.ref(capture.subject)} IS NOT NULL"]
        parts += [self.condition(condition) for condition in capture.when]
        if capture.changed:
            changes = [self.differs(f"OLD.{self.quote(c)}", f"NEW.{self.quote(c)}") for c in capture.changed]
            parts.append("(" + " OR ".join(changes) + ")")
        return " AND ".join(parts)

    def condition(self, condition: Condition) -> str:
        column = self.ref(condition.column)
        if condition.test == Comparison.IS_NULL:
            return f"{column} IS NULL"
        if condition.test == Comparison.IS_NOT_NULL:
            return f"{column} IS NOT NULL"
        if condition.test == Comparison.IN:
            return f"{column} IN ({', '.join(self.literal(v) for v in condition.values)})"
        if condition.test == Comparison.NOT:
            return self.differs(column, self.literal(condition.values[0]))
        return f"{column} = {self.literal(condition.values[0])}"

    def insert(self, capture: Capture, shape: Shape) -> str:
        events_table, subject_column = EVENT_TABLES[capture.source]
        occurred = self.now_time()
        if isinstance(capture.occurred_at, Column):
            kind = shape.kind(capture, capture.occurred_at)
            occurred = f"COALESCE({self.occurred(self.ref(capture.occurred_at), kind)}, {self.now_time()})"
        pairs = [(key, self.value(value, capture, shape)) for key, value in capture.data]
        data = self.json_object(pairs) if pairs else "NULL"
        columns = ", ".join(self.quote(c) for c in (subject_column, "type", "occurred_at", "data"))
        values = ", ".join((self.ref(capture.subject), self.text(capture.type), occurred, data))
        return f"INSERT INTO {self.table(events_table)} ({columns}) VALUES ({values})"

    def value(self, value: Value, capture: Capture, shape: Shape) -> str:
        if isinstance(value, Now):
            return self.now_text()
        if isinstance(value, Literal):
            return self.literal(value.value)
        kind = shape.kind(capture, value)
        if kind in (*TIMESTAMPS, Kind.DATE):
            return self.time_text(self.ref(value), kind)
        return self.ref(value)
