"""The outbox as `history` reads it: the notifications of an order, a case or a customer,
as frozen values (core.values.NotificationRecord), never rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from notifier.core.timing import as_utc
from notifier.core.values import NotificationRecord
from notifier.db.store.base import NOTIFICATIONS

__all__ = ["notification_records", "record_of"]

_TIMES = (
    "event_occurred_at",
    "due_at",
    "expires_at",
    "next_attempt_at",
    "lease_until",
    "first_failure_at",
    "sent_at",
)
_PLAIN = (
    "id",
    "rule",
    "source",
    "event_id",
    "event_type",
    "subject_id",
    "thread",
    "customer_id",
    "recipient",
    "state",
    "reason",
    "detail",
    "due_basis",
    "attempts",
    "message_id",
    "subject",
    "resend_of",
    "rule_fingerprint",
)


def record_of(row: Any) -> NotificationRecord:
    """One outbox row as a value (SQLite hands back naive UTC times; they are made aware)."""
    values: dict[str, Any] = {name: row[name] for name in _PLAIN}
    values.update({name: as_utc(row[name]) if row[name] is not None else None for name in _TIMES})
    code, reply = row["smtp_code"], row["smtp_reply"]
    values["smtp_reply"] = f"{code} {reply}" if code else reply
    return NotificationRecord(**values)


def notification_records(
    conn: sa.Connection,
    *,
    thread: str | None = None,
    customer_ids: Sequence[int] = (),
    email: str | None = None,
    threads: Sequence[str] = (),
) -> list[NotificationRecord]:
    """One thread's notifications (`thread`), or a customer's: by customer id, by recipient
    address (any case) or in one of their threads; with nothing given, every one. In id order."""
    n = NOTIFICATIONS
    query = sa.select(n).order_by(n.c.id)
    if thread is not None:
        query = query.where(n.c.thread == thread)
    elif customer_ids or email is not None or threads:
        wanted: list[sa.ColumnElement[bool]] = [
            n.c.customer_id.in_(list(customer_ids)),
            n.c.thread.in_(list(threads)),
        ]
        if email is not None:
            wanted.append(sa.func.lower(n.c.recipient) == email.lower())
        query = query.where(sa.or_(*wanted))
    return [record_of(row) for row in conn.execute(query).mappings()]
