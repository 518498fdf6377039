"""The read position of each event source, beside its event table: how far notifier has read,
the highest id there, what is still unread, and a move of the position made on purpose.

Every event with an id at or below the position was evaluated (or is a gap, looked for again
on every poll); every one above it is read next. Moving the position forward skips events for
good; moving it back has them read again, which the outbox's unique key per rule and event
makes harmless for every rule that already decided them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from notifier.db import store
from notifier.db.schema import EVENT_SOURCES


@dataclass(frozen=True, slots=True)
class Position:
    """One source's read position and its event table as it is now."""

    source: str  # order | product | case
    table: str  # order_events ...
    present: bool  # the table or view exists
    position: int  # every id <= this was read; 0 before the first read
    updated_at: datetime | None  # the daemon's last look (or a move by hand); None: never
    highest: int | None  # the highest id in the table; None when it is empty or missing
    unread: int  # events with an id above the position: read on the next poll
    gaps: int  # ids below the position not seen yet (uncommitted or rolled back)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return data


@dataclass(frozen=True, slots=True)
class Move:
    """What moving one source's read position would do."""

    source: str
    table: str
    old: int
    new: int
    skipped: int  # events between the positions never to be evaluated (moving forward)
    reread: int  # events read once more (moving back)
    highest: int | None

    @property
    def forward(self) -> bool:
        return self.new > self.old

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _present(conn: sa.Connection) -> set[str]:
    inspector = sa.inspect(conn)
    return set(inspector.get_table_names()) | set(inspector.get_view_names())


def _count(conn: sa.Connection, table: sa.Table, low: int, high: int | None = None) -> int:
    """Events with low < id (<= high)."""
    query = sa.select(sa.func.count()).select_from(table).where(table.c.id > low)
    if high is not None:
        query = query.where(table.c.id <= high)
    return int(conn.execute(query).scalar_one())


def positions(conn: sa.Connection) -> list[Position]:
    """Each source's read position, in the order order, product, case."""
    present = _present(conn)
    cursors = {row.source: row for row in conn.execute(sa.select(store.CURSORS))}
    counted = sa.select(store.GAPS.c.source, sa.func.count().label("n")).group_by(store.GAPS.c.source)
    gaps = {row.source: int(row.n) for row in conn.execute(counted)}
    found: list[Position] = []
    for source in ("order", "product", "case"):
        table = EVENT_SOURCES[source][0]
        cursor = cursors.get(source)
        at = int(cursor.position) if cursor is not None else 0
        here = table.name in present
        highest = conn.execute(sa.select(sa.func.max(table.c.id))).scalar() if here else None
        found.append(
            Position(
                source=source,
                table=table.name,
                present=here,
                position=at,
                updated_at=cursor.updated_at if cursor is not None else None,
                highest=int(highest) if highest is not None else None,
                unread=_count(conn, table, at) if here else 0,
                gaps=int(gaps.get(source, 0)),
            )
        )
    return found


def plan_move(conn: sa.Connection, source: str, new: int) -> Move:
    """What setting `source`'s read position to `new` would skip or read again."""
    now = next(p for p in positions(conn) if p.source == source)
    table = EVENT_SOURCES[source][0]
    low, high = sorted((now.position, new))
    between = _count(conn, table, low, high) if now.present else 0
    return Move(
        source=source,
        table=now.table,
        old=now.position,
        new=new,
        skipped=between if new > now.position else 0,
        reread=between if new < now.position else 0,
        highest=now.highest,
    )


def move(conn: sa.Connection, source: str, new: int, now: datetime) -> Move:
    """Set the read position (in the caller's transaction, under the same lock intake takes)."""
    store.lock_cursor(conn, source, now)
    planned = plan_move(conn, source, new)
    store.set_cursor(conn, source, new, now)
    return planned
