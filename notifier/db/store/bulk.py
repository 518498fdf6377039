"""Many rows in one statement on PostgreSQL: each column sent as one array, spread by unnest().

An executemany sends one UPDATE per row (psycopg pipelines them, but the server still parses,
plans and runs each), and SQLAlchemy's multi-row INSERT spells every value as a parameter of
its own: a thousand rows of twenty columns is a statement of twenty thousand placeholders that
the driver rewrites and the server parses each time. Here the statement has one parameter per
column, whatever the number of rows, so its text is the same every time and the server
prepares it once. SQLite keeps executemany: it runs in this process, with no round trip to save.
MariaDB / MySQL keeps it too: PyMySQL sends an executemany INSERT as one multi-row INSERT, and
these array statements have no MySQL spelling.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def usable(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _arrays(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """{"a0": [row[columns[0]] for every row], ...}; an enum goes as its value."""
    return {
        f"a{i}": [v.value if isinstance(v := row[name], enum.Enum) else v for row in rows]
        for i, name in enumerate(columns)
    }


@functools.cache
def _spread(table: sa.Table, columns: tuple[str, ...], names: tuple[str, ...]) -> str:
    """unnest(CAST(:a0 AS type[]), ...) AS v(name0, ...), the types the table's."""
    arrays = ", ".join(
        f"CAST(:a{i} AS {table.c[name].type.compile(dialect=_PG)}[])" for i, name in enumerate(columns)
    )
    return f"unnest({arrays}) AS v({', '.join(names)})"


@functools.cache
def _update_text(table: sa.Table, key: str, columns: tuple[str, ...]) -> sa.TextClause:
    names = tuple(f"c_{name}" for name in columns)
    sets = ", ".join(f"{name} = v.c_{name}" for name in columns)
    spread = _spread(table, (key, *columns), ("k", *names))
    return sa.text(f"UPDATE {table.name} SET {sets} FROM {spread} WHERE {table.name}.{key} = v.k")


def update_rows(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]], *, by: str
) -> None:
    """UPDATE `table` SET each of `columns` to the row's value WHERE its primary key `id` is
    the row's `by` value (every row has every column)."""
    values = _arrays((by, *columns), rows)
    conn.execute(_update_text(table, "id", columns), values)


@functools.cache
def _insert_text(table: sa.Table, columns: tuple[str, ...], conflict: str | None) -> sa.TextClause:
    spread = _spread(table, columns, columns)
    tail = f" ON CONFLICT ({conflict}) DO NOTHING" if conflict else ""
    return sa.text(f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM {spread}{tail}")


def insert_rows(
    conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]], *, conflict: str | None = None
) -> int:
    """INSERT the rows, skipping a row whose `conflict` column (a unique key) is already
    present; how many were inserted. One statement per set of columns the rows have."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    inserted = 0
    for columns, group in groups.items():
        result = conn.execute(_insert_text(table, columns, conflict), _arrays(columns, group))
        inserted += max(result.rowcount or 0, 0)
    return inserted
