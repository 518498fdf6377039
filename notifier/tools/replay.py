"""What-if replay: the past events of the database against a candidate rules file.

`notifier simulate --rules candidate.yaml --since 30d` reads every event since then (every
source, in batches) and makes the daemon's decisions about each, with the daemon's code: it
plans with notifier.core.planning (plan_event / plan_rule, with the rules' calendar and
response times), then follows each queued message through notifier.core.gates.judge_one at
the moments the daemon would have looked at it, with the facts as they stood then
(replay_facts.py): an `unless:` or `superseded_by:` event known by then, a suppressed address:
would skip; no secret key: counted as a skip (it would wait for the key); quiet hours, a hold
while a case is open: judged again when they end (and expired past max_age); still waiting at
the end: not due yet. A message is first looked at when it is due and the daemon had read
its event (the outbox says when it did: after downtime, later events are known by then).
Audience rules read the rows a fan-out would insert instead of inserting them. The result
is set per rule and per day beside what was actually sent.

It never writes: the connection is read-only (SQLite `query_only`, a PostgreSQL READ ONLY
transaction) and is rolled back at the end; nothing is sent.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from notifier.core.context import brand_of
from notifier.core.planning import plan_event, plan_rule
from notifier.core.rules import Rule, RuleSet
from notifier.core.timing import as_utc, parse_duration
from notifier.core.values import Claimed, Event, Reason, State, Subject
from notifier.db import events as event_rows
from notifier.db.engine import make_engine, normalize_url
from notifier.db.events import SOURCES
from notifier.db.fanout import _audience_select
from notifier.db.store import reports
from notifier.db.store.claims import as_claimed
from notifier.db.store.planned import planned_row
from notifier.db.subjects import CHUNK, load_subjects
from notifier.tools.replay_facts import follow, load_known

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
            if conn.dialect.name in ("postgresql", "mysql"):  # MySQL: for the transaction it starts next
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
    has_secret: bool = True,
    progress: Callable[[int], None] = lambda _n: None,
) -> Replay:
    """Plan every event since `since` with the candidate rules, follow each message through
    the daemon's gates (`has_secret`: NOTIFIER_SECRET_KEY is set); count what was really sent."""
    replay = Replay(rules_file=candidate.path, since=since, until=now)
    for rule in candidate.rules:
        replay.tally(rule.name)
        replay.status[rule.name] = _status(rule, current)
    planner = _Planner(conn, candidate, replay, has_secret=has_secret)
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
    """Plans one batch of events at a time, as intake would have, then follows each message
    through the daemon's gates (replay_facts.follow)."""

    def __init__(self, conn: sa.Connection, rules: RuleSet, replay: Replay, *, has_secret: bool) -> None:
        self.conn = conn
        self.rules = rules
        self.replay = replay
        self.has_secret = has_secret
        self.brand = brand_of(rules)
        self.numbers = itertools.count(1)  # stand-ins for the outbox ids the gates key their facts by

    def plan(self, batch: list[Event]) -> None:
        wanted = [e for e in batch if self.rules.enabled_on(e.type)]
        if not wanted:
            return
        subjects = load_subjects(self.conn, {(e.source, e.subject_id) for e in wanted if not e.problem})
        seen = _read_at(self.conn, wanted)
        queued: list[tuple[Claimed, Event]] = []
        people: dict[int, Mapping[str, Any]] = {}
        for event in wanted:
            subject = subjects.get((event.source, event.subject_id)) or Subject(
                problem=f"{event.source} {event.subject_id} could not be loaded"
            )
            if subject.customer:
                people[subject.customer["id"]] = subject.customer
            now = seen.get((event.source, event.id), event.occurred_at)
            for plan in plan_event(event, subject, self.rules, brand=self.brand, now=now):
                if plan.state is State.SKIPPED:
                    reason = plan.reason or Reason.CONDITION_FALSE
                    self.replay.count(plan.rule.name, plan.due_at, skip=reason.value)
                else:
                    queued.append((as_claimed(planned_row(plan, now), next(self.numbers)), event))
            for rule in self.rules.enabled_on(event.type):
                if rule.audience is not None:
                    self._audience(rule, event, subject, now)
        self._judge(queued, seen, people)

    def _judge(
        self,
        queued: list[tuple[Claimed, Event]],
        seen: Mapping[tuple[str, int], datetime],
        people: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> None:
        """What became of each queued message: the daemon first looks at it when it is due
        and its event has been read, then as the gates say."""
        if not queued:
            return
        items = [item for item, _ in queued]
        known = load_known(self.conn, items, self.rules, has_secret=self.has_secret, people=people)
        for item, event in queued:
            first = max(item.due_at, seen.get((event.source, event.id), item.due_at))
            fate = follow(item, event, self.rules, known, first_look=first, until=self.replay.until)
            if fate.reason is not None:
                self.replay.count(item.rule, fate.moment, skip=fate.reason.value)
            else:
                self.replay.count(item.rule, fate.moment, send=1)

    def _audience(self, rule: Rule, event: Event, subject: Subject, now: datetime) -> None:
        """Follow the messages a fan-out rule would have stored, without storing them."""
        # plan_rule decides `when:` and the due time as for any rule; with no customer yet,
        # only its verdicts about the event itself count (the audience is chosen in SQL).
        plan = plan_rule(rule, event, subject, self.rules, brand=self.brand, now=now)
        if plan.state is State.SKIPPED and plan.reason in EVENT_LEVEL:
            reason = plan.reason or Reason.CONDITION_FALSE
            self.replay.count(rule.name, event.occurred_at, skip=reason.value)
            return
        seen = {(event.source, event.id): now}
        fixed = {"due_at": plan.due_at, "expires_at": plan.expires_at}
        expires = plan.expires_at or plan.due_at + self.rules.max_age(rule)
        for rows in audience_rows(self.conn, rule, event, plan.due_at, expires, now):
            self._judge([(as_claimed({**row, **fixed}, next(self.numbers)), event) for row in rows], seen)


# What a plan for an audience rule, made before there is a customer, says about the event.
EVENT_LEVEL = (Reason.BAD_EVENT, Reason.NO_RECIPIENT, Reason.CONDITION_FALSE, Reason.RULE_ERROR)


def audience_rows(
    conn: sa.Connection, rule: Rule, event: Event, due: datetime, expires: datetime, now: datetime
) -> Iterator[list[dict[str, Any]]]:
    """The rows a fan-out would have inserted, read in chunks instead (the one place the
    replay uses the fan-out's SQL)."""
    result = conn.execute(_audience_select(conn, rule, event, due, expires, now))
    for rows in result.mappings().partitions(CHUNK):
        yield [dict(row) for row in rows]


def _read_at(conn: sa.Connection, batch: list[Event]) -> dict[tuple[str, int], datetime]:
    """When the daemon read each event, where it planned something for it: a message is not
    looked at before its event was read (after downtime, later events are known by then).

    Looked up by thread (indexed) as well as event id; fan-out rows (threaded by customer)
    are not found, and their messages are first looked at when due."""
    found: dict[tuple[str, int], datetime] = {}
    by_source: dict[str, list[Event]] = {}
    for event in batch:
        by_source.setdefault(event.source, []).append(event)
    for source, events in by_source.items():
        for start in range(0, len(events), CHUNK):
            planned = reports.first_planned(conn, source, events[start : start + CHUNK])
            found.update(((source, event_id), at) for event_id, at in planned.items())
    return found


def _actually_sent(conn: sa.Connection, replay: Replay) -> None:
    """What the daemon really sent for the events in the window (resends by hand left out)."""
    for rule, text, count in reports.sent_per_rule_and_day(conn, replay.since):
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
