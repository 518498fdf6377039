"""Planned notifications into the outbox: one row per rule and occurrence, idempotent by key.
The row's shape is the store's: a plan (core.planning.Planned) stays a value."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from notifier.core.planning import Planned
from notifier.db.store import bulk
from notifier.db.store.base import (
    NOTIFICATIONS,
    insert_new,
)


def insert_notifications(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert planned notifications; a key already present is left alone (idempotent)."""
    if not rows:
        return 0
    if bulk.usable(conn):
        return bulk.insert_rows(conn, NOTIFICATIONS, rows, conflict="key")
    return insert_new(conn, NOTIFICATIONS, "key", rows=rows)


def insert_planned(conn: sa.Connection, plans: Iterable[Planned], now: datetime) -> int:
    """Insert these plans' rows; a key already present is left alone (idempotent)."""
    return insert_notifications(conn, [planned_row(plan, now) for plan in plans])


def planned_row(plan: Planned, now: datetime) -> dict[str, Any]:
    """The notifier_notifications row for one plan."""
    return {
        "key": plan.key,
        "rule": plan.rule.name,
        "template": plan.rule.template,
        "category": plan.rule.category.value,
        "source": plan.event.source,
        "event_id": plan.event.id,
        "event_type": plan.event.type,
        "event_occurred_at": plan.event.occurred_at,
        "thread": plan.event.thread,
        "subject_id": plan.event.subject_id,
        "customer_id": plan.customer_id,
        "recipient": plan.recipient,
        "state": plan.state.value,
        "reason": plan.reason.value if plan.reason else None,
        "detail": plan.detail,
        "rule_fingerprint": plan.rule.fingerprint or None,
        "due_basis": plan.basis,
        "due_at": plan.due_at,
        "expires_at": plan.expires_at,
        "next_attempt_at": plan.due_at,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
