"""Small facts for `status`, the suppression list, and what customers told us through links."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from notifier.db.store.base import (
    FEEDBACK,
    STATE,
    SUPPRESSIONS,
    insert_into,
)


def publish(conn: sa.Connection, values: dict[str, str], now: datetime) -> None:
    """Set small facts for `status` (rules in force, last reload, SMTP health)."""
    for key, value in values.items():
        statement = insert_into(conn, STATE).values(key=key, value=value, updated_at=now)
        conn.execute(
            statement.on_conflict_do_update(index_elements=["key"], set_={"value": value, "updated_at": now})
        )


def suppress(conn: sa.Connection, address: str, reason: str, now: datetime) -> None:
    conn.execute(
        insert_into(conn, SUPPRESSIONS)
        .values(address=address.lower(), reason=reason, created_at=now)
        .on_conflict_do_nothing(index_elements=["address"])
    )


def suppressed(conn: sa.Connection, addresses: Iterable[str]) -> set[str]:
    wanted = sorted({a.lower() for a in addresses if a})
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            conn.execute(sa.select(SUPPRESSIONS.c.address).where(SUPPRESSIONS.c.address.in_(chunk))).scalars()
        )
    return found


def record_feedback(
    conn: sa.Connection, case_id: int, kind: str, now: datetime, data: str | None = None
) -> int:
    """Keep what a customer told us about a case; intake turns it into a `case.<kind>` event."""
    result = conn.execute(FEEDBACK.insert().values(case_id=case_id, type=kind, occurred_at=now, data=data))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
