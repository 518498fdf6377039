"""What-if replay: the past events of the database against a candidate rules file.

`notifier simulate --rules candidate.yaml --since 30d` reads every event since then (every
source, in batches), plans each with the same pure code the daemon uses
(planning.plan_event / plan_rule, with `now` = the event's time, so `when:` and due times come
out as they would have), follows each queued plan to its due time (an `unless:` event before
then, a suppressed address: would skip; quiet hours: goes in the morning; due after now: not
due yet), counts audience rules with a SELECT COUNT instead of an INSERT, and sets the result
per rule and per day beside what was actually sent.

It never writes: the connection is read-only (SQLite `query_only`, a PostgreSQL READ ONLY
transaction) and is rolled back at the end; nothing is sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from notifier.core.conditions import ExpressionError
from notifier.core.context import brand_of, template_context
from notifier.core.planning import Planned, due_time, plan_event
from notifier.core.rules import Category, Rule, RuleSet
from notifier.core.timing import as_utc, parse_duration, quiet_hours_end
from notifier.core.values import Event, Reason, State, Subject, kind_of
from notifier.db import events as event_rows
from notifier.db import store
from notifier.db.engine import make_engine, normalize_url
from notifier.db.events import SOURCES
from notifier.db.fanout import _audience_select
from notifier.db.store import NOTIFICATIONS
from notifier.db.subjects import load_subjects

# --- reading without writing ---------------------------------------------------------------------


@contextmanager
def read_only(database_url: str) -> Iterator[sa.Connection]:
    """A connection that cannot write, rolled back when done."""
    url = normalize_url(database_url)
    if url.startswith("sqlite"):
        # Not database.make_engine: its transactions begin IMMEDIATE, which takes the write lock.
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only = ON")
            cursor.close()

    else:
        engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SET TRANSACTION READ ONLY"))
            try:
                yield conn
            finally:
                conn.rollback()
    finally:
        engine.dispose()


def at_or_after(conn: sa.Connection, column: Any, moment: datetime) -> Any:
    """`column >= moment` for a timestamp column of either database.

    SQLite keeps the order system's timestamps as text in more than one form (with or without
    fractional seconds, a 'T', an offset): compare instants there, not strings."""
    if conn.dialect.name == "sqlite":
        text = as_utc(moment).strftime("%Y-%m-%d %H:%M:%S.%f")
        return sa.func.julianday(column) >= sa.func.julianday(sa.literal(text))
    return column >= moment


def day_of(moment: datetime) -> date:
    return as_utc(moment).date()


# --- the tallies ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    would_send: int = 0
    would_skip: int = 0
    not_due_yet: int = 0  # would send, but only after now
    sent: int = 0  # what was actually sent
    skip_reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "would_send": self.would_send,
            "would_skip": self.would_skip,
            "not_due_yet": self.not_due_yet,
            "sent": self.sent,
            "skip_reasons": dict(sorted(self.skip_reasons.items())),
        }


@dataclass(slots=True)
class Replay:
    rules_file: str
    since: datetime
    until: datetime
    events: int = 0
    rules: dict[str, Tally] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)  # rule -> in candidate / disabled / ...
    days: dict[tuple[date, str], Tally] = field(default_factory=dict)

    def tally(self, rule: str, day: date | None = None) -> Tally:
        if day is None:
            return self.rules.setdefault(rule, Tally())
        return self.days.setdefault((day, rule), Tally())

    def count(
        self, rule: str, moment: datetime, *, send: int = 0, skip: str | None = None, n: int = 1
    ) -> None:
        for tally in (self.tally(rule), self.tally(rule, day_of(moment))):
            if skip is not None:
                tally.would_skip += n
                tally.skip_reasons[skip] += n
            elif moment > self.until:
                tally.not_due_yet += send
            else:
                tally.would_send += send

    def as_dict(self) -> dict[str, Any]:
        return {
            "rules_file": self.rules_file,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "events": self.events,
            "rules": [
                {"rule": name, "status": self.status.get(name, ""), **tally.as_dict()}
                for name, tally in sorted(self.rules.items())
            ],
            "days": [
                {"day": day.isoformat(), "rule": rule, **tally.as_dict()}
                for (day, rule), tally in sorted(self.days.items())
            ],
        }


# --- the replay ---------------------------------------------------------------------------------------


def count_events(conn: sa.Connection, since: datetime) -> int:
    """How many event rows the replay will look at (for its progress bar)."""
    total = 0
    for table, _column in SOURCES.values():
        total += conn.execute(
            sa.select(sa.func.count()).where(at_or_after(conn, table.c.occurred_at, since))
        ).scalar_one()
    return total


def simulate(
    conn: sa.Connection,
    candidate: RuleSet,
    *,
    since: datetime,
    now: datetime,
    batch_size: int = 500,
    current: RuleSet | None = None,
    progress: Callable[[int], None] = lambda _n: None,
) -> Replay:
    """Plan every event since `since` with the candidate rules; count what was really sent."""
    replay = Replay(rules_file=candidate.path, since=since, until=now)
    for rule in candidate.rules:
        replay.tally(rule.name)
        replay.status[rule.name] = _status(rule, current)
    planner = _Planner(conn, candidate, replay)
    for source, (table, _column) in SOURCES.items():
        first = conn.execute(
            sa.select(sa.func.min(table.c.id)).where(at_or_after(conn, table.c.occurred_at, since))
        ).scalar()
        if first is None:
            continue
        position = first - 1
        while True:
            batch = event_rows.read_after(conn, source, position, batch_size)
            if not batch:
                break
            position = batch[-1].id
            wanted = [e for e in batch if since <= e.occurred_at <= now]
            planner.plan(wanted)
            replay.events += len(wanted)
            progress(len(wanted))
    _actually_sent(conn, replay)
    for name in replay.rules:
        replay.status.setdefault(name, "not in the candidate")
    return replay


def _status(rule: Rule, current: RuleSet | None) -> str:
    before = current.by_name(rule.name) if current is not None else None
    if not rule.enabled:
        return "disabled" if before is None or before.enabled is False else "disabled (was enabled)"
    if current is not None and before is None:
        return "new"
    if before is not None and not before.enabled:
        return "enabled (was disabled)"
    return "enabled"


class _Planner:
    """Plans one batch of events at a time, as intake would have, then follows each plan."""

    def __init__(self, conn: sa.Connection, rules: RuleSet, replay: Replay) -> None:
        self.conn = conn
        self.rules = rules
        self.replay = replay
        self.brand = brand_of(rules)

    def plan(self, batch: list[Event]) -> None:
        wanted = [e for e in batch if self.rules.enabled_on(e.type)]
        if not wanted:
            return
        subjects = load_subjects(self.conn, {(e.source, e.subject_id) for e in wanted if not e.problem})
        later = self._unless_events(wanted)
        plans: list[Planned] = []
        for event in wanted:
            subject = subjects.get((event.source, event.subject_id)) or Subject(
                problem=f"{event.source} {event.subject_id} could not be loaded"
            )
            plans += plan_event(event, subject, self.rules, brand=self.brand, now=event.occurred_at)
            for rule in self.rules.enabled_on(event.type):
                if rule.audience is not None:
                    self._audience(rule, event, subject)
        blocked = store.suppressed(
            self.conn, [p.recipient for p in plans if p.recipient and p.rule.category is Category.MARKETING]
        )
        for plan in plans:
            self._follow(plan, later, blocked, subjects)

    def _follow(
        self,
        plan: Planned,
        later: dict[tuple[str, int], list[Event]],
        blocked: set[str],
        subjects: dict[tuple[str, int], Subject],
    ) -> None:
        """What would have become of one plan at its due time."""
        rule, event = plan.rule, plan.event
        if plan.state is State.SKIPPED:
            self.replay.count(rule.name, plan.due_at, skip=(plan.reason or Reason.CONDITION_FALSE).value)
            return
        due = plan.due_at
        if rule.unless:
            happened = [
                e
                for e in later.get((kind_of(event.source), event.subject_id), [])
                if e.type in rule.unless and e.id != event.id and event.occurred_at <= e.occurred_at <= due
            ]
            if happened:
                self.replay.count(rule.name, due, skip=Reason.UNLESS_HAPPENED.value)
                return
        if rule.category is Category.MARKETING:
            if plan.recipient and plan.recipient.lower() in blocked:
                self.replay.count(rule.name, due, skip=Reason.SUPPRESSED.value)
                return
            due = self._after_quiet_hours(due, subjects.get((event.source, event.subject_id)))
        self.replay.count(rule.name, due, send=1)

    def _after_quiet_hours(self, due: datetime, subject: Subject | None) -> datetime:
        quiet = self.rules.defaults.quiet_hours
        person = subject.customer if subject else None
        if quiet is None or not person:
            return due
        try:
            zone = ZoneInfo(person.get("timezone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return quiet_hours_end(due, zone, quiet.start, quiet.end) or due

    def _unless_events(self, batch: list[Event]) -> dict[tuple[str, int], list[Event]]:
        """The events that `unless:` rules wait for, about the orders and cases in the batch."""
        waited = {t for e in batch for rule in self.rules.enabled_on(e.type) for t in rule.unless}
        if not waited:
            return {}
        subjects: dict[str, set[int]] = {}
        for event in batch:
            subjects.setdefault(kind_of(event.source), set()).add(event.subject_id)
        found: dict[tuple[str, int], list[Event]] = {}
        for source in SOURCES:
            kind = kind_of(source)
            types = [t for t in waited if t.split(".", 1)[0] == kind]
            if not types or not subjects.get(kind):
                continue
            for event in event_rows.read_about(self.conn, source, subjects[kind], types):
                if not event.problem:
                    found.setdefault((kind, event.subject_id), []).append(event)
        return found

    def _audience(self, rule: Rule, event: Event, subject: Subject) -> None:
        """Count the audience a fan-out rule would have written to, without writing."""
        if event.problem or subject.problem:
            self.replay.count(rule.name, event.occurred_at, skip=Reason.BAD_EVENT.value)
            return
        context = template_context(subject, event, brand=self.brand, now=event.occurred_at)
        try:
            if rule.when is not None and not rule.when.holds(context):
                self.replay.count(rule.name, event.occurred_at, skip=Reason.CONDITION_FALSE.value)
                return
            due = due_time(rule, event, context)
        except ExpressionError:
            self.replay.count(rule.name, event.occurred_at, skip=Reason.CONDITION_FALSE.value)
            return
        audience = _audience_select(
            self.conn, rule, event, due, due + self.rules.max_age(rule), event.occurred_at
        ).subquery()
        size = self.conn.execute(sa.select(sa.func.count()).select_from(audience)).scalar_one()
        if size:
            self.replay.count(rule.name, due, send=size)


def _actually_sent(conn: sa.Connection, replay: Replay) -> None:
    """What the daemon really sent for the events in the window (resends by hand left out)."""
    n = NOTIFICATIONS
    if conn.dialect.name == "sqlite":
        day = sa.func.date(n.c.sent_at)
    else:
        day = sa.func.to_char(sa.func.timezone("UTC", n.c.sent_at), "YYYY-MM-DD")
    query = (
        sa.select(n.c.rule, day.label("day"), sa.func.count())
        .where(
            n.c.state == State.SENT,
            n.c.resend_of.is_(None),
            n.c.event_occurred_at >= replay.since,
            n.c.sent_at.is_not(None),
        )
        .group_by(n.c.rule, day)
    )
    for rule, text, count in conn.execute(query):
        replay.tally(rule).sent += count
        replay.tally(rule, date.fromisoformat(str(text)[:10])).sent += count


def parse_since(text: str, now: datetime) -> datetime:
    """'30d' -> now minus 30 days; an ISO date or time is taken as is (UTC)."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise ValueError(f"{text!r} is neither a duration (30d, 12h) nor a date (2026-02-01)") from exc
