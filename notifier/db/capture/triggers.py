"""Install, check and remove the capture triggers of a mapping (capture.yaml).

Each entry of the mapping is one trigger named `notifier_capture_<n>_<digest>`: n its place in
the file, digest a hash of the SQL made for it on this database (the mapping's entry and the
kinds of its columns). So an installed trigger of that exact name is the one the mapping
wants; one with the same n and another digest is stale; one whose n the mapping no longer has
is extra. `install` replaces what is stale or extra and adds what is missing, and leaves
what matches alone, so running it twice does nothing the second time.

SQLite and PostgreSQL install in one transaction: the shop's writes see the old triggers or
the new ones, never a mix. MySQL/MariaDB commit every CREATE and DROP TRIGGER on its own, so
there an install is a sequence, run under LOCK TABLES (a table lock outlasts those commits: the
shop's writes wait for the swap); a failed one is finished by running install again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from notifier.core.capture import Capture, CaptureMap
from notifier.db.capture.columns import Shape, shape_of
from notifier.db.capture.dialect import NAME_PREFIX, Dialect
from notifier.errors import NotifierError, Problem, RulesError

_NAME = re.compile(re.escape(NAME_PREFIX) + r"(\d+)_([0-9a-f]+)\Z")
_PLACEHOLDER = NAME_PREFIX + "0_name"


class CaptureUnsupported(NotifierError):
    """Capture triggers are made for SQLite, PostgreSQL and MySQL/MariaDB only."""


class DatabaseMismatch(RulesError):
    """The capture mapping does not fit this database."""


class State(StrEnum):
    """How an entry's trigger stands."""

    MATCHING = "matching"  # installed, and what the mapping makes today
    MISSING = "missing"  # not installed
    STALE = "stale"  # installed from an earlier version of this entry
    EXTRA = "extra"  # installed, but the mapping has no such entry (any more)


@dataclass(frozen=True, slots=True)
class Trigger:
    """The trigger one entry wants: its name and the statements that make it."""

    capture: Capture
    name: str
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Standing:
    """One line of `capture check`: an entry's trigger, or a trigger no entry wants."""

    state: State
    name: str
    table: str
    capture: Capture | None = None
    installed: tuple[tuple[str, str], ...] = ()  # (name, table) of what stands in its place

    def words(self, path: str) -> str:
        if self.capture is None:
            return (
                f"{self.name} on {self.table or '(no table)'}: installed, but {path} has no entry "
                f"{_number(self.name) or '?'} any more (install or remove drops it)"
            )
        where = f"{path}:{self.capture.line}: entry {self.capture.number}, {self.capture.describe()}"
        if self.state == State.MATCHING:
            return f"{where}: installed and matching ({self.name})"
        if self.state == State.MISSING:
            return f"{where}: not installed (notifier capture install adds it)"
        old = ", ".join(name for name, _ in self.installed)
        return (
            f"{where}: installed from an earlier version of the mapping ({old}); "
            "notifier capture install replaces it"
        )


def dialect_for(conn: sa.Connection) -> Dialect:
    from notifier.db.capture.mysql import MySQL
    from notifier.db.capture.postgresql import PostgreSQL
    from notifier.db.capture.sqlite import SQLite

    dialects: dict[str, type[Dialect]] = {
        "sqlite": SQLite,
        "postgresql": PostgreSQL,
        "mysql": MySQL,
        "mariadb": MySQL,  # SQLAlchemy's name for a mariadb:// URL
    }
    found = dialects.get(conn.dialect.name)
    if found is None:
        raise CaptureUnsupported(f"capture triggers are not made for {conn.dialect.name} databases")
    return found(conn)


def plan(conn: sa.Connection, mapping: CaptureMap) -> list[Trigger]:
    """The triggers the mapping wants here; DatabaseMismatch listing every entry that names a
    table or column this database does not have."""
    shape, problems = shape_of(conn, mapping)
    if problems:
        raise DatabaseMismatch(problems)
    dialect = dialect_for(conn)
    return [_trigger(dialect, capture, shape) for capture in mapping.captures]


def _trigger(dialect: Dialect, capture: Capture, shape: Shape) -> Trigger:
    made = dialect.statements(_PLACEHOLDER, capture, shape)
    digest = hashlib.sha256("\n".join(made).encode()).hexdigest()[:12]
    name = f"{NAME_PREFIX}{capture.number}_{digest}"
    return Trigger(capture, name, tuple(statement.replace(_PLACEHOLDER, name) for statement in made))


def _number(name: str) -> int | None:
    found = _NAME.match(name)
    return int(found[1]) if found else None


def compare(wanted: list[Trigger], installed: list[tuple[str, str]]) -> list[Standing]:
    """Each wanted trigger's standing, then every installed one no entry wants."""
    names = {name for name, _ in installed}
    wanted_names = {trigger.name for trigger in wanted}
    found: list[Standing] = []
    claimed: set[str] = set()
    for trigger in wanted:
        table = trigger.capture.table
        if trigger.name in names and (trigger.name, table) in installed:
            found.append(Standing(State.MATCHING, trigger.name, table, trigger.capture))
            claimed.add(trigger.name)
            continue
        before = tuple(
            (name, on)
            for name, on in installed
            if _number(name) == trigger.capture.number and name not in wanted_names
        )
        state = State.STALE if before else State.MISSING
        found.append(Standing(state, trigger.name, table, trigger.capture, before))
        claimed.update(name for name, _ in before)
    found += [Standing(State.EXTRA, name, on) for name, on in installed if name not in claimed]
    return found


def standing(conn: sa.Connection, mapping: CaptureMap) -> list[Standing]:
    """How the installed triggers stand against the mapping (`capture check`)."""
    wanted = plan(conn, mapping)
    return compare(wanted, dialect_for(conn).installed(conn))


def install_statements(conn: sa.Connection, mapping: CaptureMap) -> list[str]:
    """The statements `install` runs: each stale trigger dropped just before its replacement is
    made (on MySQL, where each commits alone, the shortest window between them), the missing
    made, then the extra dropped."""
    dialect = dialect_for(conn)
    wanted = {trigger.name: trigger for trigger in plan(conn, mapping)}
    statements: list[str] = []
    extra: list[str] = []
    tables: set[str] = set()
    for item in compare(list(wanted.values()), dialect.installed(conn)):
        if item.state == State.EXTRA:
            extra += dialect.drop(item.name, item.table)
            tables |= {item.table} - {""}
        elif item.state != State.MATCHING:
            for name, table in item.installed:
                statements += dialect.drop(name, table)
            statements += wanted[item.name].statements
            tables |= {item.table, item.capture.events_table} if item.capture else {item.table}
            tables |= {table for _, table in item.installed if table}
    return dialect.locked([*statements, *extra], tables)


def remove_statements(conn: sa.Connection) -> list[str]:
    """The statements `remove` runs: drop every notifier_capture_* trigger here."""
    dialect = dialect_for(conn)
    installed = dialect.installed(conn)
    statements = [statement for name, table in installed for statement in dialect.drop(name, table)]
    return dialect.locked(statements, {table for _, table in installed if table})


def run(conn: sa.Connection, statements: list[str]) -> None:
    """Run the statements in one transaction (where the database's DDL is transactional).

    Through the driver's own cursor, without parameters: PyMySQL would otherwise read the '%' of
    DATE_FORMAT as a placeholder. The driver's errors are raised as SQLAlchemy's, as any query's."""
    if conn.in_transaction():
        conn.commit()
    driver_error = conn.dialect.loaded_dbapi.Error
    with conn.begin():
        cursor = conn.connection.cursor()
        try:
            for statement in statements:
                try:
                    cursor.execute(statement)
                except driver_error as exc:
                    if statements[-1] == "UNLOCK TABLES":
                        cursor.execute("UNLOCK TABLES")  # MySQL: never leave the shop's tables locked
                    raise sa.exc.DBAPIError.instance(statement, None, exc, driver_error) from exc
        finally:
            cursor.close()


def problems_here(conn: sa.Connection, mapping: CaptureMap) -> list[Problem]:
    """What in the mapping does not fit this database (for `notifier check`)."""
    return shape_of(conn, mapping)[1]
