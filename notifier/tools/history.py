"""`history`: for an order, a case or a customer, every rule that could apply, explained.

What was sent (when, Message-ID, the server's reply), or why not, in the words stored when it
was decided (core/explain.py words them): the condition was false, an `unless:` event happened,
it expired, it waits (until when, and computed from what), it failed (with the reply), the
customer was left out of a fan-out (and why), the rule is disabled, or the event it waits for
has not happened. A rule edited since is named as changed. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from notifier.core.explain import EPOCH, explain, timing_words, unevaluated_words, unread_words
from notifier.core.rules import Rule, RuleSet
from notifier.core.timing import as_utc, utcnow
from notifier.core.values import Event, NotificationRecord, kind_of
from notifier.db import events as event_rows
from notifier.db.events import SOURCES
from notifier.db.store import ATTEMPTS, CURSORS, GAPS
from notifier.db.store.history import notification_records
from notifier.db.subjects import CASES, CUSTOMERS, ORDERS

__all__ = ["NOT_PLANNED", "HistoryEntry", "Why", "history", "timing_words"]

NOT_PLANNED = "not planned"  # the state shown for a rule that has no notification for the event


class Why:
    """The one-word outcomes of an entry that has no notification row."""

    RULE_DISABLED = "rule_disabled"  # `enabled: false` in the rules file
    NO_EVENT = "no_event"  # the triggering event has not happened (yet)
    NOT_READ_YET = "not_read_yet"  # the event exists but the daemon has not evaluated it
    NOT_IN_FORCE = "not_in_force"  # the rule was added or enabled after the event was evaluated
    NOT_EVALUATED = "not_evaluated"  # below the read position, and no rule's decision recorded


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One rule and one triggering event: what was sent, or why not."""

    id: int | None  # the notification; None when nothing was planned (see `outcome`)
    rule: str
    event: str | None  # 'order.placed #12'; None when the triggering event never happened
    event_at: datetime | None
    thread: str
    recipient: str | None
    state: str  # a notification state, or "not planned"
    reason: str | None
    detail: str | None
    outcome: str  # sent, waiting, sending, retrying, failed, a skip reason, or a `Why`
    explanation: str  # the same in plain words
    due_at: datetime | None
    until: datetime | None  # a waiting message: when it is to go out
    sent_at: datetime | None = None
    subject: str | None = None
    message_id: str | None = None
    smtp_reply: str | None = None
    resend_of: int | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    timezone: str | None = None  # the customer's, as stored, for their local time beside UTC

    @property
    def moment(self) -> datetime | None:
        """The time to show and sort by: when it fell (or falls) due, else the event's time."""
        return self.due_at or self.event_at

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("due_at", "sent_at", "until", "event_at"):
            data[key] = data[key].isoformat() if data[key] else None
        for attempt in data["attempts"]:
            attempt["at"] = attempt["at"].isoformat()
        return data


@dataclass(frozen=True, slots=True)
class _Scope:
    """What the history is about: one order or case, with its events and the daemon's cursors."""

    kind: str  # order | case
    subject_id: int
    events: list[Event]
    positions: dict[str, int]
    gaps: dict[str, set[int]]

    @property
    def thread(self) -> str:
        return f"{self.kind}:{self.subject_id}"

    def read_yet(self, event: Event) -> bool:
        return event.id <= self.positions.get(event.source, 0) and event.id not in self.gaps.get(
            event.source, set()
        )


def history(
    conn: sa.Connection,
    *,
    order: int | None = None,
    case: int | None = None,
    customer_email: str | None = None,
    rules: RuleSet | None = None,
    now: datetime | None = None,
) -> list[HistoryEntry]:
    """Every notification about an order, a case or a customer, explained, and - given the
    rules - every rule that planned nothing for it and why. Oldest first; rules still waiting
    for their event come last."""
    now = now or utcnow()
    scopes: list[tuple[str, int]] = []
    if order is not None:
        scopes.append(("order", order))
        rows = notification_records(conn, thread=f"order:{order}")
    elif case is not None:
        scopes.append(("case", case))
        rows = notification_records(conn, thread=f"case:{case}")
    elif customer_email is not None:
        ids = list(
            conn.execute(
                sa.select(CUSTOMERS.c.id).where(sa.func.lower(CUSTOMERS.c.email) == customer_email.lower())
            ).scalars()
        )
        orders = conn.execute(
            sa.select(ORDERS.c.id).where(ORDERS.c.customer_id.in_(ids)).order_by(ORDERS.c.id)
        )
        cases = conn.execute(sa.select(CASES.c.id).where(CASES.c.customer_id.in_(ids)).order_by(CASES.c.id))
        scopes += [("order", i) for i in orders.scalars()] + [("case", i) for i in cases.scalars()]
        threads = [f"{kind}:{i}" for kind, i in scopes]
        rows = notification_records(conn, customer_ids=ids, email=customer_email, threads=threads)
    else:
        rows = notification_records(conn)
    attempts = _attempts(conn, [row.id for row in rows])
    positions = {row.source: row.position for row in conn.execute(sa.select(CURSORS))}
    gaps: dict[str, set[int]] = {}
    for row in conn.execute(sa.select(GAPS.c.source, GAPS.c.event_id)):
        gaps.setdefault(row.source, set()).add(row.event_id)
    loaded = [_Scope(kind, i, _events_of(conn, kind, i), positions, gaps) for kind, i in scopes]
    # An id nothing is known about gets no list of rules waiting for it.
    loaded = [s for s in loaded if s.events or any(r.thread == s.thread for r in rows) or _exists(conn, s)]
    events = {(e.source, e.id): e for scope in loaded for e in scope.events}
    entries = [_row_entry(row, attempts.get(row.id, []), rules, events, now) for row in rows]
    if rules is not None:
        for scope in loaded:
            entries += _unplanned(scope, [r for r in rows if r.thread == scope.thread], rules)
    by_customer, by_thread = _timezones(conn, rows, loaded)
    entries = [
        replace(e, timezone=by_customer.get(_customer_of(rows, e)) or by_thread.get(e.thread))
        for e in entries
    ]
    return sorted(entries, key=_order)


def _customer_of(rows: Sequence[NotificationRecord], entry: HistoryEntry) -> int | None:
    return next((row.customer_id for row in rows if row.id == entry.id), None) if entry.id else None


def _timezones(
    conn: sa.Connection, rows: Sequence[NotificationRecord], scopes: Sequence[_Scope]
) -> tuple[dict[int | None, str], dict[str, str]]:
    """The customers' timezones: by customer id, and by the order or case each thread is about."""
    owners: dict[str, int] = {}
    for scope in scopes:
        table = ORDERS if scope.kind == "order" else CASES
        query = sa.select(table.c.customer_id).where(table.c.id == scope.subject_id)
        if (owner := conn.execute(query).scalar()) is not None:
            owners[scope.thread] = owner
    ids = {row.customer_id for row in rows if row.customer_id is not None} | set(owners.values())
    query = sa.select(CUSTOMERS.c.id, CUSTOMERS.c.timezone).where(CUSTOMERS.c.id.in_(sorted(ids)))
    zones: dict[int | None, str] = {row.id: str(row.timezone) for row in conn.execute(query) if row.timezone}
    return zones, {thread: zones[owner] for thread, owner in owners.items() if owner in zones}


def _order(entry: HistoryEntry) -> tuple[int, datetime, int]:
    """Oldest first; rules still waiting for their event last, in rules-file order."""
    moment = entry.moment
    return (0, moment, entry.id or 0) if moment is not None else (1, EPOCH, 0)


def _exists(conn: sa.Connection, scope: _Scope) -> bool:
    table = ORDERS if scope.kind == "order" else CASES
    return conn.execute(sa.select(table.c.id).where(table.c.id == scope.subject_id)).first() is not None


def _events_of(conn: sa.Connection, kind: str, subject_id: int) -> list[Event]:
    """Every event about one order or case, from every source that holds such events."""
    found: list[Event] = []
    for source, (table, column) in SOURCES.items():
        if kind_of(source) != kind:
            continue
        found += event_rows.read_in(conn, source, table.c[column], [subject_id])
    return sorted(found, key=lambda e: (e.occurred_at, e.id))


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


def _utc(value: Any) -> datetime | None:
    return as_utc(value) if value is not None else None


def _row_entry(
    row: NotificationRecord,
    attempts: list[dict[str, Any]],
    rules: RuleSet | None,
    events: dict[tuple[str, int], Event],
    now: datetime,
) -> HistoryEntry:
    rule = rules.by_name(row.rule) if rules is not None else None
    outcome, explanation, until = explain(row, rule, rules is not None, events, now)
    return HistoryEntry(
        id=row.id,
        rule=row.rule,
        event=f"{row.event_type} #{row.event_id}",
        event_at=row.event_occurred_at,
        thread=row.thread,
        recipient=row.recipient,
        state=row.state,
        reason=row.reason,
        detail=row.detail,
        outcome=outcome,
        explanation=explanation,
        due_at=row.due_at,
        until=until,
        sent_at=row.sent_at,
        subject=row.subject,
        message_id=row.message_id,
        smtp_reply=row.smtp_reply,
        resend_of=row.resend_of,
        attempts=attempts,
    )


def _unplanned(scope: _Scope, rows: Sequence[NotificationRecord], rules: RuleSet) -> list[HistoryEntry]:
    """Entries for the rules about this order or case that have no notification for it."""
    planned = {(row.rule, row.source, row.event_id) for row in rows}
    has_rows = {row.rule for row in rows}
    entries: list[HistoryEntry] = []
    for rule in rules.rules:
        if rule.audience is not None or rule.on.split(".", 1)[0] != scope.kind:
            continue
        triggers = [e for e in scope.events if e.type == rule.on]
        if not rule.enabled:
            if rule.name not in has_rows:
                last = triggers[-1] if triggers else None
                entries.append(_plain(scope, rule, last, Why.RULE_DISABLED, f"rule {rule.name} is disabled"))
            continue
        if not triggers:
            words = f"waits for {rule.on}: no such event yet; then {timing_words(rule)}"
            entries.append(_plain(scope, rule, None, Why.NO_EVENT, words))
            continue
        for event in triggers:
            if (rule.name, event.source, event.id) in planned:
                continue
            label, position = f"{event.type} #{event.id}", scope.positions.get(event.source, 0)
            decided = any((row.source, row.event_id) == (event.source, event.id) for row in rows)
            if not scope.read_yet(event):
                gap = event.id in scope.gaps.get(event.source, set())
                why, words = Why.NOT_READ_YET, unread_words(label, event.source, position, gap)
            else:
                why = Why.NOT_IN_FORCE if decided else Why.NOT_EVALUATED
                words = unevaluated_words(rule.name, label, event.source, position, decided)
            entries.append(_plain(scope, rule, event, why, words))
    return entries


def _plain(scope: _Scope, rule: Rule, event: Event | None, why: str, words: str) -> HistoryEntry:
    return HistoryEntry(
        id=None,
        rule=rule.name,
        event=f"{event.type} #{event.id}" if event else None,
        event_at=event.occurred_at if event else None,
        thread=scope.thread,
        recipient=rule.to,
        state=NOT_PLANNED,
        reason=why,
        detail=None,
        outcome=why,
        explanation=words,
        due_at=None,
        until=None,
    )
