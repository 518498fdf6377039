"""SQLite's capture triggers: `CREATE TRIGGER ... AFTER INSERT ON t WHEN ... BEGIN INSERT ...; END`.

SQLite keeps times as text; strftime reads the forms a shop writes (an offset is turned into
UTC) and writes `YYYY-MM-DD HH:MM:SS.SSS`, the form notifier reads. A time it cannot read
becomes NULL, so occurred_at falls back to the time of the change instead of failing the
shop's own write.
"""

from __future__ import annotations

import sqlalchemy as sa

from notifier.core.capture import Capture
from notifier.db.capture.columns import Kind
from notifier.db.capture.dialect import NAME_PREFIX, Dialect

_UTC_TEXT = "strftime('%Y-%m-%d %H:%M:%f', {})"


class SQLite(Dialect):
    name = "sqlite"

    def differs(self, left: str, right: str) -> str:
        return f"{left} IS NOT {right}"

    def now_text(self) -> str:
        return _UTC_TEXT.format("'now'")

    def now_time(self) -> str:
        return self.now_text()

    def time_text(self, expression: str, kind: Kind) -> str:
        return f"date({expression})" if kind == Kind.DATE else _UTC_TEXT.format(expression)

    def occurred(self, expression: str, kind: Kind) -> str:
        return _UTC_TEXT.format(expression)

    def json_object(self, pairs: list[tuple[str, str]]) -> str:
        return "json_object(" + ", ".join(f"{self.text(key)}, {value}" for key, value in pairs) + ")"

    def create(self, name: str, capture: Capture, guard: str, insert: str) -> list[str]:
        change = capture.on.value.upper()
        return [
            f"CREATE TRIGGER {self.quote(name)} AFTER {change} ON {self.table(capture.table)} "
            f"FOR EACH ROW WHEN {guard} BEGIN {insert}; END"
        ]

    def drop(self, name: str, table: str) -> list[str]:
        return [f"DROP TRIGGER IF EXISTS {self.quote(name)}"]

    def installed(self, conn: sa.Connection) -> list[tuple[str, str]]:
        query = sa.text(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE :prefix"
        )
        rows = conn.execute(query, {"prefix": NAME_PREFIX + "%"})
        return [(row.name, row.tbl_name) for row in rows if row.name.startswith(NAME_PREFIX)]
