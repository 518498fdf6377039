"""How far each event source has been read: the cursor, and the ids skipped over (gaps)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa

from notifier.db.store.base import (
    CURSORS,
    GAPS,
    insert_into,
)


def lock_cursor(conn: sa.Connection, source: str, now: datetime) -> int:
    """The source's position, locked for this transaction (one evaluator per source)."""
    conn.execute(
        insert_into(conn, CURSORS)
        .values(source=source, position=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["source"])
    )
    query = sa.select(CURSORS.c.position).where(CURSORS.c.source == source)
    if conn.dialect.name in ("postgresql", "mysql"):
        query = query.with_for_update()
    return int(conn.execute(query).scalar_one())


def open_gaps(conn: sa.Connection, source: str) -> dict[int, datetime]:
    rows = conn.execute(sa.select(GAPS.c.event_id, GAPS.c.noticed_at).where(GAPS.c.source == source))
    return {row.event_id: row.noticed_at for row in rows}


def advance_cursor(
    conn: sa.Connection,
    source: str,
    *,
    position: int,
    new_gaps: Sequence[int],
    closed_gaps: Iterable[int],
    now: datetime,
) -> None:
    """Move the cursor, remember ids skipped over, forget gaps that were filled."""
    conn.execute(CURSORS.update().where(CURSORS.c.source == source).values(position=position, updated_at=now))
    closed = list(closed_gaps)
    for start in range(0, len(closed), 500):
        conn.execute(
            GAPS.delete().where(GAPS.c.source == source, GAPS.c.event_id.in_(closed[start : start + 500]))
        )
    if new_gaps:
        conn.execute(
            insert_into(conn, GAPS).on_conflict_do_nothing(),
            [{"source": source, "event_id": i, "noticed_at": now} for i in new_gaps],
        )


def expire_gaps(conn: sa.Connection, source: str, older_than: datetime) -> int:
    """Forget gaps never filled: rolled-back inserts. Returns how many."""
    result = conn.execute(GAPS.delete().where(GAPS.c.source == source, GAPS.c.noticed_at < older_than))
    return result.rowcount or 0


def set_cursor(conn: sa.Connection, source: str, position: int, now: datetime) -> None:
    """Set the position by hand (`notifier position set`); the gaps above it are forgotten,
    since every id above the position is read anyway."""
    conn.execute(CURSORS.update().where(CURSORS.c.source == source).values(position=position, updated_at=now))
    conn.execute(GAPS.delete().where(GAPS.c.source == source, GAPS.c.event_id > position))
