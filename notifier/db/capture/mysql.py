"""MySQL's and MariaDB's capture triggers: `CREATE TRIGGER ... AFTER INSERT ON t FOR EACH ROW
BEGIN IF ... THEN INSERT ...; END IF; END`.

A trigger runs with its definer's rights (whoever installed it), so the shop's own user needs
no right on the event tables. DDL is not transactional here: every CREATE and DROP TRIGGER
commits on its own, so they run under LOCK TABLES (`locked`). A TIMESTAMP column reads in
the writer's session time zone and is turned back into UTC; a DATETIME is UTC already, as
SPEC §2 has it.
"""

from __future__ import annotations

import sqlalchemy as sa

from notifier.core.capture import Capture
from notifier.db.capture.columns import Kind
from notifier.db.capture.dialect import NAME_PREFIX, Dialect

_FORMAT = "'%Y-%m-%d %H:%i:%s.%f'"


class MySQL(Dialect):
    name = "mysql"

    def text(self, value: str) -> str:
        # Backslash is an escape character in MySQL's string literals (unless NO_BACKSLASH_ESCAPES).
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"

    def differs(self, left: str, right: str) -> str:
        return f"NOT ({left} <=> {right})"

    def now_text(self) -> str:
        return f"DATE_FORMAT(UTC_TIMESTAMP(6), {_FORMAT})"

    def now_time(self) -> str:
        return "UTC_TIMESTAMP(6)"

    def _utc(self, expression: str, kind: Kind) -> str:
        if kind == Kind.SESSION_TIMESTAMP:
            return f"CONVERT_TZ({expression}, @@session.time_zone, '+00:00')"
        return expression

    def time_text(self, expression: str, kind: Kind) -> str:
        if kind == Kind.DATE:
            return f"DATE_FORMAT({expression}, '%Y-%m-%d')"
        return f"DATE_FORMAT({self._utc(expression, kind)}, {_FORMAT})"

    def occurred(self, expression: str, kind: Kind) -> str:
        return self._utc(expression, kind)

    def json_object(self, pairs: list[tuple[str, str]]) -> str:
        return "JSON_OBJECT(" + ", ".join(f"{self.text(key)}, {value}" for key, value in pairs) + ")"

    def create(self, name: str, capture: Capture, guard: str, insert: str) -> list[str]:
        change = capture.on.value.upper()
        return [
            f"CREATE TRIGGER {self.quote(name)} AFTER {change} ON {self.table(capture.table)} FOR EACH ROW "
            f"BEGIN IF {guard} THEN {insert}; END IF; END"
        ]

    def locked(self, statements: list[str], tables: set[str]) -> list[str]:
        # Each CREATE and DROP TRIGGER commits alone, but LOCK TABLES outlasts those commits:
        # with the tables locked, no write of the shop's falls between a stale trigger's drop
        # and its replacement (it waits the milliseconds the swap takes).
        if not statements or not tables:
            return statements
        locks = ", ".join(f"{self.table(name)} WRITE" for name in sorted(tables))
        return [f"LOCK TABLES {locks}", *statements, "UNLOCK TABLES"]

    def drop(self, name: str, table: str) -> list[str]:
        return [f"DROP TRIGGER IF EXISTS {self.quote(name)}"]

    def installed(self, conn: sa.Connection) -> list[tuple[str, str]]:
        query = sa.text(
            "SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS tbl FROM information_schema.TRIGGERS "
            "WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE :prefix"
        )
        rows = conn.execute(query, {"prefix": NAME_PREFIX + "%"})
        return [(row.name, row.tbl) for row in rows if row.name.startswith(NAME_PREFIX)]
