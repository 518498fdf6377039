"""The capture mapping (capture.yaml) as values: which change in a shop's own table is which
notifier event, and what the event row carries.

Pure: config/capture_reader.py reads the file into these values; notifier/db/capture/ turns
them into triggers. `can_never_fire` is the one word on which rules can never fire on a
database whose events come from the mapping.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from notifier.core.rules import SCHEDULE_TICK, Rule

# The event sources a capture may write (SPEC §2), each with its table and subject column.
EVENT_TABLES: dict[str, tuple[str, str]] = {
    "order": ("order_events", "order_id"),
    "product": ("product_events", "product_id"),
    "case": ("case_events", "case_id"),
}
# notifier's own events: written by notifier itself (the "not solved" link), never captured.
OWN_EVENTS = {"case.not_solved": "case"}

Scalar = str | int | float | bool | None


class Change(StrEnum):
    """The change to the shop's row that a trigger fires on."""

    INSERT = "insert"  # a new row
    UPDATE = "update"  # a row changed
    DELETE = "delete"  # a row removed

    @property
    def rows(self) -> tuple[str, ...]:
        """The rows a trigger of this change sees: `new.` on insert/update, `old.` on update/delete."""
        return {"insert": ("new",), "update": ("new", "old"), "delete": ("old",)}[self.value]


class Comparison(StrEnum):
    """How a `when:` condition compares a column."""

    EQUALS = "equals"  # new.col: X
    IN = "in"  # {in: [X, Y]}
    NOT = "not"  # {not: X}: differs from X (a NULL differs too)
    IS_NULL = "is_null"  # {is: null}
    IS_NOT_NULL = "is_not_null"  # {is: not null}


@dataclass(frozen=True, slots=True)
class Column:
    """`new.col` or `old.col`: a column of the changed row."""

    row: str  # "new" or "old"
    name: str
    line: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.row}.{self.name}"


@dataclass(frozen=True, slots=True)
class Now:
    """`now`: the time of the change, UTC."""

    def __str__(self) -> str:
        return "now"


@dataclass(frozen=True, slots=True)
class Literal:
    """Any other scalar: written as it is."""

    value: Scalar


Value = Column | Now | Literal


@dataclass(frozen=True, slots=True)
class Condition:
    """One `when:` condition on a column."""

    column: Column
    test: Comparison
    values: tuple[Scalar, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Capture:
    """One entry of the mapping: one trigger."""

    number: int  # its place in the file, from 1: part of the trigger's name
    event: str  # 'order.dispatched'
    table: str  # the shop's table the trigger sits on
    on: Change
    subject: Column
    occurred_at: Column | Now = Now()
    when: tuple[Condition, ...] = ()
    changed: tuple[str, ...] = ()  # update only: fires when one of these columns' value differs
    data: tuple[tuple[str, Value], ...] = ()
    line: int = 0
    table_line: int = 0  # the line of `table:`, for what the database says of the table

    @property
    def source(self) -> str:
        """'order', 'product' or 'case'."""
        return self.event.split(".", 1)[0]

    @property
    def type(self) -> str:
        """The short name the event table's `type` column holds ('dispatched')."""
        return self.event.split(".", 1)[1]

    @property
    def events_table(self) -> str:
        return EVENT_TABLES[self.source][0]

    def columns(self) -> list[Column]:
        """Every column of the shop's row this entry reads (for checking they exist)."""
        found = [self.subject, *(c.column for c in self.when)]
        found += [Column("new", name) for name in self.changed]
        found += [v for _, v in self.data if isinstance(v, Column)]
        if isinstance(self.occurred_at, Column):
            found.append(self.occurred_at)
        return found

    def describe(self) -> str:
        """'order.dispatched on insert into order_orderstatuschange'."""
        preposition = {"insert": "into", "update": "of", "delete": "from"}[self.on.value]
        return f"{self.event} on {self.on.value} {preposition} {self.table}"


@dataclass(frozen=True, slots=True)
class CaptureMap:
    """The whole mapping, read from `path`."""

    path: str
    captures: tuple[Capture, ...] = ()

    @property
    def declared(self) -> frozenset[str]:
        """The event types the mapping writes: rules may name them, the vocabulary's or not."""
        return frozenset(capture.event for capture in self.captures)


def can_never_fire(rules: Iterable[Rule], declared: Iterable[str], present: Iterable[str]) -> list[Rule]:
    """The enabled event rules whose trigger event nothing here writes: neither the capture
    mapping declares it (`declared`) nor is it in the event tables already (`present`, event
    types like 'case.opened'). notifier's own events come with their source's: a case's "not
    solved" link exists only where cases do. Calendar rules always fire."""
    written = set(declared) | set(present)
    sources = {name.split(".", 1)[0] for name in written}
    return [
        rule
        for rule in rules
        if rule.enabled
        and rule.on != SCHEDULE_TICK
        and rule.on not in written
        and OWN_EVENTS.get(rule.on) not in sources
    ]
