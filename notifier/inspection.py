"""Read-only views of the outbox for `status` and `history`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifier.context import CUSTOMERS
from notifier.store import ATTEMPTS, NOTIFICATIONS, STATE
from notifier.tables import State
from notifier.timing import as_utc


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    by_state: dict[str, int]
    by_rule: dict[str, dict[str, int]]
    oldest_queued_due: datetime | None
    sent_last_minute: int
    published: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["oldest_queued_due"] = self.oldest_queued_due.isoformat() if self.oldest_queued_due else None
        return data


def status(conn: sa.Connection, now: datetime) -> Status:
    n = NOTIFICATIONS
    by_state = {state.value: 0 for state in State}
    by_rule: dict[str, dict[str, int]] = {}
    for rule, state, count in conn.execute(
        sa.select(n.c.rule, n.c.state, sa.func.count()).group_by(n.c.rule, n.c.state)
    ):
        by_state[state] = by_state.get(state, 0) + count
        by_rule.setdefault(rule, {})[state] = count
    oldest = conn.execute(
        sa.select(sa.func.min(n.c.due_at)).where(
            n.c.state.in_([State.QUEUED, State.RETRYING]), n.c.due_at <= now
        )
    ).scalar()
    recent = conn.execute(
        sa.select(sa.func.count()).where(n.c.state == State.SENT, n.c.sent_at >= now - timedelta(minutes=1))
    ).scalar_one()
    published = {row.key: row.value for row in conn.execute(sa.select(STATE.c.key, STATE.c.value))}
    return Status(
        by_state=by_state,
        by_rule=by_rule,
        oldest_queued_due=as_utc(oldest) if oldest else None,
        sent_last_minute=recent,
        published=published,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    id: int
    rule: str
    event: str
    thread: str
    recipient: str | None
    state: str
    reason: str | None
    detail: str | None
    due_at: datetime
    sent_at: datetime | None
    subject: str | None
    message_id: str | None
    smtp_reply: str | None
    attempts: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("due_at", "sent_at"):
            data[key] = data[key].isoformat() if data[key] else None
        for attempt in data["attempts"]:
            attempt["at"] = attempt["at"].isoformat()
        return data


def history(
    conn: sa.Connection,
    *,
    order: int | None = None,
    case: int | None = None,
    customer_email: str | None = None,
) -> list[HistoryEntry]:
    """Every notification about an order, a case or a customer, oldest first."""
    n = NOTIFICATIONS
    query = sa.select(n).order_by(n.c.due_at, n.c.id)
    if order is not None:
        query = query.where(n.c.thread == f"order:{order}")
    elif case is not None:
        query = query.where(n.c.thread == f"case:{case}")
    elif customer_email is not None:
        ids = sa.select(CUSTOMERS.c.id).where(sa.func.lower(CUSTOMERS.c.email) == customer_email.lower())
        query = query.where(
            sa.or_(n.c.customer_id.in_(ids), sa.func.lower(n.c.recipient) == customer_email.lower())
        )
    rows = list(conn.execute(query).mappings())
    attempts = _attempts(conn, [row["id"] for row in rows])
    return [_entry(row, attempts.get(row["id"], [])) for row in rows]


def _attempts(conn: sa.Connection, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), 500):
        query = (
            sa.select(ATTEMPTS)
            .where(ATTEMPTS.c.notification_id.in_(ids[start : start + 500]))
            .order_by(ATTEMPTS.c.id)
        )
        for row in conn.execute(query).mappings():
            found.setdefault(row["notification_id"], []).append(
                {
                    "at": as_utc(row["at"]),
                    "outcome": row["outcome"],
                    "code": row["code"],
                    "reply": row["reply"],
                }
            )
    return found


def _entry(row: Any, attempts: list[dict[str, Any]]) -> HistoryEntry:
    return HistoryEntry(
        id=row["id"],
        rule=row["rule"],
        event=f"{row['event_type']} #{row['event_id']}",
        thread=row["thread"],
        recipient=row["recipient"],
        state=row["state"],
        reason=row["reason"],
        detail=row["detail"],
        due_at=as_utc(row["due_at"]),
        sent_at=as_utc(row["sent_at"]) if row["sent_at"] else None,
        subject=row["subject"],
        message_id=row["message_id"],
        smtp_reply=f"{row['smtp_code']} {row['smtp_reply']}" if row["smtp_code"] else row["smtp_reply"],
        attempts=attempts,
    )
