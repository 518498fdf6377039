"""Engines for SQLite, PostgreSQL and MariaDB / MySQL, and `init-db`.

SQLite is opened in WAL mode with a busy timeout, and every transaction starts with
BEGIN IMMEDIATE: the order system writes to the same file, and a read transaction that
later wants to write would otherwise fail at once with "database is locked". Work that only
reads (loading what a batch of messages needs) uses `reading()`, a plain deferred BEGIN, so
it never holds the write lock the order system and other daemons wait for.

MariaDB / MySQL runs at READ COMMITTED, as PostgreSQL does by default: at MySQL's own
REPEATABLE READ a transaction keeps the snapshot of its first read, so an event committed
after it (an id the cursor skipped as a gap) would stay invisible however often it looked.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from notifier.db import schema, tables
from notifier.db.migrations.env_names import VERSION_TABLE
from notifier.errors import ConfigError, NoDatabase

if TYPE_CHECKING:
    from alembic.config import Config

    from notifier.config.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
LOCK_POLL_FIRST, LOCK_POLL_MAX = 0.0005, 0.002  # seconds between tries for SQLite's write lock
READ_ONLY = "notifier_read_only"  # execution option: this transaction only reads


def normalize_url(url: str) -> str:
    """Accept the plain forms ops write and pick the driver notifier ships with."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    for plain in ("mysql://", "mariadb://", "mariadb+pymysql://"):
        # One dialect name ("mysql") for both servers; PyMySQL, the driver notifier ships with.
        if url.startswith(plain):
            url = "mysql+pymysql://" + url.removeprefix(plain)
    return url


def missing_sqlite_file(url: str) -> str | None:
    """The file of a sqlite:/// URL when it does not exist (connecting would create it), else None."""
    try:
        parsed = sa.engine.make_url(normalize_url(url))
    except sa.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return None if Path(parsed.database).exists() else parsed.database


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An Engine for `url` (sqlite:///file.db, postgresql://... or mysql://...)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    if url.startswith("postgresql"):
        try:
            return sa.create_engine(url, pool_pre_ping=True, **kwargs)
        except ModuleNotFoundError as exc:
            raise ConfigError("PostgreSQL needs psycopg: pip install 'notifier[postgres]'") from exc
    if url.startswith("mysql"):
        return _mysql_engine(url, **kwargs)
    raise ConfigError(
        f"database URL {url.split(':', 1)[0]!r} is not supported; "
        "use sqlite:///path.db, postgresql://user@host/db or mysql://user@host/db"
    )


def _mysql_engine(url: str, **kwargs: Any) -> Engine:
    parsed = sa.engine.make_url(url)
    if "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})  # 4-byte UTF-8: names, emoji
    options: dict[str, Any] = {"isolation_level": "READ COMMITTED", "pool_pre_ping": True}
    try:
        engine = sa.create_engine(parsed, **{**options, **kwargs})
    except ModuleNotFoundError as exc:
        raise ConfigError("MariaDB / MySQL needs PyMySQL: pip install 'notifier[mysql]'") from exc

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Timestamps are stored as UTC wall time in DATETIME(6); NOW() and friends agree.
        cursor = dbapi_connection.cursor()
        cursor.execute("SET time_zone = '+00:00'")
        cursor.close()

    return engine


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
        if connection.get_execution_options().get(READ_ONLY, False):
            connection.exec_driver_sql("BEGIN")
        else:
            _begin_immediate(connection)

    return engine


def _begin_immediate(connection: sa.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for the write lock in steps of a millisecond or two.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between
    tries: a writer that finds the lock taken for 30 ms sleeps 53. With several processes of
    one daemon taking turns at the lock many times a second, those oversleeps add up to a
    good part of the time. Only taking the lock waits this way; any other wait (a reader
    during WAL recovery) keeps SQLite's handler and the full busy timeout.
    """
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        pause = LOCK_POLL_FIRST
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(pause)
            pause = min(pause * 2, LOCK_POLL_MAX)
    finally:
        raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


@contextmanager
def reading(engine: Engine) -> Iterator[sa.Connection]:
    """A connection whose transaction only reads: on SQLite it takes no write lock (WAL
    readers see a snapshot and block nobody), so slow work between its reads cannot hold up
    the order system's writes. Rolled back on leaving."""
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        try:
            yield conn
        finally:
            conn.rollback()


@contextmanager
def connect(settings: Settings) -> Iterator[sa.Connection]:
    """A connection for one command; the engine is disposed afterwards (no pooled leftovers).

    The database must exist: a command that reads never leaves an empty SQLite file behind."""
    url = settings.database_url.reveal()
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise NoDatabase(
            f"there is no database at {missing} ({url}): give --database-url "
            "(or NOTIFIER_DATABASE_URL), or create it with notifier init-db"
        )
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def is_postgres(engine: Engine | sa.Connection) -> bool:
    return engine.dialect.name == "postgresql"


def is_mysql(engine: Engine | sa.Connection) -> bool:
    """MariaDB or MySQL (SQLAlchemy's dialect "mysql" speaks to both)."""
    return engine.dialect.name in ("mysql", "mariadb")


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"


def _alembic(connection: sa.Connection) -> Config:
    # Imported here: only init-db migrates, and Alembic would add ~11 MB to every daemon.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def schema_revision(engine: Engine) -> str | None:
    """The revision of notifier's own tables, or None before `init-db`."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def init_db(engine: Engine) -> list[str]:
    """Create the integration tables that are missing, and create or upgrade notifier's own
    tables to the newest revision. Returns the names of the tables it created."""
    before = _existing(engine)
    wanted = (*schema.INTEGRATION_TABLES, *schema.OPTIONAL_TABLES)
    missing = [table for table in wanted if table.name not in before]
    SQLModel.metadata.create_all(engine, tables=missing)
    from alembic import command

    with engine.begin() as conn:
        config = _alembic(conn)
        if "notifier_notifications" in before and VERSION_TABLE not in before:
            # Made by a notifier that predates migrations: those tables are revision 0001.
            command.stamp(config, FIRST_REVISION)
        command.upgrade(config, "head")
    return [name for name in _table_order() if name not in before and name in _existing(engine)]


def _existing(engine: Engine) -> set[str]:
    inspector = sa.inspect(engine)
    return set(inspector.get_table_names()) | set(inspector.get_view_names())


def _table_order() -> list[str]:
    return [t.name for t in (*schema.INTEGRATION_TABLES, *schema.OPTIONAL_TABLES, *tables.NOTIFIER_TABLES)]
