"""Claims: due notifications leased to one process at a time, one thread's in event order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifier.core.timing import as_utc
from notifier.core.values import Claimed, State
from notifier.db.store.base import (
    NOTIFICATIONS,
    hold,
)

_CLAIM_COLUMNS = [NOTIFICATIONS.c[name] for name in Claimed.__slots__]  # type: ignore[attr-defined]


def claimed_from_row(row: Mapping[Any, Any]) -> Claimed:
    """A claimed outbox row as the value the send side works with (times made aware)."""
    values = {name: row[name] for name in Claimed.__slots__}  # type: ignore[attr-defined]
    for name in ("due_at", "expires_at", "first_failure_at"):
        if values[name] is not None:
            values[name] = as_utc(values[name])  # SQLite hands back naive UTC
    return Claimed(**values)


def as_claimed(row: Mapping[str, Any], number: int) -> Claimed:
    """A planned row (`planned_row` or a fan-out row) as the daemon would claim it, never
    tried: for the replay, which sends nothing."""
    fresh = {"id": number, "attempts": 0, "first_failure_at": None, "message_id": None}
    return claimed_from_row({**row, **fresh, "message": None, "resend_of": None})


CLAIM_LOCK = 0x6E6F7469  # an arbitrary, fixed advisory-lock key for claims ("noti")
CLAIM_ROW = "claims.lock"  # MySQL: the notifier_state row a claim locks instead


def claim_due(
    conn: sa.Connection, *, now: datetime, limit: int, worker: str, lease: timedelta
) -> list[Claimed]:
    """Take up to `limit` due notifications, oldest first, and lease them to `worker`.

    A notification waits while an earlier one of its thread (same order or case) is being
    sent elsewhere or waiting to retry, so one order's emails reach SMTP in event order.
    Leases that ran out (a worker died) are claimable again.
    """
    _one_claim_at_a_time(conn, now)
    candidates = _due_candidates(conn, now, limit)
    ids = [c.id for c in _unblocked(conn, candidates, now)][:limit]
    if not ids:
        return []
    leased = (
        NOTIFICATIONS.update()
        .where(NOTIFICATIONS.c.id.in_(ids))
        .values(state=State.SENDING, lease_owner=worker, lease_until=now + lease, updated_at=now)
    )
    if conn.dialect.name == "postgresql":  # one round trip; SQLite before 3.35 has no RETURNING
        rows = conn.execute(leased.returning(*_CLAIM_COLUMNS)).mappings().all()
    else:
        conn.execute(leased)
        rows = conn.execute(sa.select(*_CLAIM_COLUMNS).where(NOTIFICATIONS.c.id.in_(ids))).mappings().all()
    claimed = [claimed_from_row(row) for row in rows]
    return sorted(claimed, key=lambda c: (c.due_at, c.event_id, c.id))


def _one_claim_at_a_time(conn: sa.Connection, now: datetime) -> None:
    """Claims are short; taking them one daemon at a time keeps a thread's order across
    daemons. SKIP LOCKED alone does not: a daemon skips the earlier message of an order that
    another is claiming right now (locked, its lease not yet committed), finds nothing that
    blocks the later one, and claims it. PostgreSQL has a transaction's advisory lock for this;
    MariaDB / MySQL's GET_LOCK lasts the session, not the transaction, so there one row of
    notifier_state is locked until the commit instead."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
    elif conn.dialect.name == "mysql":
        hold(conn, CLAIM_ROW, now)


@dataclass(frozen=True, slots=True)
class _Candidate:
    id: int
    thread: str
    due_at: datetime
    next_attempt_at: datetime


def _due_candidates(conn: sa.Connection, now: datetime, limit: int) -> list[_Candidate]:
    """The `limit` oldest due notifications, read along the (state, next_attempt_at) index
    one state at a time, so the cost is the batch's, not the backlog's."""
    n = NOTIFICATIONS
    columns = (n.c.id, n.c.thread, n.c.due_at, n.c.next_attempt_at)
    queries = [
        sa.select(*columns)
        .where(n.c.state == state, n.c.next_attempt_at <= now)
        .order_by(n.c.next_attempt_at, n.c.id)
        .limit(limit)
        for state in (State.QUEUED, State.RETRYING)
    ]
    # Leases that ran out: a worker died while sending.
    queries.append(sa.select(*columns).where(n.c.state == State.SENDING, n.c.lease_until < now).limit(limit))
    found: list[_Candidate] = []
    for query in queries:
        if conn.dialect.name in ("postgresql", "mysql"):
            query = query.with_for_update(skip_locked=True)
        found.extend(
            _Candidate(r.id, r.thread, as_utc(r.due_at), as_utc(r.next_attempt_at))
            for r in conn.execute(query)
        )
    return sorted(found, key=lambda c: (c.next_attempt_at, c.id))[:limit]


def _unblocked(conn: sa.Connection, candidates: list[_Candidate], now: datetime) -> list[_Candidate]:
    """Candidates with no earlier message of their thread being sent elsewhere or waiting to
    retry (earlier ones that are themselves candidates go first, in the same batch)."""
    threads = sorted({c.thread for c in candidates})
    blockers: dict[str, list[tuple[datetime, int]]] = {}
    n = NOTIFICATIONS
    for start in range(0, len(threads), 500):
        query = sa.select(n.c.thread, n.c.due_at, n.c.id).where(
            n.c.thread.in_(threads[start : start + 500]),
            sa.or_(
                sa.and_(n.c.state == State.SENDING, n.c.lease_until > now),
                sa.and_(n.c.state == State.RETRYING, n.c.next_attempt_at > now),
            ),
        )
        for row in conn.execute(query):
            blockers.setdefault(row.thread, []).append((as_utc(row.due_at), row.id))
    return [
        c
        for c in candidates
        if not any((due, id_) < (c.due_at, c.id) and id_ != c.id for due, id_ in blockers.get(c.thread, ()))
    ]


def extend_lease(conn: sa.Connection, ids: Sequence[int], worker: str, until: datetime) -> int:
    """Keep claimed notifications reserved while a slow send is still in flight."""
    if not ids:
        return 0
    result = conn.execute(
        NOTIFICATIONS.update()
        .where(
            NOTIFICATIONS.c.id.in_(list(ids)),
            NOTIFICATIONS.c.lease_owner == worker,
            NOTIFICATIONS.c.state == State.SENDING,
        )
        .values(lease_until=until)
    )
    return result.rowcount or 0


def release(conn: sa.Connection, ids: Sequence[int], now: datetime) -> None:
    """Hand claimed notifications back untouched (SMTP stalled, or shutting down)."""
    if ids:
        conn.execute(
            NOTIFICATIONS.update()
            .where(NOTIFICATIONS.c.id.in_(list(ids)), NOTIFICATIONS.c.state == State.SENDING)
            .values(state=State.QUEUED, lease_owner=None, lease_until=None, updated_at=now)
        )
