"""The outbox read for `report` and `simulate`: what was sent and failed, and when it was planned."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from notifier.core.timing import as_utc
from notifier.core.values import Event, State
from notifier.db.store.base import NOTIFICATIONS


def sent_or_failed(conn: sa.Connection, since: datetime) -> list[tuple[str, str, str, int]]:
    """(rule, state, event type, count) of the notifications sent or failed since `since`."""
    n = NOTIFICATIONS
    settled = sa.or_(
        sa.and_(n.c.state == State.SENT, n.c.sent_at >= since),
        sa.and_(n.c.state == State.FAILED, n.c.updated_at >= since),
    )
    query = sa.select(n.c.rule, n.c.state, n.c.event_type, sa.func.count()).where(settled)
    return [tuple(row) for row in conn.execute(query.group_by(n.c.rule, n.c.state, n.c.event_type))]  # type: ignore[misc]


def first_sent_per_order(conn: sa.Connection, rule: str, since: datetime) -> dict[int, datetime]:
    """Order id -> when a rule's message about it was first sent (resends by hand left out)."""
    n = NOTIFICATIONS
    query = sa.select(n.c.subject_id, n.c.sent_at).where(
        n.c.rule == rule,
        n.c.source == "order",
        n.c.state == State.SENT,
        n.c.resend_of.is_(None),
        n.c.event_occurred_at >= since,
    )
    messaged: dict[int, datetime] = {}
    for order_id, sent_at in conn.execute(query):
        moment = as_utc(sent_at)
        messaged[order_id] = min(moment, messaged.get(order_id, moment))
    return messaged


def first_planned(conn: sa.Connection, source: str, events: Iterable[Event]) -> dict[int, datetime]:
    """Event id -> when the daemon first planned something for it (looked up by thread, indexed)."""
    n = NOTIFICATIONS
    chunk = list(events)
    query = (
        sa.select(n.c.event_id, sa.func.min(n.c.created_at))
        .where(n.c.thread.in_({e.thread for e in chunk}), n.c.source == source)
        .where(n.c.event_id.in_([e.id for e in chunk]), n.c.resend_of.is_(None))
        .group_by(n.c.event_id)
    )
    return {event_id: as_utc(created) for event_id, created in conn.execute(query) if created is not None}


def sent_per_rule_and_day(conn: sa.Connection, since: datetime) -> list[tuple[str, Any, int]]:
    """(rule, UTC day as text, count) of messages sent for events since `since` (no resends)."""
    n = NOTIFICATIONS
    if conn.dialect.name == "sqlite":
        day = sa.func.date(n.c.sent_at)
    elif conn.dialect.name == "mysql":  # DATETIME holding UTC
        day = sa.func.date_format(n.c.sent_at, "%Y-%m-%d")
    else:
        day = sa.func.to_char(sa.func.timezone("UTC", n.c.sent_at), "YYYY-MM-DD")
    query = (
        sa.select(n.c.rule, day.label("day"), sa.func.count())
        .where(
            n.c.state == State.SENT,
            n.c.resend_of.is_(None),
            n.c.event_occurred_at >= since,
            n.c.sent_at.is_not(None),
        )
        .group_by(n.c.rule, day)
    )
    return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def sent_per_template_and_locale(conn: sa.Connection) -> dict[tuple[str, str], int]:
    """(template, locale) -> how many were sent: which message kinds went in which language."""
    n = NOTIFICATIONS
    query = sa.select(n.c.template, n.c.locale, sa.func.count()).where(n.c.state == State.SENT)
    return {(t, loc or "-"): c for t, loc, c in conn.execute(query.group_by(n.c.template, n.c.locale))}
