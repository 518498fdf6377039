"""Load: everything a claimed batch needs from the database, each row read once per batch.

The messages' own events, their subjects (order, case or product, with the customer), the
customers of fanned-out messages and the facts the gates look at (notifier.db.facts, handed
the events and customers read here instead of reading them again). A handful of queries for
the whole batch. Should the batch's read fail on some row, each message is loaded on its own,
and only the ones whose rows cannot be read are decided (`unexpected_error`): one bad row
never stops the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from notifier.core.gates import Decided, Facts
from notifier.core.rules import Category, RuleSet
from notifier.core.values import Claimed, Event, Reason, State, Subject
from notifier.db import events as event_rows
from notifier.db.engine import reading
from notifier.db.facts import load_facts
from notifier.db.subjects import load_customers, load_subjects
from notifier.run import schedules
from notifier.run.recent import Recent

log = logging.getLogger("notifier.run.send")

FAN_OUT = ("product", "schedule")  # sources whose messages go to each customer of an audience
# Errors that mean the database itself is unreachable: the whole batch waits, no row is blamed.
DATABASE_LOST = (sa.exc.OperationalError, sa.exc.InterfaceError)


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a batch needs from the database, read in one go."""

    events: dict[tuple[str, int], Event] = field(default_factory=dict)
    subjects: dict[tuple[str, int], Subject] = field(default_factory=dict)
    people: dict[int, dict[str, object]] = field(default_factory=dict)  # customers by id
    facts: Facts = field(default_factory=Facts)

    def merged(self, other: Loaded) -> Loaded:
        a, b = self.facts, other.facts
        return Loaded(
            events={**self.events, **other.events},
            subjects={**self.subjects, **other.subjects},
            people={**self.people, **other.people},
            facts=Facts(
                later={**a.later, **b.later},
                suppressed=a.suppressed | b.suppressed,
                open_cases={**a.open_cases, **b.open_cases},
                zones={**a.zones, **b.zones},
                has_secret=b.has_secret,
            ),
        )


def load(
    engine: Engine, claimed: list[Claimed], rules: RuleSet, *, has_secret: bool, recent: Recent | None = None
) -> tuple[Loaded, list[Claimed], list[Decided]]:
    """(what was read, the messages it was read for, those whose rows could not be read).
    What intake read moments ago (`recent`) is taken as it is, not read again."""
    try:
        with reading(engine) as conn:
            return read(conn, claimed, rules, has_secret=has_secret, recent=recent), claimed, []
    except DATABASE_LOST:
        raise
    except Exception as exc:  # a row the code cannot handle: find which message it is
        log.warning("reading a batch of %d failed (%s); reading each on its own", len(claimed), exc)
    loaded, ok, decided = Loaded(facts=Facts(has_secret=has_secret)), [], []
    for item in claimed:
        try:
            with reading(engine) as conn:
                loaded = loaded.merged(read(conn, [item], rules, has_secret=has_secret))
            ok.append(item)
        except DATABASE_LOST:
            raise
        except Exception as exc:
            decided.append(unexpected(item, f"its rows could not be read: {words(exc)}"))
    return loaded, ok, decided


def read(
    conn: sa.Connection,
    claimed: list[Claimed],
    rules: RuleSet,
    *,
    has_secret: bool,
    recent: Recent | None = None,
) -> Loaded:
    if not claimed:
        return Loaded(facts=Facts(has_secret=has_secret))
    recent = recent or Recent()
    known = {ref: e for i in claimed if (e := recent.events.get(ref := (i.source, i.event_id))) is not None}
    events = {**known, **_events_for(conn, [i for i in claimed if (i.source, i.event_id) not in known])}
    wanted_people = {c for i in claimed if (c := audience_member(i)) is not None} | {
        i.customer_id for i in claimed if i.category == Category.MARKETING and i.customer_id is not None
    }
    people = load_customers(conn, wanted_people) if wanted_people else {}
    facts = load_facts(conn, claimed, rules, has_secret=has_secret, triggers=events, people=people)
    unrendered = {(i.source, i.subject_id) for i in claimed if i.message is None}
    subjects = {ref: recent.subjects[ref] for ref in unrendered if ref in recent.subjects}
    missing = unrendered - set(subjects)
    subjects.update(load_subjects(conn, missing) if missing else {})
    return Loaded(events=events, subjects=subjects, people=people, facts=facts)


def _events_for(conn: sa.Connection, items: list[Claimed]) -> dict[tuple[str, int], Event]:
    by_source: dict[str, set[int]] = {}
    for item in items:
        by_source.setdefault(item.source, set()).add(item.event_id)
    found: dict[tuple[str, int], Event] = {}
    for source, ids in by_source.items():
        if source == schedules.SOURCE:  # a calendar tick is not a row: its id is its time
            found.update({(source, i): schedules.tick_event(datetime.fromtimestamp(i, UTC)) for i in ids})
            continue
        for event in event_rows.read_ids(conn, source, ids):
            found[(source, event.id)] = event
    return found


def audience_member(item: Claimed) -> int | None:
    """The customer a fanned-out message goes to (its subject is the product or the tick)."""
    return item.customer_id if item.source in FAN_OUT and item.customer_id else None


def unexpected(item: Claimed, detail: str) -> Decided:
    return Decided(claimed=item, state=State.FAILED, reason=Reason.UNEXPECTED, detail=detail)


def words(exc: BaseException) -> str:
    """An error in plain words: its message, or its kind when it has none."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
