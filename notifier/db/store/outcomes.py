"""What became of claimed notifications: states, SMTP replies, attempts; and retries and resends by hand."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from notifier.core.retry import Settled
from notifier.core.values import State
from notifier.db.store import bulk
from notifier.db.store.base import (
    ATTEMPTS,
    NOTIFICATIONS,
    insert_new,
)
from notifier.db.store.claims import release
from notifier.db.store.published import suppress

_REPLY_LIMIT = 1000  # characters of an SMTP reply kept
_INSERT_ATTEMPT = ATTEMPTS.insert()  # built once: recorder groups are small and many


def record_settled(conn: sa.Connection, settled: Sequence[Settled], *, worker: str, now: datetime) -> None:
    """Store what became of claimed messages: their rows, an attempt for each SMTP reply, and
    hard-bounced addresses on the suppression list. The only code that spells these columns."""
    untouched = [i for i in settled if i.verdict.released and i.reply is None and i.built is None]
    release(conn, [item.claimed.id for item in untouched], now)
    changed = [i for i in settled if not (i.verdict.released and i.reply is None and i.built is None)]
    update_notifications(conn, [_row(item, now) for item in changed])
    record_attempts(
        conn,
        [
            {
                "notification_id": item.claimed.id,
                "at": now,
                "outcome": item.reply.outcome.value,
                "code": item.reply.code,
                "reply": item.reply.reply[:_REPLY_LIMIT],
                "worker": worker,
            }
            for item in settled
            if item.reply is not None
        ],
    )
    for item in settled:
        if item.verdict.suppress and item.claimed.recipient:
            suppress(conn, item.claimed.recipient, "hard bounce", now)


def _row(item: Settled, now: datetime) -> dict[str, Any]:
    verdict = item.verdict
    row: dict[str, Any] = {
        "b_id": item.claimed.id,
        "state": verdict.state,
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
    }
    if item.built is not None:
        row.update(message_id=item.built.message_id, subject=item.built.subject, locale=item.built.locale)
        # Sent: the bytes are only needed to resend exactly the same message after a failure.
        if verdict.state is not State.SENT:
            row["message"] = item.built.message
    if verdict.released:
        return row  # back in the queue as it was (SMTP stalled, or shutting down)
    if verdict.state is not State.RETRYING:
        row["reason"] = verdict.reason
    if verdict.detail is not None or verdict.state is State.SENT:
        row["detail"] = verdict.detail
    if verdict.next_attempt_at is not None:
        row["next_attempt_at"] = verdict.next_attempt_at
    if verdict.first_failure_at is not None:
        row["first_failure_at"] = verdict.first_failure_at
    if item.reply is not None:
        row["smtp_code"] = item.reply.code
        row["smtp_reply"] = item.reply.reply[:_REPLY_LIMIT]
        row["attempts"] = item.claimed.attempts + 1
    if verdict.state is State.SENT:
        row["sent_at"] = now
    return row


def update_notifications(conn: sa.Connection, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-row changes; every dict has `b_id` and the same set of columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        groups.setdefault(tuple(sorted(change)), []).append(change)
    for columns, rows in groups.items():
        if bulk.usable(conn):
            bulk.update_rows(conn, NOTIFICATIONS, tuple(c for c in columns if c != "b_id"), rows, by="b_id")
        else:
            conn.execute(_update_of(columns), rows)


@functools.cache
def _update_of(columns: tuple[str, ...]) -> sa.Update:
    """UPDATE ... WHERE id = :b_id for one set of columns, built once: a recorder group is
    often a single message, and building the statement cost more than running it."""
    values: dict[str, Any] = {name: sa.bindparam(name) for name in columns if name != "b_id"}
    return NOTIFICATIONS.update().where(NOTIFICATIONS.c.id == sa.bindparam("b_id")).values(values)


def record_attempts(conn: sa.Connection, attempts: Sequence[dict[str, Any]]) -> None:
    if attempts and bulk.usable(conn):
        bulk.insert_rows(conn, ATTEMPTS, attempts)
    elif attempts:
        conn.execute(_INSERT_ATTEMPT, list(attempts))


def release_waiting(conn: sa.Connection, reason: str, now: datetime) -> int:
    """Queued notifications waiting for `reason` to pass look again now (the daemon, when it
    starts with what they waited for: the secret key)."""
    n = NOTIFICATIONS
    result = conn.execute(
        n.update()
        .where(n.c.state == State.QUEUED, n.c.reason == reason, n.c.next_attempt_at > now)
        .values(next_attempt_at=now, updated_at=now)
    )
    return result.rowcount or 0


def requeue_failed(conn: sa.Connection, ids: Sequence[int], now: datetime) -> int:
    """Put failed notifications (or skipped ones whose reason `retry` found gone) back in the
    queue to go at once (`notifier retry`)."""
    result = conn.execute(
        NOTIFICATIONS.update()
        .where(NOTIFICATIONS.c.id.in_(list(ids)), NOTIFICATIONS.c.state.in_([State.FAILED, State.SKIPPED]))
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
        # No RETURNING here: MySQL has none. The key is unique, so it finds the copy.
        if insert_new(conn, NOTIFICATIONS, "key", values={"key": key, **values}):
            return int(conn.execute(sa.select(n.c.id).where(n.c.key == key)).scalar_one())
    return None
