"""PostgreSQL's capture triggers: a plpgsql function per trigger, and `CREATE TRIGGER ... AFTER
INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()`.

The function is SECURITY DEFINER with its own search_path: it writes the event row with the
rights of whoever installed it (notifier's user, who owns the event tables), so the shop's
own database user needs no right on them; every name in it is written with its schema.
"""

from __future__ import annotations

import sqlalchemy as sa

from notifier.core.capture import Capture
from notifier.db.capture.columns import Kind
from notifier.db.capture.dialect import NAME_PREFIX, Dialect

_FORMAT = "'YYYY-MM-DD HH24:MI:SS.US'"
_QUOTE = "$notifier_capture$"  # the function body's dollar quote


class PostgreSQL(Dialect):
    name = "postgresql"

    def __init__(self, conn: sa.Connection) -> None:
        super().__init__(conn)
        self.schema = str(conn.execute(sa.text("SELECT current_schema()")).scalar())

    def table(self, name: str) -> str:
        return f"{self.quote(self.schema)}.{self.quote(name)}"

    def text(self, value: str) -> str:
        # A '$' is written as chr(36), so no literal can end the dollar-quoted body early.
        parts = [super(PostgreSQL, self).text(part) for part in value.split("$")]
        return parts[0] if len(parts) == 1 else "(" + " || chr(36) || ".join(parts) + ")"

    def differs(self, left: str, right: str) -> str:
        return f"{left} IS DISTINCT FROM {right}"

    def now_text(self) -> str:
        return f"to_char(now() AT TIME ZONE 'UTC', {_FORMAT})"

    def now_time(self) -> str:
        return "now()"

    def time_text(self, expression: str, kind: Kind) -> str:
        if kind == Kind.DATE:
            return f"to_char({expression}, 'YYYY-MM-DD')"
        if kind == Kind.UTC_TIMESTAMP:
            return f"to_char({expression} AT TIME ZONE 'UTC', {_FORMAT})"
        return f"to_char({expression}, {_FORMAT})"  # without a zone: UTC already (SPEC §2)

    def occurred(self, expression: str, kind: Kind) -> str:
        if kind == Kind.DATE:
            return f"(({expression})::timestamp AT TIME ZONE 'UTC')"
        if kind == Kind.TIMESTAMP:
            return f"({expression} AT TIME ZONE 'UTC')"
        return expression

    def json_object(self, pairs: list[tuple[str, str]]) -> str:
        return "jsonb_build_object(" + ", ".join(f"{self.text(key)}, {value}" for key, value in pairs) + ")"

    def function(self, name: str) -> str:
        return f"{self.quote(self.schema)}.{self.quote(name)}"

    def create(self, name: str, capture: Capture, guard: str, insert: str) -> list[str]:
        change = capture.on.value.upper()
        return [
            f"CREATE FUNCTION {self.function(name)}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
            f"SET search_path = pg_catalog, pg_temp AS {_QUOTE}\n"
            f"BEGIN\n  IF {guard} THEN\n    {insert};\n  END IF;\n  RETURN NULL;\nEND\n{_QUOTE}",
            f"CREATE TRIGGER {self.quote(name)} AFTER {change} ON {self.table(capture.table)} "
            f"FOR EACH ROW EXECUTE FUNCTION {self.function(name)}()",
        ]

    def drop(self, name: str, table: str) -> list[str]:
        trigger = [f"DROP TRIGGER IF EXISTS {self.quote(name)} ON {self.table(table)}"] if table else []
        return [*trigger, f"DROP FUNCTION IF EXISTS {self.function(name)}()"]

    def installed(self, conn: sa.Connection) -> list[tuple[str, str]]:
        triggers = sa.text(
            "SELECT t.tgname AS name, c.relname AS tbl FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace "
            "AND t.tgname LIKE :prefix"
        )
        functions = sa.text(
            "SELECT proname AS name FROM pg_proc WHERE pronamespace = current_schema()::regnamespace "
            "AND proname LIKE :prefix"
        )
        prefix = {"prefix": NAME_PREFIX + "%"}
        found = [
            (row.name, row.tbl) for row in conn.execute(triggers, prefix) if row.name.startswith(NAME_PREFIX)
        ]
        named = {name for name, _ in found}
        # A function whose trigger is gone (dropped by hand, or its table dropped): a leftover.
        found += [
            (row.name, "")
            for row in conn.execute(functions, prefix)
            if row.name.startswith(NAME_PREFIX) and row.name not in named
        ]
        return found
