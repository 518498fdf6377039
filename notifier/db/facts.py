"""What the gates look at, loaded for a whole batch of claimed messages in a handful of queries.

notifier.core.gates decides; this reads: the later events that stop or supersede a message, the
suppression list, the customers' open cases and timezones. A query per source and set of event
types for the batch, never two or three per message: a sale day's thousands of
dispatched-then-delivered messages are judged in a handful of queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from notifier.core.gates import CASE_LIFECYCLE, Facts, Types, awaited, first_since, open_cases
from notifier.core.rules import Category, RuleSet
from notifier.core.values import Claimed, Event
from notifier.db import events as event_rows
from notifier.db import store
from notifier.db.subjects import CASES, load_customers


def load_facts(
    conn: sa.Connection,
    claimed: list[Claimed],
    rules: RuleSet,
    *,
    has_secret: bool,
    triggers: Mapping[tuple[str, int], Event] | None = None,
    people: Mapping[int, Mapping[str, object]] | None = None,
) -> Facts:
    """The facts for `claimed`. `triggers` (the messages' own events) and `people` (customers
    by id) may be passed in when the caller has read them already for rendering."""
    if triggers is None:
        triggers = read_triggers(conn, claimed)
    marketing = [c for c in claimed if c.category == Category.MARKETING]
    holding = [
        c.customer_id
        for c in claimed
        if c.customer_id is not None and (rule := rules.by_name(c.rule)) is not None and rule.hold_while
    ]
    needs_zone = {c.customer_id for c in marketing if c.customer_id is not None}
    if people is None or not needs_zone <= set(people):
        people = load_customers(conn, needs_zone) if needs_zone else {}
    return Facts(
        later=events_since(conn, awaited(claimed, rules), triggers),
        suppressed=frozenset(store.suppressed(conn, [c.recipient for c in marketing if c.recipient])),
        open_cases=read_open_cases(conn, holding),
        zones={i: str(people[i].get("timezone") or "UTC") for i in needs_zone if i in people},
        has_secret=has_secret,
    )


def read_triggers(conn: sa.Connection, items: Iterable[Claimed]) -> dict[tuple[str, int], Event]:
    """The events the messages were planned for, by (source, id); calendar ticks are no rows."""
    by_source: dict[str, set[int]] = {}
    for item in items:
        by_source.setdefault(item.source, set()).add(item.event_id)
    return {
        (source, event.id): event
        for source, ids in by_source.items()
        if source in event_rows.SOURCES
        for event in event_rows.read_ids(conn, source, ids)
    }


def events_since(
    conn: sa.Connection, wanted: list[tuple[Claimed, Types]], triggers: Mapping[tuple[str, int], Event]
) -> dict[tuple[int, Types], Event]:
    """For each message, the first event of the given types about the same order or case at
    or after its trigger (not the trigger itself), if any."""
    groups: dict[tuple[str, Types], list[Claimed]] = {}
    for item, types in wanted:
        groups.setdefault((item.source, types), []).append(item)
    found: dict[tuple[int, Types], Event] = {}
    for (source, types), items in groups.items():
        if source not in event_rows.SOURCES:
            continue
        about: dict[int, list[Event]] = {}
        for event in event_rows.read_about(conn, source, {item.subject_id for item in items}, types):
            about.setdefault(event.subject_id, []).append(event)
        for item in items:
            # Compared in Python, not SQL: SQLite keeps timestamps as text in more than one format.
            first = first_since(
                triggers.get((source, item.event_id)), item.event_id, about.get(item.subject_id, [])
            )
            if first is not None:
                found[(item.id, types)] = first
    return found


def read_open_cases(conn: sa.Connection, customer_ids: Iterable[int]) -> dict[int, int]:
    """Customer id -> one of their open cases now, for a whole batch in two queries."""
    owners, lifecycle = case_lifecycles(conn, customer_ids)
    return open_cases(owners, lifecycle)


def case_lifecycles(conn: sa.Connection, customer_ids: Iterable[int]) -> tuple[dict[int, int], list[Event]]:
    """(case id -> customer id, the lifecycle events of those cases) for these customers."""
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}, []
    owners: dict[int, int] = dict(
        conn.execute(sa.select(CASES.c.id, CASES.c.customer_id).where(CASES.c.customer_id.in_(wanted))).all()
    )
    if not owners:
        return {}, []
    return owners, event_rows.read_about(conn, "case", owners, CASE_LIFECYCLE)
