"""Gates a claimed notification passes before it is rendered: is it still wanted, and now?

Planning decided when the event was seen; by the time a message falls due the world may have
moved on. Each gate answers with a `Decided` (skip, or wait until a moment) or lets it pass:

    rule gone       the rule was removed or disabled since                -> skipped
    expired         more than max_age late                                -> skipped
    unless          an awaited event arrived (absence rules)              -> skipped
    superseded      a later event makes the message stale (opt-in)        -> skipped
    suppressed      marketing to an unsubscribed or bounced address       -> skipped
    no secret key   marketing needs signed unsubscribe links              -> skipped
    hold            marketing while the customer has an open case (opt-in) -> waits
    quiet hours     marketing inside the customer's night                 -> waits
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from notifier.core.rules import Category, Rule, RuleSet
from notifier.core.timing import quiet_hours_end
from notifier.core.values import Claimed, Event, Reason, State
from notifier.db import events as event_rows
from notifier.db import store
from notifier.db.subjects import CASES, load_customers

HOLD_RECHECK = timedelta(minutes=15)  # how often a held message looks again at the open case
CASE_LIFECYCLE = ("case.opened", "case.reopened", "case.resolved")


@dataclass(frozen=True, slots=True, kw_only=True)
class Decided:
    """A claimed notification that will not be sent now, and why."""

    claimed: Claimed
    state: State
    reason: Reason
    detail: str
    until: datetime | None = None  # for a deferral (state QUEUED): when to look again


def judge(
    conn: sa.Connection, claimed: list[Claimed], rules: RuleSet, *, now: datetime, has_secret: bool
) -> tuple[list[Claimed], list[Decided]]:
    """Split claimed notifications into those to render now and those decided otherwise."""
    blocked = store.suppressed(
        conn, [c.recipient for c in claimed if c.category == Category.MARKETING and c.recipient]
    )
    later = events_since(conn, _awaited(claimed, rules))
    passed: list[Claimed] = []
    decided: list[Decided] = []
    for item in claimed:
        verdict = _skip_reason(item, rules.by_name(item.rule), now, blocked, has_secret, later)
        if verdict is None:
            passed.append(item)
        else:
            decided.append(Decided(claimed=item, state=State.SKIPPED, reason=verdict[0], detail=verdict[1]))
    waiting = _held(conn, passed, rules, now) + _quiet(conn, passed, rules, now)
    deferred = {d.claimed.id for d in waiting}
    return [i for i in passed if i.id not in deferred], decided + waiting


Awaited = tuple[Claimed, tuple[str, ...]]  # a message, and event types that would stop it
Since = dict[tuple[int, tuple[str, ...]], Event]  # (message id, those types) -> the first one


def _awaited(claimed: list[Claimed], rules: RuleSet) -> list[Awaited]:
    """The event types each message's `unless:` and `superseded_by:` wait for."""
    wanted: list[Awaited] = []
    for item in claimed:
        rule = rules.by_name(item.rule)
        if rule is None:
            continue
        wanted.extend((item, _types(types)) for types in (rule.unless, rule.superseded_by) if types)
    return wanted


def _types(types: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(types))


def _skip_reason(
    item: Claimed, rule: Rule | None, now: datetime, blocked: set[str], has_secret: bool, later: Since
) -> tuple[Reason, str] | None:
    if item.resend_of is None and (rule is None or not rule.enabled):
        return Reason.RULE_GONE, f"rule {item.rule!r} is no longer enabled in the rules file"
    if item.expires_at is not None and now > item.expires_at:
        return (
            Reason.EXPIRED,
            f"due {item.due_at:%Y-%m-%d %H:%M} UTC, {_words(now - item.due_at)} late; max_age passed",
        )
    if rule is not None and rule.unless:
        happened = later.get((item.id, _types(rule.unless)))
        if happened is not None:
            return (
                Reason.UNLESS_HAPPENED,
                f"{happened.type} #{happened.id} at {happened.occurred_at:%Y-%m-%d %H:%M} UTC",
            )
    if rule is not None and rule.superseded_by:
        newer = later.get((item.id, _types(rule.superseded_by)))
        if newer is not None:
            return Reason.SUPERSEDED, f"superseded: {newer.type} #{newer.id} is already known"
    if item.category == Category.MARKETING:
        if item.recipient and item.recipient.lower() in blocked:
            return Reason.SUPPRESSED, f"{item.recipient} unsubscribed or bounced"
        if not has_secret:
            return (
                Reason.NO_SECRET_KEY,
                "marketing mail needs NOTIFIER_SECRET_KEY to sign its unsubscribe link",
            )
    return None


def events_since(conn: sa.Connection, wanted: list[Awaited]) -> Since:
    """For each message, the first event of the given types about the same order or case at
    or after its trigger (not the trigger itself), if any. A query per source and set of
    types for the whole batch, not two or three per message: a sale day's thousands of
    dispatched-then-delivered messages are judged in a handful of queries."""
    groups: dict[tuple[str, tuple[str, ...]], list[Claimed]] = {}
    for item, types in wanted:
        groups.setdefault((item.source, types), []).append(item)
    triggers = _triggers(conn, [item for item, _ in wanted])
    found: Since = {}
    for (source, types), items in groups.items():
        about = _events_about(conn, source, types, {item.subject_id for item in items})
        for item in items:
            trigger = triggers.get((source, item.event_id))
            since = trigger.occurred_at if trigger is not None else None
            # Compared here, not in SQL: SQLite keeps timestamps as text in more than one format.
            after = [
                e
                for e in about.get(item.subject_id, [])
                if e.id != item.event_id and not e.problem and (since is None or e.occurred_at >= since)
            ]
            if after:
                found[(item.id, types)] = min(after, key=lambda e: (e.occurred_at, e.id))
    return found


def _triggers(conn: sa.Connection, items: list[Claimed]) -> dict[tuple[str, int], Event]:
    by_source: dict[str, set[int]] = {}
    for item in items:
        by_source.setdefault(item.source, set()).add(item.event_id)
    return {
        (source, event.id): event
        for source, ids in by_source.items()
        if source in event_rows.SOURCES
        for event in event_rows.read_ids(conn, source, ids)
    }


def _events_about(
    conn: sa.Connection, source: str, types: tuple[str, ...], subjects: set[int]
) -> dict[int, list[Event]]:
    """Events of these types about these orders (or cases, or products), by subject."""
    if source not in event_rows.SOURCES:
        return {}
    by_subject: dict[int, list[Event]] = {}
    for event in event_rows.read_about(conn, source, subjects, types):
        by_subject.setdefault(event.subject_id, []).append(event)
    return by_subject


def open_cases(conn: sa.Connection, customer_ids: Iterable[int]) -> dict[int, int]:
    """Customer id -> one of their open cases (opened or reopened, not resolved since), for a
    whole batch in three queries rather than three per message."""
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    owners: dict[int, int] = dict(
        conn.execute(sa.select(CASES.c.id, CASES.c.customer_id).where(CASES.c.customer_id.in_(wanted))).all()
    )
    if not owners:
        return {}
    latest: dict[int, Event] = {}
    for event in event_rows.read_about(conn, "case", owners, CASE_LIFECYCLE):
        current = latest.get(event.subject_id)
        if current is None or (event.occurred_at, event.id) > (current.occurred_at, current.id):
            latest[event.subject_id] = event
    found: dict[int, int] = {}
    for case, event in sorted(latest.items()):
        if event.type != "case.resolved":
            found.setdefault(owners[case], case)
    return found


def _held(conn: sa.Connection, items: list[Claimed], rules: RuleSet, now: datetime) -> list[Decided]:
    holding = [
        i
        for i in items
        if i.customer_id is not None
        and (rule := rules.by_name(i.rule)) is not None
        and rule.hold_while == "case.open"
    ]
    cases = open_cases(conn, (i.customer_id for i in holding if i.customer_id is not None))
    return [
        Decided(
            claimed=item,
            state=State.QUEUED,
            reason=Reason.HELD,
            detail=f"held: open case {cases[item.customer_id]}",
            until=now + HOLD_RECHECK,
        )
        for item in holding
        if item.customer_id in cases
    ]


def _quiet(conn: sa.Connection, items: list[Claimed], rules: RuleSet, now: datetime) -> list[Decided]:
    """Marketing mail inside the customer's quiet hours waits for them to end (never dropped)."""
    quiet = rules.defaults.quiet_hours
    marketing = [i for i in items if i.category == Category.MARKETING and i.customer_id is not None]
    if quiet is None or not marketing:
        return []
    people = load_customers(conn, {i.customer_id for i in marketing if i.customer_id is not None})
    waiting: list[Decided] = []
    for item in marketing:
        zone = _zone(people.get(item.customer_id or 0, {}).get("timezone"))
        until = quiet_hours_end(now, zone, quiet.start, quiet.end)
        if until is not None:
            local_end = until.astimezone(zone)
            detail = f"quiet hours in {zone} until {local_end:%H:%M} local ({until:%Y-%m-%d %H:%M} UTC)"
            waiting.append(
                Decided(
                    claimed=item, state=State.QUEUED, reason=Reason.QUIET_HOURS, detail=detail, until=until
                )
            )
    return waiting


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _words(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"
