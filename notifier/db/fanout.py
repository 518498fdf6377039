"""Audience fan-out: one product event (or calendar tick) -> one notification per candidate.

`when:` and `send_at:` are evaluated once for the event (the context has `event` and
`product`, no customer). Then store.fanout stores, in one INSERT ... SELECT, a queued
notification for every customer in the audience and a skipped one, with its reason, for every
candidate left out (not opted in, suppressed, outside the window, no usable address), so
`history --customer` can say why. A "no" for the whole event (its row cannot be used, `when:`
was false) is one skipped notification keyed without a customer; an error in the rule (its
condition, due time, or the fan-out itself) is one failed notification with reason
rule_error. Nothing a rule does for one event stops the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from notifier.core.context import template_context
from notifier.core.explain import due_words, reason_words
from notifier.core.planning import Planned, due_time, notification_key, rule_failed
from notifier.core.rules import Rule, RuleSet
from notifier.core.timing import expires_at
from notifier.core.values import Event, Reason, State, Subject
from notifier.db import store
from notifier.db.store.fanout import audience_counts, audience_rows, insert_audience

log = logging.getLogger("notifier.db.fanout")


@dataclass(frozen=True, slots=True)
class Fanned:
    """What one rule's fan-out for one event stored."""

    stored: int  # rows newly stored, queued or skipped
    counts: dict[str, int] = field(default_factory=dict)  # 'queued' and skip reasons, all told
    error: bool = False  # the rule raised: one failed notification (rule_error) stands for it


def plan_audience(
    conn: sa.Connection,
    rule: Rule,
    event: Event,
    rules: RuleSet,
    *,
    subject: Subject,
    brand: Mapping[str, str],
    now: datetime,
) -> Fanned:
    """Store the fan-out of one rule for one event, and say what it stored."""
    assert rule.audience is not None, f"rule {rule.name!r} has no audience"
    try:
        # A savepoint: a statement that fails must not abort the batch's transaction (PostgreSQL).
        with conn.begin_nested():
            return _plan(conn, rule, event, rules, subject=subject, brand=brand, now=now)
    except Exception as exc:  # whatever the rule or its SQL raises, this rule-and-event only
        return _failed(conn, rule_failed(rule, event, rules, "audience fan-out", exc), now)


def _plan(
    conn: sa.Connection,
    rule: Rule,
    event: Event,
    rules: RuleSet,
    *,
    subject: Subject,
    brand: Mapping[str, str],
    now: datetime,
) -> Fanned:
    if event.problem:
        return _skipped(
            conn,
            rule,
            event,
            rules,
            Reason.BAD_EVENT,
            f"event {event.type} #{event.id}: {event.problem}",
            now,
        )
    if subject.problem:
        reason = Reason.BAD_ROW if subject.bad_row else Reason.NO_RECIPIENT
        return _skipped(conn, rule, event, rules, reason, subject.problem, now)
    context = template_context(subject, event, brand=brand, now=now)
    try:
        if rule.when is not None and not rule.when.holds(context):
            return _skipped(
                conn, rule, event, rules, Reason.CONDITION_FALSE, f"when: {rule.when.source} was false", now
            )
        due = due_time(rule, event, context, rules)
    except Exception as exc:  # an undefined name, a division by zero...: the rule's error, not "false"
        what = f"when: {rule.when.source}" if rule.when is not None else "the due time"
        return _failed(conn, rule_failed(rule, event, rules, what, exc), now)
    basis = due_words(rule, event, due, rules)
    stored = insert_audience(
        conn, rule, event, due=due, expires=due + rules.max_age(rule), basis=basis, now=now
    )
    counts = audience_counts(conn, rule, event)
    log.info(
        "fan-out %s for %s #%s (due %s): %s",
        rule.name,
        event.type,
        event.id,
        due.isoformat(timespec="seconds"),
        summary(counts),
    )
    return Fanned(stored, counts)


def _audience_select(
    conn: sa.Connection, rule: Rule, event: Event, due: datetime, expires: datetime, now: datetime
) -> sa.Select[Any]:
    """The queued rows of a fan-out, unstored (tools/replay.py counts them; prefer
    store.fanout.audience_rows)."""
    return audience_rows(conn, rule, event, due=due, expires=expires, basis="", now=now)


def summary(counts: Mapping[str, int]) -> str:
    """'queued 5, not opted in 2, outside window 1' (queued first, then the most common)."""
    queued = counts.get(State.QUEUED.value, 0)
    others = sorted(((-n, r) for r, n in counts.items() if r != State.QUEUED.value))
    words = [f"queued {queued}"] + [f"{reason_words(r, r)} {-n}" for n, r in others]
    return ", ".join(words)


def _skipped(
    conn: sa.Connection, rule: Rule, event: Event, rules: RuleSet, reason: Reason, detail: str, now: datetime
) -> Fanned:
    """One skipped notification for the whole event (no customer in its key)."""
    plan = Planned(
        key=notification_key(rule, event),
        rule=rule,
        event=event,
        due_at=event.occurred_at,
        expires_at=expires_at(event.occurred_at, rules.max_age(rule)),
        state=State.SKIPPED,
        reason=reason,
        detail=detail,
        recipient=rule.to,
    )
    log.info("skipped %s for %s #%s: %s (%s)", rule.name, event.type, event.id, reason.value, detail)
    return Fanned(store.insert_planned(conn, [plan], now), {reason.value: 1})


def _failed(conn: sa.Connection, plan: Planned, now: datetime) -> Fanned:
    log.error("%s for %s #%s failed: %s", plan.rule.name, plan.event.type, plan.event.id, plan.detail)
    return Fanned(store.insert_planned(conn, [plan], now), {Reason.RULE_ERROR.value: 1}, error=True)
