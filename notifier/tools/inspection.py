"""Read-only views of the outbox for `status`, `history`, `retry` and `resend`.

`history` explains, for an order, a case or a customer, every rule that could apply: what
was sent (when, Message-ID, the server's reply), or why not, in plain words - the condition
was false, an `unless:` event happened, it expired, it waits (until when, and for what), it
failed (with the reply), the rule is disabled, or the event it waits for has not happened.
Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifier.core.rules import Rule, RuleSet
from notifier.core.timing import as_utc, format_duration, utcnow
from notifier.core.values import Event, Reason, State, kind_of
from notifier.db import events as event_rows
from notifier.db.events import SOURCES
from notifier.db.store import ATTEMPTS, CURSORS, GAPS, NOTIFICATIONS, STATE
from notifier.db.subjects import CASES, CUSTOMERS, ORDERS

# --- status ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    by_state: dict[str, int]
    by_rule: dict[str, dict[str, int]]
    oldest_queued_due: datetime | None
    oldest_due_age_seconds: float | None
    sent_last_minute: int
    published: dict[str, str]
    published_at: dict[str, datetime]
    last_attempt: dict[str, Any] | None

    @property
    def smtp_last_error(self) -> str | None:
        return self.published.get("smtp.last_error") or None

    @property
    def smtp_healthy(self) -> bool | None:
        """False while the last hand-over found the server unusable; None before any."""
        if self.last_attempt is None:
            return None if self.smtp_last_error is None else False
        return self.last_attempt["outcome"] != "stalled"

    @property
    def reload_error(self) -> str | None:
        return self.published.get("reload.error") or None

    @property
    def reload_ok(self) -> bool | None:
        """None until a daemon has published its rules; then whether the last load succeeded."""
        if "reload.error" not in self.published:
            return None
        return not self.published["reload.error"]

    def _at(self, key: str) -> str | None:
        moment = self.published_at.get(key)
        return moment.isoformat() if moment else None

    def as_dict(self) -> dict[str, Any]:
        last = dict(self.last_attempt) if self.last_attempt else None
        if last is not None:
            last["at"] = last["at"].isoformat()
        return {
            "by_state": self.by_state,
            "by_rule": self.by_rule,
            "oldest_queued_due": self.oldest_queued_due.isoformat() if self.oldest_queued_due else None,
            "oldest_due_age_seconds": self.oldest_due_age_seconds,
            "sent_last_minute": self.sent_last_minute,
            "smtp": {
                "healthy": self.smtp_healthy,
                "last_error": self.smtp_last_error,
                "last_error_at": self._at("smtp.last_error") if self.smtp_last_error else None,
                "last_attempt": last,
            },
            "rules": {
                "path": self.published.get("rules.path"),
                "digest": self.published.get("rules.digest"),
                "count": int(self.published["rules.count"]) if "rules.count" in self.published else None,
                "templates": self.published.get("templates.path"),
            },
            "reload": {
                "ok": self.reload_ok,
                "error": self.reload_error,
                "at": self.published.get("reload.at") or self._at("reload.error"),
            },
            "published": self.published,
        }


def status(conn: sa.Connection, now: datetime) -> Status:
    n = NOTIFICATIONS
    by_state = {state.value: 0 for state in State}
    by_rule: dict[str, dict[str, int]] = {}
    for rule, state, count in conn.execute(
        sa.select(n.c.rule, n.c.state, sa.func.count()).group_by(n.c.rule, n.c.state)
    ):
        by_state[state] = by_state.get(state, 0) + count
        by_rule.setdefault(rule, {})[state] = count
    oldest = oldest_due(conn, now)
    recent = conn.execute(
        sa.select(sa.func.count()).where(n.c.state == State.SENT, n.c.sent_at >= now - timedelta(minutes=1))
    ).scalar_one()
    published: dict[str, str] = {}
    published_at: dict[str, datetime] = {}
    for row in conn.execute(sa.select(STATE.c.key, STATE.c.value, STATE.c.updated_at)):
        published[row.key] = row.value
        published_at[row.key] = as_utc(row.updated_at)
    attempt = conn.execute(sa.select(ATTEMPTS).order_by(ATTEMPTS.c.id.desc()).limit(1)).mappings().first()
    last = None
    if attempt is not None:
        last = {
            "at": as_utc(attempt["at"]),
            "outcome": attempt["outcome"],
            "code": attempt["code"],
            "reply": attempt["reply"],
        }
    return Status(
        by_state=by_state,
        by_rule=by_rule,
        oldest_queued_due=oldest,
        oldest_due_age_seconds=(now - oldest).total_seconds() if oldest else None,
        sent_last_minute=recent,
        published=published,
        published_at=published_at,
        last_attempt=last,
    )


def oldest_due(conn: sa.Connection, now: datetime) -> datetime | None:
    """The due time of the oldest message that should have gone already: queued and due (not
    held for quiet hours), or retrying (due, and still not accepted)."""
    n = NOTIFICATIONS
    waiting = sa.or_(
        sa.and_(n.c.state == State.QUEUED, n.c.next_attempt_at <= now),
        sa.and_(n.c.state == State.RETRYING, n.c.due_at <= now),
    )
    oldest = conn.execute(sa.select(sa.func.min(n.c.due_at)).where(waiting)).scalar()
    return as_utc(oldest) if oldest else None


# --- history ---------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOT_PLANNED = "not planned"  # the state shown for a rule that has no notification for the event


class Why:
    """The one-word outcomes of an entry that has no notification row."""

    RULE_DISABLED = "rule_disabled"  # `enabled: false` in the rules file
    NO_EVENT = "no_event"  # the triggering event has not happened (yet)
    NOT_READ_YET = "not_read_yet"  # the event exists but the daemon has not evaluated it
    NOT_IN_FORCE = "not_in_force"  # the rule was added or enabled after the event was evaluated


_REASON_WORDS = {
    Reason.CONDITION_FALSE: "condition false",
    Reason.UNLESS_HAPPENED: "not needed, an unless: event happened",
    Reason.EXPIRED: "expired",
    Reason.NOT_OPTED_IN: "not opted in",
    Reason.SUPPRESSED: "suppressed",
    Reason.RULE_GONE: "rule no longer in force",
    Reason.RENDER_FAILED: "template failed",
    Reason.INVALID_ADDRESS: "unusable address",
    Reason.NO_RECIPIENT: "no one to send to",
    Reason.BAD_EVENT: "unreadable event",
    Reason.NO_SECRET_KEY: "no secret key",
}


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
    n = NOTIFICATIONS
    scopes: list[tuple[str, int]] = []
    query = sa.select(n)
    if order is not None:
        scopes.append(("order", order))
        query = query.where(n.c.thread == f"order:{order}")
    elif case is not None:
        scopes.append(("case", case))
        query = query.where(n.c.thread == f"case:{case}")
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
        query = query.where(
            sa.or_(
                n.c.customer_id.in_(ids),
                sa.func.lower(n.c.recipient) == customer_email.lower(),
                n.c.thread.in_(threads),
            )
        )
    rows = list(conn.execute(query).mappings())
    attempts = _attempts(conn, [row["id"] for row in rows])
    positions = {row.source: row.position for row in conn.execute(sa.select(CURSORS))}
    gaps: dict[str, set[int]] = {}
    for row in conn.execute(sa.select(GAPS.c.source, GAPS.c.event_id)):
        gaps.setdefault(row.source, set()).add(row.event_id)
    loaded = [_Scope(kind, i, _events_of(conn, kind, i), positions, gaps) for kind, i in scopes]
    # An id nothing is known about gets no list of rules waiting for it.
    loaded = [s for s in loaded if s.events or any(r["thread"] == s.thread for r in rows) or _exists(conn, s)]
    events = {(e.source, e.id): e for scope in loaded for e in scope.events}
    entries = [_row_entry(row, attempts.get(row["id"], []), rules, events, now) for row in rows]
    if rules is not None:
        for scope in loaded:
            entries += _unplanned(scope, [r for r in rows if r["thread"] == scope.thread], rules)
    return sorted(entries, key=_order)


def _order(entry: HistoryEntry) -> tuple[int, datetime, int]:
    """Oldest first; rules still waiting for their event last, in rules-file order."""
    moment = entry.moment
    return (0, moment, entry.id or 0) if moment is not None else (1, _EPOCH, 0)


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


def _duration(value: object) -> str:
    """'48h' rather than '2d' up to three days, as rules files usually say it; business time
    ('2 business days') as written."""
    if not isinstance(value, timedelta):
        return str(value)
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0 and 0 < seconds <= 72 * 3600:
        return f"{seconds // 3600}h"
    return format_duration(value)


def timing_words(rule: Rule) -> str:
    """When a rule's message falls due, in words: 'delay 2h', '48h unless order.dispatched'."""
    if rule.send_at is not None:
        return f"send_at: {rule.send_at.source}"
    unless = f" unless {' or '.join(rule.unless)} happens first" if rule.unless else ""
    if rule.after_response_time:
        return f"the promised reply time for the case's priority{unless}"
    if rule.after is not None:
        return f"{_duration(rule.after)} after {rule.on}{unless}"
    if rule.delay is not None:
        return f"delay {_duration(rule.delay)} after {rule.on}"
    return f"at once on {rule.on}"


def _row_entry(
    row: Any,
    attempts: list[dict[str, Any]],
    rules: RuleSet | None,
    events: dict[tuple[str, int], Event],
    now: datetime,
) -> HistoryEntry:
    rule = rules.by_name(row["rule"]) if rules is not None else None
    outcome, explanation, until = _explain(row, rule, rules is not None, events, now)
    return HistoryEntry(
        id=row["id"],
        rule=row["rule"],
        event=f"{row['event_type']} #{row['event_id']}",
        event_at=_utc(row["event_occurred_at"]),
        thread=row["thread"],
        recipient=row["recipient"],
        state=row["state"],
        reason=row["reason"],
        detail=row["detail"],
        outcome=outcome,
        explanation=explanation,
        due_at=as_utc(row["due_at"]),
        until=until,
        sent_at=_utc(row["sent_at"]),
        subject=row["subject"],
        message_id=row["message_id"],
        smtp_reply=f"{row['smtp_code']} {row['smtp_reply']}" if row["smtp_code"] else row["smtp_reply"],
        resend_of=row["resend_of"],
        attempts=attempts,
    )


def _explain(
    row: Any, rule: Rule | None, rules_known: bool, events: dict[tuple[str, int], Event], now: datetime
) -> tuple[str, str, datetime | None]:
    """(outcome, words, until) for one notification row."""
    state, reason, detail = row["state"], row["reason"], row["detail"] or ""
    resend = f"resend of #{row['resend_of']}; " if row["resend_of"] is not None else ""
    reply = f"{row['smtp_code']} {row['smtp_reply']}" if row["smtp_code"] else (row["smtp_reply"] or "")
    if state == State.SENT:
        sent = _utc(row["sent_at"])
        when = f"{sent:%Y-%m-%d %H:%M:%S} UTC" if sent else "at an unrecorded time"
        return "sent", f"{resend}sent {when}, {reply or 'accepted'}, Message-ID {row['message_id']}", None
    if state == State.QUEUED:
        return _explain_waiting(row, rule, rules_known, events, now, resend)
    if state == State.SENDING:
        lease = _utc(row["lease_until"])
        until = f" (reserved until {lease:%H:%M:%S} UTC)" if lease else ""
        return "sending", f"{resend}being handed to the SMTP server now{until}", None
    if state == State.RETRYING:
        at = as_utc(row["next_attempt_at"])
        words = f"{resend}retrying at {at:%Y-%m-%d %H:%M} UTC after {row['attempts']} attempt(s); "
        return "retrying", words + f"the server said {detail or reply}", at
    if state == State.FAILED:
        if reason == Reason.SMTP_PERMANENT:
            return reason, f"{resend}failed: the SMTP server refused it for good: {reply or detail}", None
        if reason == Reason.RETRIES_EXHAUSTED:
            first = _utc(row["first_failure_at"])
            since = f" since {first:%Y-%m-%d %H:%M} UTC" if first else ""
            return reason, f"{resend}failed: still failing after retrying{since}: {detail or reply}", None
        words = _REASON_WORDS.get(reason, (reason or "failed").replace("_", " "))
        return reason or "failed", f"{resend}failed ({words}): {detail or reply}", None
    words = _REASON_WORDS.get(reason, (reason or state).replace("_", " "))
    return reason or state, f"{resend}{words}: {detail}" if detail else f"{resend}{words}", None


def _explain_waiting(
    row: Any,
    rule: Rule | None,
    rules_known: bool,
    events: dict[tuple[str, int], Event],
    now: datetime,
    resend: str,
) -> tuple[str, str, datetime | None]:
    reason, detail = row["reason"], row["detail"] or ""
    at = as_utc(row["next_attempt_at"])
    if reason == Reason.QUIET_HOURS:
        return reason, f"{resend}waiting for quiet hours to end, until {at:%Y-%m-%d %H:%M} UTC: {detail}", at
    if reason:
        return (
            reason,
            f"{resend}waiting until {at:%Y-%m-%d %H:%M} UTC ({reason.replace('_', ' ')}): {detail}",
            at,
        )
    due = as_utc(row["due_at"])
    if at > now:
        how = f" ({timing_words(rule)})" if rule is not None and not resend else ""
        words = f"{resend}waiting until {at:%Y-%m-%d %H:%M} UTC{how}"
    else:
        words = f"{resend}due since {due:%Y-%m-%d %H:%M} UTC; goes out on the daemon's next poll"
    notes = []
    if rules_known and not resend and (rule is None or not rule.enabled):
        notes.append(f"rule {row['rule']} is disabled or gone now, so it will be skipped when due")
    happened = _unless_event(row, rule, events) if rule is not None and not resend else None
    if happened is not None:
        notes.append(
            f"{happened.type} #{happened.id} happened at {happened.occurred_at:%Y-%m-%d %H:%M} UTC, "
            "so it will be skipped when due"
        )
    expires = _utc(row["expires_at"])
    if expires is not None and now > expires:
        notes.append(f"past its max_age since {expires:%Y-%m-%d %H:%M} UTC, so it will be skipped as expired")
    return "waiting", "; ".join([words, *notes]), at


def _unless_event(row: Any, rule: Rule, events: dict[tuple[str, int], Event]) -> Event | None:
    """An `unless:` event of this rule, about the same order or case, since the trigger."""
    if not rule.unless:
        return None
    trigger = events.get((row["source"], row["event_id"]))
    since = trigger.occurred_at if trigger else as_utc(row["event_occurred_at"])
    found = [
        e
        for e in events.values()
        if e.type in rule.unless
        and kind_of(e.source) == kind_of(row["source"])
        and e.subject_id == row["subject_id"]
        and (e.source, e.id) != (row["source"], row["event_id"])
        and not e.problem
        and e.occurred_at >= since
    ]
    return min(found, key=lambda e: (e.occurred_at, e.id)) if found else None


def _unplanned(scope: _Scope, rows: Sequence[Any], rules: RuleSet) -> list[HistoryEntry]:
    """Entries for the rules about this order or case that have no notification for it."""
    planned = {(row["rule"], row["source"], row["event_id"]) for row in rows}
    has_rows = {row["rule"] for row in rows}
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
            label = f"{event.type} #{event.id}"
            if not scope.read_yet(event):
                why, words = (
                    Why.NOT_READ_YET,
                    f"{label} is not evaluated yet; the daemon plans it on its next poll",
                )
            else:
                why, words = (
                    Why.NOT_IN_FORCE,
                    f"rule {rule.name} was not in force when {label} was evaluated "
                    "(a rule applies to events read after it was added or enabled)",
                )
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


# --- selections for retry and resend --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Selected:
    """A notification picked by `retry` or `resend`, as they list it."""

    id: int
    rule: str
    state: str
    recipient: str | None
    event: str
    reason: str | None
    detail: str | None
    at: datetime | None  # failed: when it failed; sent: when it was sent

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat() if self.at else None
        return data


def _selected(row: Any) -> Selected:
    return Selected(
        id=row["id"],
        rule=row["rule"],
        state=row["state"],
        recipient=row["recipient"],
        event=f"{row['event_type']} #{row['event_id']}",
        reason=row["reason"],
        detail=row["detail"],
        at=_utc(row["sent_at"] if row["state"] == State.SENT else row["updated_at"]),
    )


def failed_notifications(
    conn: sa.Connection, *, ids: Iterable[int] = (), rule: str | None = None, since: datetime | None = None
) -> list[Selected]:
    """Failed notifications, narrowed by id, rule and how recently they failed (all of them
    when nothing narrows)."""
    n = NOTIFICATIONS
    query = sa.select(n).where(n.c.state == State.FAILED).order_by(n.c.id)
    wanted = list(ids)
    if wanted:
        query = query.where(n.c.id.in_(wanted))
    if rule is not None:
        query = query.where(n.c.rule == rule)
    if since is not None:
        query = query.where(n.c.updated_at >= since)
    return [_selected(row) for row in conn.execute(query).mappings()]


def notifications_by_id(conn: sa.Connection, ids: Iterable[int]) -> dict[int, Selected]:
    wanted = list(ids)
    rows = conn.execute(sa.select(NOTIFICATIONS).where(NOTIFICATIONS.c.id.in_(wanted))).mappings()
    return {row["id"]: _selected(row) for row in rows}
