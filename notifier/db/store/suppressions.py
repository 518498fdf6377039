"""The suppression list as people keep it: listed, added to, removed from, imported.

An address on it gets no marketing mail (core/gates.py, db/store/fanout.py). Reasons are
free words; the daemon writes `hard bounce`, `complaint` and `unsubscribed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from notifier.core.timing import as_utc
from notifier.db.store.base import SUPPRESSIONS, insert_new

__all__ = ["Suppressed", "add_suppression", "list_suppressions", "remove_suppression"]


@dataclass(frozen=True, slots=True)
class Suppressed:
    address: str
    reason: str
    since: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "reason": self.reason, "since": self.since.isoformat()}


def _value(row: Any) -> Suppressed:
    return Suppressed(address=row.address, reason=row.reason, since=as_utc(row.created_at))


def list_suppressions(conn: sa.Connection, *, reason: str | None = None) -> list[Suppressed]:
    s = SUPPRESSIONS
    query = sa.select(s).order_by(s.c.created_at, s.c.address)
    if reason is not None:
        query = query.where(s.c.reason == reason)
    return [_value(row) for row in conn.execute(query)]


def add_suppression(conn: sa.Connection, address: str, reason: str, now: datetime) -> bool:
    """Put an address on the list; False when it was there already (its reason and date stay)."""
    row = {"address": address.strip().lower(), "reason": reason, "created_at": now}
    return insert_new(conn, SUPPRESSIONS, "address", values=row) > 0


def remove_suppression(conn: sa.Connection, address: str) -> Suppressed | None:
    """Take an address off the list; what it was there for, or None when it was not there."""
    s = SUPPRESSIONS
    wanted = address.strip().lower()
    row = conn.execute(sa.select(s).where(s.c.address == wanted)).first()
    if row is None:
        return None
    conn.execute(s.delete().where(s.c.address == wanted))
    return _value(row)
