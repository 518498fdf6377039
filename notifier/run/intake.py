"""Events come in and rules decide: read new event rows, plan, store, move the cursor.

One transaction per batch per source: the notifications an event owes and the cursor that
says it was evaluated are committed together, so a crash either keeps both or neither.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from notifier.core.context import brand_of
from notifier.core.planning import Planned, plan_event
from notifier.core.rules import Rule, RuleSet
from notifier.core.values import Event, Reason, State, Subject
from notifier.core.vocabulary import missing_ids
from notifier.db import events as event_rows
from notifier.db import store
from notifier.db.events import SOURCES
from notifier.db.fanout import plan_audience
from notifier.db.subjects import load_subjects
from notifier.run import metrics
from notifier.run.recent import Recent

log = logging.getLogger("notifier.run.intake")


@dataclass(frozen=True, slots=True)
class IntakeResult:
    events: int  # event rows evaluated
    planned: int  # notifications newly stored (queued or skipped)
    more: bool = False  # events are left to read (the batch limit was reached)


def plan_batch(
    conn: sa.Connection, batch: list[Event], rules: RuleSet, now: datetime, recent: Recent | None = None
) -> tuple[list[Planned], int]:
    """Plans for a batch of events, and how many audience notifications were stored.

    Only event types some rule names are looked at. Rules with an `audience:` fan out in
    the database as they go (plan_audience); the other plans come back to be stored.
    """
    wanted = [event for event in batch if rules.enabled_on(event.type)]
    if not wanted:
        return [], 0
    subjects = load_subjects(conn, {(e.source, e.subject_id) for e in wanted if not e.problem})
    if recent is not None:
        recent.remember(wanted, subjects)
    brand = brand_of(rules)
    plans: list[Planned] = []
    fanned_out = 0
    for event in wanted:
        subject = subjects.get((event.source, event.subject_id))
        if subject is None:
            subject = Subject(problem=f"{event.source} {event.subject_id} could not be loaded")
        plans.extend(plan_event(event, subject, rules, brand=brand, now=now))
        for rule in rules.enabled_on(event.type):
            if rule.audience is not None:
                fanned_out += fan_out(conn, rule, event, rules, subject=subject, brand=brand, now=now)
    return plans, fanned_out


def fan_out(
    conn: sa.Connection,
    rule: Rule,
    event: Event,
    rules: RuleSet,
    *,
    subject: Subject,
    brand: Mapping[str, str],
    now: datetime,
) -> int:
    """One rule's audience for one event, stored and counted; returns the rows newly stored."""
    fanned = plan_audience(conn, rule, event, rules, subject=subject, brand=brand, now=now)
    if not fanned.stored:  # counted once, when first stored (a rerun stores nothing)
        return 0
    if fanned.error:
        metrics.rule_error(rule.name)
    else:
        for reason, n in fanned.counts.items():
            metrics.decided(rule.name, State.QUEUED if reason == State.QUEUED else State.SKIPPED, n)
    return fanned.stored


def _log_plans(plans: list[Planned]) -> None:
    every = log.isEnabledFor(logging.INFO)  # else only rule errors: no due time formatted per plan
    for plan in plans:
        if plan.reason is not Reason.RULE_ERROR and not every:
            continue
        if plan.reason is Reason.RULE_ERROR:
            metrics.rule_error(plan.rule.name)
            log.error("rule error for %s #%s: %s", plan.event.type, plan.event.id, plan.detail)
        elif plan.reason is None:
            log.info(
                "planned %s for %s #%s to %s, due %s",
                plan.rule.name,
                plan.event.type,
                plan.event.id,
                plan.recipient,
                plan.due_at.isoformat(timespec="seconds"),
            )
        else:
            log.info(
                "skipped %s for %s #%s: %s (%s)",
                plan.rule.name,
                plan.event.type,
                plan.event.id,
                plan.reason.value,
                plan.detail,
            )


def intake_batch(
    engine: Engine,
    source: str,
    rules: RuleSet,
    *,
    now: datetime,
    batch_size: int,
    gap_timeout: timedelta,
    recent: Recent | None = None,
) -> tuple[int, int, bool]:
    """Evaluate one batch of one source. Returns (events, planned, more_to_read)."""
    with engine.begin() as conn:
        position = store.lock_cursor(conn, source, now)
        gaps = store.open_gaps(conn, source)
        filled = event_rows.read_ids(conn, source, gaps) if gaps else []
        fresh = event_rows.read_after(conn, source, position, batch_size)
        plans, fanned_out = plan_batch(conn, filled + fresh, rules, now, recent)
        planned = fanned_out + store.insert_planned(conn, plans, now)
        store.advance_cursor(
            conn,
            source,
            position=fresh[-1].id if fresh else position,
            new_gaps=missing_ids(position, fresh),
            closed_gaps=[event.id for event in filled],
            now=now,
        )
        expired = store.expire_gaps(conn, source, now - gap_timeout)
    metrics.events_read(source, len(filled) + len(fresh))
    metrics.planned(plans)  # rule errors are counted once more, by rule, in _log_plans
    if expired:
        log.warning(
            "%s events: %d id(s) never appeared within %s; taken as rolled back", source, expired, gap_timeout
        )
    _log_plans(plans)
    return len(filled) + len(fresh), planned, len(fresh) == batch_size


def intake(
    engine: Engine,
    rules: RuleSet,
    *,
    clock: Callable[[], datetime],
    batch_size: int,
    gap_timeout: timedelta,
    max_batches: int | None = None,
    recent: Recent | None = None,
) -> IntakeResult:
    """Evaluate new events of every source, a batch at a time, until none is left (or
    `max_batches` per source, so sending can start before a long backlog is read). What was
    read is kept in `recent`, for the send side of the same turn."""
    total_events = total_planned = 0
    left_over = False
    for source in SOURCES:
        more, batches = True, 0
        while more and (max_batches is None or batches < max_batches):
            count, planned, more = intake_batch(
                engine,
                source,
                rules,
                now=clock(),
                batch_size=batch_size,
                gap_timeout=gap_timeout,
                recent=recent,
            )
            total_events += count
            total_planned += planned
            batches += 1
        left_over = left_over or more
    return IntakeResult(total_events, total_planned, left_over)
