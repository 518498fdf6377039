"""The only code that writes notifier's own tables.

Event cursors and gaps, the outbox (notifications), attempts, published state and the
suppression list. Each function takes an open connection, so the caller decides the
transaction: planning writes notifications and moves the cursor in one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from notifier.core.timing import as_utc
from notifier.core.values import Claimed, State
from notifier.db.tables import Attempt, Cursor, Feedback, Gap, Notification, StateEntry, Suppression

NOTIFICATIONS: sa.Table = Notification.__table__  # type: ignore[attr-defined]
ATTEMPTS: sa.Table = Attempt.__table__  # type: ignore[attr-defined]
CURSORS: sa.Table = Cursor.__table__  # type: ignore[attr-defined]
GAPS: sa.Table = Gap.__table__  # type: ignore[attr-defined]
STATE: sa.Table = StateEntry.__table__  # type: ignore[attr-defined]
SUPPRESSIONS: sa.Table = Suppression.__table__  # type: ignore[attr-defined]
FEEDBACK: sa.Table = Feedback.__table__  # type: ignore[attr-defined]


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# --- event cursors -------------------------------------------------------------------------


def lock_cursor(conn: sa.Connection, source: str, now: datetime) -> int:
    """The source's position, locked for this transaction (one evaluator per source)."""
    conn.execute(
        _insert(conn, CURSORS)
        .values(source=source, position=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["source"])
    )
    query = sa.select(CURSORS.c.position).where(CURSORS.c.source == source)
    if conn.dialect.name == "postgresql":
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
            _insert(conn, GAPS).on_conflict_do_nothing(),
            [{"source": source, "event_id": i, "noticed_at": now} for i in new_gaps],
        )


def expire_gaps(conn: sa.Connection, source: str, older_than: datetime) -> int:
    """Forget gaps never filled: rolled-back inserts. Returns how many."""
    result = conn.execute(GAPS.delete().where(GAPS.c.source == source, GAPS.c.noticed_at < older_than))
    return result.rowcount or 0


# --- the outbox ----------------------------------------------------------------------------


def insert_notifications(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert planned notifications; a key already present is left alone (idempotent)."""
    if not rows:
        return 0
    # preserve_rowcount: without it PostgreSQL reports -1 for a multi-row insert.
    statement = (
        _insert(conn, NOTIFICATIONS)
        .on_conflict_do_nothing(index_elements=["key"])
        .execution_options(preserve_rowcount=True)
    )
    result = conn.execute(statement, list(rows))
    return max(result.rowcount or 0, 0)


_CLAIM_COLUMNS = [NOTIFICATIONS.c[name] for name in Claimed.__slots__]  # type: ignore[attr-defined]


CLAIM_LOCK = 0x6E6F7469  # an arbitrary, fixed advisory-lock key for claims ("noti")


def claim_due(
    conn: sa.Connection, *, now: datetime, limit: int, worker: str, lease: timedelta
) -> list[Claimed]:
    """Take up to `limit` due notifications, oldest first, and lease them to `worker`.

    A notification waits while an earlier one of its thread (same order or case) is being
    sent elsewhere or waiting to retry, so one order's emails reach SMTP in event order.
    Leases that ran out (a worker died) are claimable again.
    """
    if conn.dialect.name == "postgresql":
        # Claims are short; taking them one daemon at a time keeps a thread's order across
        # daemons (a concurrent claim could otherwise take a later message of an order whose
        # earlier one another daemon is claiming right now).
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
    candidates = _due_candidates(conn, now, limit)
    ids = [c.id for c in _unblocked(conn, candidates, now)][:limit]
    if not ids:
        return []
    conn.execute(
        NOTIFICATIONS.update()
        .where(NOTIFICATIONS.c.id.in_(ids))
        .values(state=State.SENDING, lease_owner=worker, lease_until=now + lease, updated_at=now)
    )
    rows = conn.execute(sa.select(*_CLAIM_COLUMNS).where(NOTIFICATIONS.c.id.in_(ids))).mappings()
    claimed = [Claimed.from_row(row) for row in rows]
    return sorted(claimed, key=lambda c: (c.due_at, c.event_id, c.id))


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
        if conn.dialect.name == "postgresql":
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


def update_notifications(conn: sa.Connection, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-row changes; every dict has `b_id` and the same set of columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        groups.setdefault(tuple(sorted(change)), []).append(change)
    for columns, rows in groups.items():
        values: dict[str, Any] = {name: sa.bindparam(name) for name in columns if name != "b_id"}
        statement = NOTIFICATIONS.update().where(NOTIFICATIONS.c.id == sa.bindparam("b_id")).values(values)
        conn.execute(statement, rows)


def record_attempts(conn: sa.Connection, attempts: Sequence[dict[str, Any]]) -> None:
    if attempts:
        conn.execute(ATTEMPTS.insert(), list(attempts))


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


def requeue_failed(conn: sa.Connection, ids: Sequence[int], now: datetime) -> int:
    """Put failed notifications back in the queue to go at once (`notifier retry`)."""
    result = conn.execute(
        NOTIFICATIONS.update()
        .where(NOTIFICATIONS.c.id.in_(list(ids)), NOTIFICATIONS.c.state == State.FAILED)
        .values(
            state=State.QUEUED,
            next_attempt_at=now,
            due_at=now,
            expires_at=None,
            attempts=0,
            first_failure_at=None,
            reason=None,
            detail=None,
            updated_at=now,
        )
    )
    return result.rowcount or 0


# --- published state and suppressions --------------------------------------------------------


def publish(conn: sa.Connection, values: dict[str, str], now: datetime) -> None:
    """Set small facts for `status` (rules in force, last reload, SMTP health)."""
    for key, value in values.items():
        statement = _insert(conn, STATE).values(key=key, value=value, updated_at=now)
        conn.execute(
            statement.on_conflict_do_update(index_elements=["key"], set_={"value": value, "updated_at": now})
        )


def suppress(conn: sa.Connection, address: str, reason: str, now: datetime) -> None:
    conn.execute(
        _insert(conn, SUPPRESSIONS)
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


# --- deliberate resends ------------------------------------------------------------------------

# Columns a resend copies from the notification it repeats: the same rule, template, event and
# recipient. Everything about the sending itself (message, Message-ID, SMTP reply) starts afresh.
_RESEND_COPIED = (
    "rule",
    "template",
    "category",
    "source",
    "event_id",
    "event_type",
    "event_occurred_at",
    "thread",
    "subject_id",
    "customer_id",
    "recipient",
)


def insert_resend(conn: sa.Connection, original_id: int, now: datetime) -> int | None:
    """Queue a fresh copy of a sent notification to go at once (`notifier resend`).

    The copy's key is `<original key>:resend:<n>` (n counts the resends of that original),
    `resend_of` names the original, and message and Message-ID are left empty so the copy is
    rendered again and gets a Message-ID of its own. A resend of a resend copies the original.
    Returns the new notification's id, or None when `original_id` is not a sent notification.
    """
    n = NOTIFICATIONS
    found = (
        conn.execute(sa.select(n).where(n.c.id == original_id, n.c.state == State.SENT)).mappings().first()
    )
    if found is None:
        return None
    row: Any = found
    if row["resend_of"] is not None:
        root = conn.execute(sa.select(n).where(n.c.id == row["resend_of"])).mappings().first()
        row = root if root is not None else row
    earlier = conn.execute(sa.select(sa.func.count()).where(n.c.resend_of == row["id"])).scalar_one()
    values = {name: row[name] for name in _RESEND_COPIED}
    values.update(
        state=State.QUEUED,
        resend_of=row["id"],
        due_at=now,
        next_attempt_at=now,
        expires_at=None,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    for number in range(earlier + 1, earlier + 100):
        key = f"{row['key']}:resend:{number}"
        inserted = conn.execute(
            _insert(conn, NOTIFICATIONS)
            .values(key=key, **values)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(NOTIFICATIONS.c.id)
        ).scalar()
        if inserted is not None:
            return int(inserted)
    return None
