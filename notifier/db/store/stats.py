"""Read-only views of the outbox for `status`, `retry`, `resend` and the metrics: counts by
state, rule and reason (rule errors among them), SMTP health, the rules in force, the
notifications `retry` and `resend` pick, and the oldest due message. Nothing here writes;
every answer is a frozen value (Status, Selected), never a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifier.core.timing import as_utc
from notifier.core.values import Reason, State
from notifier.db.store.base import ATTEMPTS, NOTIFICATIONS, STATE, SUPPRESSIONS

# --- status ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    by_state: dict[str, int]
    by_rule: dict[str, dict[str, int]]
    by_reason: dict[str, dict[str, int]]  # failed, skipped, bounced, complained: state -> reason -> count
    rule_errors: dict[str, int]  # rule -> rule-and-event pairs whose rule raised (rule_error)
    oldest_queued_due: datetime | None
    oldest_due_age_seconds: float | None
    sent_last_minute: int
    published: dict[str, str]
    published_at: dict[str, datetime]
    last_attempt: dict[str, Any] | None
    suppressions: dict[str, int] = field(default_factory=dict)  # reason -> suppressed addresses

    @property
    def bounces_line(self) -> str:
        """'bounced later: 2 (hard_bounce 1, soft_bounce 1); complaints: 1; suppressed: 3 (...)'."""
        bounced = self.by_reason.get(State.BOUNCED.value, {})
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(bounced.items()))
        complaints = sum(self.by_reason.get(State.COMPLAINED.value, {}).values())
        suppressed = ", ".join(f"{why} {n}" for why, n in sorted(self.suppressions.items()))
        return (
            f"bounced later: {sum(bounced.values())}" + (f" ({kinds})" if kinds else "")
            + f"; complaints: {complaints}; suppressed addresses: {sum(self.suppressions.values())}"
            + (f" ({suppressed})" if suppressed else "")
        )  # fmt: skip

    @property
    def rule_errors_line(self) -> str | None:
        """'rule errors: 3 (price-rise-warning: 2, welcome: 1)', or None when there are none."""
        if not self.rule_errors:
            return None
        ranked = sorted(self.rule_errors.items(), key=lambda item: (-item[1], item[0]))
        return (
            f"rule errors: {sum(self.rule_errors.values())} ("
            + ", ".join(f"{r}: {n}" for r, n in ranked)
            + ")"
        )

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
            "by_reason": self.by_reason,
            "rule_errors": self.rule_errors,
            "suppressions": self.suppressions,
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
    by_reason, rule_errors = _reasons(conn)
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
        by_reason=by_reason,
        rule_errors=rule_errors,
        oldest_queued_due=oldest,
        oldest_due_age_seconds=(now - oldest).total_seconds() if oldest else None,
        sent_last_minute=recent,
        published=published,
        published_at=published_at,
        last_attempt=last,
        suppressions=_suppressions(conn),
    )


def _suppressions(conn: sa.Connection) -> dict[str, int]:
    s = SUPPRESSIONS
    return {r: n for r, n in conn.execute(sa.select(s.c.reason, sa.func.count()).group_by(s.c.reason))}


def _reasons(conn: sa.Connection) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Failed and skipped notifications by reason, and the rule errors by rule."""
    n = NOTIFICATIONS
    shown = (State.FAILED, State.SKIPPED, State.BOUNCED, State.COMPLAINED)
    by_reason: dict[str, dict[str, int]] = {state.value: {} for state in shown}
    rule_errors: dict[str, int] = {}
    query = (
        sa.select(n.c.state, n.c.reason, n.c.rule, sa.func.count())
        .where(n.c.state.in_(shown))
        .group_by(n.c.state, n.c.reason, n.c.rule)
    )
    for state, reason, rule, count in conn.execute(query):
        counts = by_reason.setdefault(state, {})
        counts[reason or "unknown"] = counts.get(reason or "unknown", 0) + count
        if reason == Reason.RULE_ERROR:
            rule_errors[rule] = rule_errors.get(rule, 0) + count
    return by_reason, rule_errors


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


def outbox_counts(conn: sa.Connection, now: datetime) -> tuple[dict[str, int], float]:
    """For the metrics: counts by state (every state, zeros included) and the oldest due
    message's age in seconds (0 when none waits)."""
    n = NOTIFICATIONS
    counts = {state.value: 0 for state in State}
    for state, count in conn.execute(sa.select(n.c.state, sa.func.count()).group_by(n.c.state)):
        counts[state] = count
    oldest = oldest_due(conn, now)
    return counts, (now - oldest).total_seconds() if oldest else 0.0


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


def _utc(value: Any) -> datetime | None:
    return as_utc(value) if value is not None else None


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


def skipped_notifications(
    conn: sa.Connection, *, reasons: Iterable[str], rule: str | None = None, since: datetime | None = None
) -> list[Selected]:
    """Skipped notifications for these reasons, narrowed by rule and how recently they were skipped."""
    n = NOTIFICATIONS
    query = sa.select(n).where(n.c.state == State.SKIPPED, n.c.reason.in_(list(reasons))).order_by(n.c.id)
    if rule is not None:
        query = query.where(n.c.rule == rule)
    if since is not None:
        query = query.where(n.c.updated_at >= since)
    return [_selected(row) for row in conn.execute(query).mappings()]


def notifications_by_id(conn: sa.Connection, ids: Iterable[int]) -> dict[int, Selected]:
    wanted = list(ids)
    rows = conn.execute(sa.select(NOTIFICATIONS).where(NOTIFICATIONS.c.id.in_(wanted))).mappings()
    return {row["id"]: _selected(row) for row in rows}
