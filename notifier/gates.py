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

from notifier import events as event_rows
from notifier import store
from notifier.context import CASES, load_customers
from notifier.events import Event
from notifier.rules import Category, Rule, RuleSet
from notifier.store import Claimed
from notifier.tables import Reason, State
from notifier.timing import quiet_hours_end

HOLD_RECHECK = timedelta(minutes=15)  # how often a held message looks again at the open case
CASE_LIFECYCLE = ("opened", "reopened", "resolved")


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
    passed: list[Claimed] = []
    decided: list[Decided] = []
    for item in claimed:
        verdict = _skip_reason(conn, item, rules.by_name(item.rule), now, blocked, has_secret)
        if verdict is None:
            passed.append(item)
        else:
            decided.append(Decided(claimed=item, state=State.SKIPPED, reason=verdict[0], detail=verdict[1]))
    waiting = _held(conn, passed, rules, now) + _quiet(conn, passed, rules, now)
    later = {d.claimed.id for d in waiting}
    return [i for i in passed if i.id not in later], decided + waiting


def _skip_reason(
    conn: sa.Connection, item: Claimed, rule: Rule | None, now: datetime, blocked: set[str], has_secret: bool
) -> tuple[Reason, str] | None:
    if item.resend_of is None and (rule is None or not rule.enabled):
        return Reason.RULE_GONE, f"rule {item.rule!r} is no longer enabled in the rules file"
    if item.expires_at is not None and now > item.expires_at:
        return (
            Reason.EXPIRED,
            f"due {item.due_at:%Y-%m-%d %H:%M} UTC, {_words(now - item.due_at)} late; max_age passed",
        )
    if rule is not None and rule.unless:
        happened = first_event_since(conn, item, rule.unless)
        if happened is not None:
            return (
                Reason.UNLESS_HAPPENED,
                f"{happened.type} #{happened.id} at {happened.occurred_at:%Y-%m-%d %H:%M} UTC",
            )
    if rule is not None and rule.superseded_by:
        newer = first_event_since(conn, item, rule.superseded_by)
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


def first_event_since(conn: sa.Connection, item: Claimed, types: Iterable[str]) -> Event | None:
    """The first event of these types about the same order or case, at or after the trigger."""
    table, column = event_rows.SOURCES[item.source]
    short_types = [name.split(".", 1)[1] for name in types]
    ids = conn.execute(
        sa.select(table.c.id).where(
            table.c[column] == item.subject_id, table.c.type.in_(short_types), table.c.id != item.event_id
        )
    ).scalars()
    candidates = event_rows.read_ids(conn, item.source, ids)
    trigger = event_rows.read_ids(conn, item.source, [item.event_id])
    since = trigger[0].occurred_at if trigger else None
    # Compared here, not in SQL: SQLite keeps timestamps as text in more than one format.
    after = [e for e in candidates if not e.problem and (since is None or e.occurred_at >= since)]
    return min(after, key=lambda e: (e.occurred_at, e.id)) if after else None


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
    table, _ = event_rows.SOURCES["case"]
    rows = conn.execute(
        sa.select(table.c.id).where(table.c.case_id.in_(list(owners)), table.c.type.in_(CASE_LIFECYCLE))
    ).scalars()
    latest: dict[int, Event] = {}
    for event in event_rows.read_ids(conn, "case", rows):
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
