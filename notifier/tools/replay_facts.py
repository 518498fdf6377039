"""What the replay knows about the past, and what the daemon's gates would have said then.

`simulate` follows each message it plans to the moments the daemon would have looked at it:
first when it was due and its event had been read, then again at each `until` a deferral
(quiet hours, a hold while a case is open) names, until it goes, is skipped or the replayed
period ends. At each look the gates (notifier.core.gates.judge_one, the daemon's own) get
`Facts` as they stood at that moment: the awaited events known by then (`first_since(...,
until=)`), the cases open then (`open_cases(..., at=)`). This module only loads and replays;
every decision is the core's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifier.core.gates import HOLD_RECHECK, Facts, Types, awaited, first_since, judge_one, open_cases
from notifier.core.rules import Category, RuleSet
from notifier.core.timing import as_utc
from notifier.core.values import Claimed, Event, Reason, State
from notifier.db import events as event_rows
from notifier.db.facts import case_lifecycles
from notifier.db.store import SUPPRESSIONS
from notifier.db.subjects import CHUNK, load_customers

TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Fate:
    """What became of one message: sent (or skipped, with the reason) at `moment`; a moment
    after the replayed period means it would still be waiting."""

    moment: datetime
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class Known:
    """Everything the gates may look at for a batch of messages, over the whole period;
    `facts_at` cuts it down to what was known at one moment."""

    later: Mapping[tuple[str, int, Types], list[Event]]  # (source, subject, types) -> events
    owners: Mapping[int, dict[int, int]]  # customer -> {case id: customer id}
    lifecycle: Mapping[int, list[Event]]  # customer -> lifecycle events of their cases
    suppressed: Mapping[str, datetime]  # lower-case address -> since when
    zones: Mapping[int, str | None]
    has_secret: bool

    def facts_at(self, item: Claimed, trigger: Event | None, rules: RuleSet, moment: datetime) -> Facts:
        later: dict[tuple[int, Types], Event] = {}
        for _, types in awaited([item], rules):
            about = self.later.get((item.source, item.subject_id, types), [])
            first = first_since(trigger, item.event_id, about, until=moment)
            if first is not None:
                later[(item.id, types)] = first
        cases: dict[int, int] = {}
        if item.customer_id is not None and item.customer_id in self.owners:
            cases = open_cases(self.owners[item.customer_id], self.lifecycle[item.customer_id], at=moment)
        return Facts(
            later=later,
            suppressed=frozenset(a for a, since in self.suppressed.items() if since <= moment),
            open_cases=cases,
            zones=self.zones,
            has_secret=self.has_secret,
        )

    def changes(self, item: Claimed, rules: RuleSet) -> list[datetime]:
        """When something this message's gates look at happened: its awaited events, its
        customer's case events."""
        moments = [
            event.occurred_at
            for _, types in awaited([item], rules)
            for event in self.later.get((item.source, item.subject_id, types), [])
        ]
        if item.customer_id is not None:
            moments += [event.occurred_at for event in self.lifecycle.get(item.customer_id, [])]
        return moments


def load_known(
    conn: sa.Connection,
    items: list[Claimed],
    rules: RuleSet,
    *,
    has_secret: bool,
    people: Mapping[int, Mapping[str, Any]] | None = None,
) -> Known:
    """What `Known` needs for these messages, in a handful of queries (as db.facts does for
    a claimed batch, but over the whole period: the cut by time is made per look)."""
    groups: dict[tuple[str, Types], set[int]] = {}
    for item, types in awaited(items, rules):
        groups.setdefault((item.source, types), set()).add(item.subject_id)
    later: dict[tuple[str, int, Types], list[Event]] = {}
    for (source, types), subjects in groups.items():
        if source not in event_rows.SOURCES:
            continue
        for event in event_rows.read_about(conn, source, subjects, types):
            later.setdefault((source, event.subject_id, types), []).append(event)
    holding = {
        c.customer_id
        for c in items
        if c.customer_id is not None and (rule := rules.by_name(c.rule)) is not None and rule.hold_while
    }
    owners, lifecycle = case_lifecycles(conn, holding)
    by_customer: dict[int, dict[int, int]] = {}
    for case, customer in owners.items():
        by_customer.setdefault(customer, {})[case] = customer
    events: dict[int, list[Event]] = {customer: [] for customer in by_customer}
    for event in lifecycle:
        if event.subject_id in owners:
            events[owners[event.subject_id]].append(event)
    marketing = [c for c in items if c.category == Category.MARKETING]
    needs_zone = {c.customer_id for c in marketing if c.customer_id is not None}
    if people is None or not needs_zone <= set(people):
        people = load_customers(conn, needs_zone) if needs_zone else {}
    return Known(
        later=later,
        owners=by_customer,
        lifecycle=events,
        suppressed=suppressed_since(conn, [c.recipient for c in marketing if c.recipient]),
        zones={i: str(people[i].get("timezone") or "UTC") for i in needs_zone if i in people},
        has_secret=has_secret,
    )


def suppressed_since(conn: sa.Connection, addresses: Iterable[str]) -> dict[str, datetime]:
    """Which of these addresses unsubscribed or bounced, and when: a message that went out
    before an unsubscribe was not suppressed then."""
    wanted = sorted({a.lower() for a in addresses if a})
    found: dict[str, datetime] = {}
    for start in range(0, len(wanted), CHUNK):
        query = sa.select(SUPPRESSIONS.c.address, SUPPRESSIONS.c.created_at).where(
            SUPPRESSIONS.c.address.in_(wanted[start : start + CHUNK])
        )
        found.update((address, as_utc(since)) for address, since in conn.execute(query))
    return found


def follow(
    item: Claimed,
    trigger: Event | None,
    rules: RuleSet,
    known: Known,
    *,
    first_look: datetime,
    until: datetime,
) -> Fate:
    """Judge the message at each moment the daemon would have, from `first_look` on."""
    moment = first_look
    while moment <= until:
        verdict = judge_one(item, rules, known.facts_at(item, trigger, rules, moment), now=moment)
        if verdict is None:
            return Fate(moment)
        # Without the key nothing a replay follows can change the answer: counted under its reason.
        keyless = verdict.reason is Reason.NO_SECRET_KEY
        if verdict.state is not State.QUEUED or verdict.until is None or keyless:
            return Fate(moment, verdict.reason)
        moment = max(as_utc(verdict.until), moment + TICK)
        if verdict.reason is Reason.HELD:
            moment = _next_look_while_held(moment, known.changes(item, rules), item.expires_at, until)
    return Fate(moment)


def _next_look_while_held(
    moment: datetime, changes: Iterable[datetime], expires: datetime | None, until: datetime
) -> datetime:
    """A held message looks again every HOLD_RECHECK; until one of its events happens (a
    case resolved, an awaited event), or it expires, or the period ends, every look says
    "held" again. Skip those looks instead of judging each (a week is 672 of them)."""
    later = [c for c in changes if c > moment]
    steps = []
    if later:
        steps.append(-(-(min(later) - moment) // HOLD_RECHECK))  # the first look at or after it
    for limit in (expires, until):
        if limit is not None and limit >= moment:
            steps.append((limit - moment) // HOLD_RECHECK + 1)  # the first look after it
    return moment + HOLD_RECHECK * min(steps) if steps else moment
