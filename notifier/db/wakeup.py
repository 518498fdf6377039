"""PostgreSQL LISTEN/NOTIFY: wake the daemon as soon as an event commits.

`notifier init-db --notify-trigger` installs a statement-level trigger on the three event
tables that calls `pg_notify('notifier_events', <table>)`; NOTIFY is delivered on commit, so
a woken daemon always finds the row. The order system may install the same trigger itself.
On a view it would never fire (the shop writes the tables under it), so views are refused.
Polling stays as the fallback: a lost connection or a missing trigger only costs latency.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from notifier.db.schema import EVENT_SOURCES

log = logging.getLogger("notifier.db.wakeup")

CHANNEL = "notifier_events"
FUNCTION = f"""
CREATE OR REPLACE FUNCTION notifier_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END $$
"""


def event_views(conn: sa.Connection) -> list[str]:
    """The event tables that are views here: a trigger on a view never fires, since the order
    system writes the tables under it (PostgreSQL accepts it all the same)."""
    views = set(sa.inspect(conn).get_view_names())
    return [table.name for table, _ in EVENT_SOURCES.values() if table.name in views]


def install_trigger(engine: Engine) -> list[str]:
    """Create (or replace) the wake-up trigger on every event table that is a table (never on
    a view: see event_views); returns the tables it is on."""
    with engine.begin() as conn:
        views = event_views(conn)
        tables = [table.name for table, _ in EVENT_SOURCES.values() if table.name not in views]
        conn.execute(sa.text(FUNCTION))
        for name in tables:
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS notifier_wake ON {name}"))
            conn.execute(
                sa.text(
                    f"CREATE TRIGGER notifier_wake AFTER INSERT ON {name} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION notifier_wake()"
                )
            )
    return tables


def _conninfo(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(engine: Engine, wake: Callable[[], None], stopping: asyncio.Event) -> None:
    """Call `wake()` on every notification until `stopping`; reconnect after failures."""
    import psycopg

    pause = 1.0
    while not stopping.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(_conninfo(engine), autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                log.info("listening for new events on PostgreSQL channel %s", CHANNEL)
                pause = 1.0
                async for _ in conn.notifies():
                    wake()
                    if stopping.is_set():
                        return
        except (psycopg.Error, OSError) as exc:
            log.warning(
                "LISTEN connection lost (%s); polling meanwhile, retrying in %.0fs",
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                pause,
            )
        try:
            await asyncio.wait_for(stopping.wait(), timeout=pause)
        except TimeoutError:
            pause = min(pause * 2, 60.0)
