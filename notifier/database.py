"""Engines for SQLite and PostgreSQL, and `init-db`.

SQLite is opened in WAL mode with a busy timeout, and every transaction starts with
BEGIN IMMEDIATE: the order system writes to the same file, and a read transaction that
later wants to write would otherwise fail at once with "database is locked".
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from notifier import schema, tables
from notifier.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """Accept the plain forms ops write and pick the driver notifier ships with."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An Engine for `url` (sqlite:///file.db or postgresql://...)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    if url.startswith("postgresql"):
        try:
            return sa.create_engine(url, pool_pre_ping=True, **kwargs)
        except ModuleNotFoundError as exc:
            raise ConfigError("PostgreSQL needs psycopg: pip install 'notifier[postgres]'") from exc
    raise ConfigError(
        f"database URL {url.split(':', 1)[0]!r} is not supported; "
        "use sqlite:///path.db or postgresql://user@host/db"
    )


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module so BEGIN IMMEDIATE is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_postgres(engine: Engine | sa.Connection) -> bool:
    return engine.dialect.name == "postgresql"


def init_db(engine: Engine) -> list[str]:
    """Create the integration and notifier tables that are missing; return their names."""
    existing = set(sa.inspect(engine).get_table_names()) | set(sa.inspect(engine).get_view_names())
    wanted = [*schema.INTEGRATION_TABLES, *tables.NOTIFIER_TABLES]
    missing = [table for table in wanted if table.name not in existing]
    SQLModel.metadata.create_all(engine, tables=missing)
    return [table.name for table in missing]
