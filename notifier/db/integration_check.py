"""The order system's side of the database, looked at for `notifier check`: do the integration
tables or views have the columns SPEC §2 names, of types notifier can read; does the wake-up
trigger sit on a table (on a view it can never fire); and which rules can never fire here.

The columns wanted are the models' in schema.py, so this check and `init-db` cannot disagree.
Types are checked as loosely as SPEC §2 allows: in SQLite timestamps are text, booleans 0/1
and numerics numbers, MySQL's BOOLEAN is TINYINT(1) and MariaDB's JSON is LONGTEXT, and a
view's column may carry no declared type at all (not checked).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import types

from notifier.core.rules import Rule
from notifier.db import order_number
from notifier.db.schema import EVENT_SOURCES, INTEGRATION_TABLES, OPTIONAL_TABLES

# A kind of column SPEC §2 names, and the words for it.
_KINDS: tuple[tuple[type[Any], str], ...] = (
    (types.Integer, "an integer"),
    (types.Boolean, "a boolean"),
    (types.Numeric, "a number"),
    (types.DateTime, "a timestamp"),
    (types.Date, "a date"),
    (types.JSON, "JSON"),
    (types.String, "text"),
)
# What each kind may be stored as, beside itself: everywhere, and on one database only.
_ALSO: dict[str, tuple[type[Any], ...]] = {
    "a number": (types.Integer,),
    "JSON": (types.String,),  # read as text and parsed (MariaDB's JSON is LONGTEXT)
}
_ALSO_ON: dict[str, dict[str, tuple[type[Any], ...]]] = {
    "sqlite": {
        "a boolean": (types.Integer, types.Numeric),
        "a timestamp": (types.String,),
        "a date": (types.String, types.DateTime),
    },
    "mysql": {"a boolean": (types.Integer,)},  # BOOLEAN is TINYINT(1)
}
# The tables an event source's rules need: its events, and what they are about.
_NEEDS = {
    "order": ("order_events", "orders"),
    "case": ("case_events", "cases"),
    "product": ("product_events", "products"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found: a problem (`check` exits 1) or a note for information."""

    table: str
    words: str
    problem: bool = True

    def __str__(self) -> str:
        return f"{self.table}: {self.words}"


def kind_of_type(model_type: types.TypeEngine[object]) -> str:
    for base, words in _KINDS:
        if isinstance(model_type, base):
            return words
    return "text"


def _fits(kind: str, found: types.TypeEngine[object], dialect: str) -> bool:
    if isinstance(found, types.NullType):
        return True  # a view's column with no declared type: nothing to check
    own = next(base for base, words in _KINDS if words == kind)
    allowed = (own, *_ALSO.get(kind, ()), *_ALSO_ON.get(dialect, {}).get(kind, ()))
    return isinstance(found, allowed)


def relations(conn: sa.Connection) -> tuple[set[str], set[str]]:
    """(tables, views) in the database's default schema."""
    inspector = sa.inspect(conn)
    return set(inspector.get_table_names()), set(inspector.get_view_names())


# The reference data a shop with its own tables gives as views; an empty table made by
# init-db would stand in the way of the view.
_SHOP_DATA = ("customers", "products", "orders", "order_items")


def _missing(name: str) -> str:
    if name in _SHOP_DATA:
        return (
            "no such table or view: beside a shop, create the shop's view first (README \"Putting "
            "notifier beside your shop\"); for a new install, notifier init-db creates an empty table"
        )
    return "no such table or view (notifier init-db creates an empty one)"


def check_columns(conn: sa.Connection) -> list[Finding]:
    """Every missing table, missing column and unreadable type, all at once."""
    tables, views = relations(conn)
    sqlite = conn.dialect.name == "sqlite"
    dialect = conn.dialect.name
    inspector = sa.inspect(conn)
    found: list[Finding] = []
    optional = {table.name for table in OPTIONAL_TABLES}
    for model in (*INTEGRATION_TABLES, *OPTIONAL_TABLES):
        if model.name not in tables | views and model.name in optional:
            continue  # optional (product_translations): its absence is a choice, not a problem
        if model.name not in tables | views:
            found.append(Finding(model.name, _missing(model.name)))
            continue
        have = {column["name"].lower(): column["type"] for column in inspector.get_columns(model.name)}
        for column in model.columns:
            kind = kind_of_type(column.type)
            if column.name not in have:
                found.append(Finding(model.name, f"no column {column.name} ({kind}, SPEC §2)"))
            elif not _fits(kind, have[column.name], dialect):
                found.append(
                    Finding(model.name, f"column {column.name} is {have[column.name]}; notifier needs {kind}")
                )
            elif _ends_at_32_bits(model, column, have[column.name], sqlite):
                words = f"column id is {have[column.name]}: its ids end at 2,147,483,647 (BIGINT goes on)"
                found.append(Finding(model.name, words, problem=False))
        found.extend(_optional_columns(model.name, have, dialect))
    return found


def _optional_columns(table: str, have: dict[str, Any], dialect: str) -> list[Finding]:
    """Columns beyond SPEC §2 that notifier reads where they exist: `orders.number`, shown to the
    customer as the order number (order_number.py). Absent is fine; present, it must be text."""
    column = order_number.COLUMN
    if table != order_number.ORDERS.name or column not in have or _fits("text", have[column], dialect):
        return []
    words = f"column {column} is {have[column]}; notifier shows it as the order number and needs text"
    return [Finding(table, words)]


def _ends_at_32_bits(
    model: sa.Table, column: sa.Column[Any], found: types.TypeEngine[object], sqlite: bool
) -> bool:
    """An event table's id of a 32-bit type: notifier reads 64-bit ids; the shop's sequence stops."""
    is_event_id = column.primary_key and any(model is table for table, _ in EVENT_SOURCES.values())
    return (
        is_event_id
        and not sqlite
        and isinstance(found, types.Integer)
        and not isinstance(found, types.BigInteger)
    )


def wakeup_triggers(conn: sa.Connection) -> dict[str, str]:
    """PostgreSQL: relation -> 'table' or 'view', for every relation the wake-up trigger is on."""
    if conn.dialect.name != "postgresql":
        return {}
    query = sa.text(
        "SELECT c.relname, c.relkind FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname = 'notifier_wake' AND c.relnamespace = 'public'::regnamespace"
    )
    return {row.relname: ("view" if row.relkind in ("v", "m") else "table") for row in conn.execute(query)}


def check_wakeup(conn: sa.Connection) -> list[Finding]:
    """A wake-up trigger on a view never fires: the shop writes the tables under it."""
    return [
        Finding(
            name,
            "the wake-up trigger is on a view, where it never fires (the shop writes the tables "
            f"under it): DROP TRIGGER notifier_wake ON {name}; polling finds the events meanwhile",
        )
        for name, kind in sorted(wakeup_triggers(conn).items())
        if kind == "view"
    ]


def _empty(conn: sa.Connection, table: str) -> bool:
    return conn.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is None


def rules_that_cannot_fire(conn: sa.Connection, rules: Iterable[Rule]) -> list[Finding]:
    """Enabled event rules whose tables are missing here (they can never fire: a problem), and
    event tables with no events yet (a note: their rules have nothing to act on so far)."""
    tables, views = relations(conn)
    present = tables | views
    by_source: dict[str, list[str]] = {}
    for rule in rules:
        source = rule.on.split(".", 1)[0]
        if rule.enabled and rule.schedule is None and source in _NEEDS:
            by_source.setdefault(source, []).append(rule.name)
    found: list[Finding] = []
    for source, names in by_source.items():
        missing = [t for t in _NEEDS[source] if t not in present]
        listed = f"{len(names)} {source} rule(s) ({', '.join(names)})"
        if missing:
            found.append(Finding(missing[0], f"missing, so {listed} can never fire on this database"))
        elif _empty(conn, EVENT_SOURCES[source][0].name):
            words = f"no events yet: {listed} have nothing to act on so far"
            found.append(Finding(EVENT_SOURCES[source][0].name, words, problem=False))
    return found
