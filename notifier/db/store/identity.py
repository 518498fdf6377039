"""This database's own random id, made once and kept in notifier_state: part of every Message-ID,
so that two databases (a restored copy, staging, a second shop on the same domain) never give
two different messages the same id (RFC 5322 3.6.4 asks for global uniqueness)."""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa

from notifier.db.store.base import STATE, insert_into

DATABASE_ID = "database.id"


def database_id(conn: sa.Connection, now: datetime) -> str:
    """The id, made now if this database has none yet (the first maker wins a race)."""
    query = sa.select(STATE.c.value).where(STATE.c.key == DATABASE_ID)
    found = conn.execute(query).scalar()
    if found:
        return str(found)
    made = secrets.token_hex(8)
    conn.execute(
        insert_into(conn, STATE)
        .values(key=DATABASE_ID, value=made, updated_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return str(conn.execute(query).scalar_one())
