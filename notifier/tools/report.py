"""Did telling them first stop the calls? `notifier report --since 30d`.

For each rule: how many messages went out and how many failed. For a rule about orders, also
how often a customer-service case was opened about the same order within 7 days after the
message, next to the same rate for orders of the same kind that got no such message (orders
with the rule's triggering event but no message of that rule sent): counted from the
trigger. A lower rate with the message is the answer the florist hoped for; the two groups
are not a controlled trial (a dispatch-delayed email goes only to orders that were late).

Read-only: the same read-only connection as `simulate`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifier.core.rules import RuleSet
from notifier.core.values import State
from notifier.core.vocabulary import parse_timestamp
from notifier.db.events import SOURCES
from notifier.db.store import reports as outbox_reports
from notifier.db.subjects import CASES
from notifier.tools.replay import at_or_after

WINDOW = timedelta(days=7)
CHUNK = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleReport:
    rule: str
    on: str | None  # the triggering event type, when known
    sent: int
    failed: int
    # Order rules only (None otherwise): orders messaged / with a case within 7 days after it,
    # and orders with the trigger but no message / with a case within 7 days of the trigger.
    messaged_orders: int | None = None
    messaged_with_case: int | None = None
    unmessaged_orders: int | None = None
    unmessaged_with_case: int | None = None

    @property
    def rate_with(self) -> float | None:
        return _rate(self.messaged_with_case, self.messaged_orders)

    @property
    def rate_without(self) -> float | None:
        return _rate(self.unmessaged_with_case, self.unmessaged_orders)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "case_rate_with_message": self.rate_with,
            "case_rate_without": self.rate_without,
        }


def _rate(part: int | None, whole: int | None) -> float | None:
    return None if part is None or not whole else round(part / whole, 4)


def report(conn: sa.Connection, rules: RuleSet | None, *, since: datetime, now: datetime) -> list[RuleReport]:
    """One RuleReport per rule in the rules file or in the outbox since `since`."""
    counts: dict[str, dict[str, int]] = {}
    triggers: dict[str, str] = {}
    for name, state, event_type, count in outbox_reports.sent_or_failed(conn, since):
        counts.setdefault(name, {}).setdefault(state, 0)
        counts[name][state] += count
        triggers.setdefault(name, event_type)
    names = list(counts)
    if rules is not None:
        for rule in rules.rules:
            triggers[rule.name] = rule.on
            if rule.name not in counts and rule.enabled:
                names.append(rule.name)
    cases = _cases(conn, since)
    reports = []
    for name in sorted(names):
        on = triggers.get(name)
        found = counts.get(name, {})
        compared = _compare(conn, name, on, cases, since, now) if on and on.startswith("order.") else {}
        reports.append(
            RuleReport(
                rule=name, on=on, sent=found.get(State.SENT, 0), failed=found.get(State.FAILED, 0), **compared
            )
        )
    return reports


def _cases(conn: sa.Connection, since: datetime) -> dict[int, list[datetime]]:
    """When cases about each order were opened, for cases opened since `since`."""
    query = sa.select(CASES.c.order_id, CASES.c.opened_at).where(
        CASES.c.order_id.is_not(None), at_or_after(conn, CASES.c.opened_at, since)
    )
    found: dict[int, list[datetime]] = {}
    for order_id, opened in conn.execute(query):
        try:
            found.setdefault(order_id, []).append(parse_timestamp(opened))
        except (ValueError, TypeError):
            continue
    return found


def _compare(
    conn: sa.Connection, rule: str, on: str, cases: dict[int, list[datetime]], since: datetime, now: datetime
) -> dict[str, int]:
    messaged = outbox_reports.first_sent_per_order(conn, rule, since)
    table, column = SOURCES["order"]
    triggered: dict[int, datetime] = {}
    query = sa.select(table.c[column], table.c.occurred_at).where(
        table.c.type == on.split(".", 1)[1], at_or_after(conn, table.c.occurred_at, since)
    )
    for order_id, occurred in conn.execute(query):
        try:
            moment = parse_timestamp(occurred)
        except (ValueError, TypeError):
            continue
        if moment <= now:
            triggered[order_id] = min(moment, triggered.get(order_id, moment))
    unmessaged = {order_id: at for order_id, at in triggered.items() if order_id not in messaged}
    return {
        "messaged_orders": len(messaged),
        "messaged_with_case": _with_case(messaged.items(), cases),
        "unmessaged_orders": len(unmessaged),
        "unmessaged_with_case": _with_case(unmessaged.items(), cases),
    }


def _with_case(orders: Iterable[tuple[int, datetime]], cases: dict[int, list[datetime]]) -> int:
    """How many of these orders had a case opened within WINDOW after their moment."""
    return sum(
        1
        for order_id, start in orders
        if any(start <= opened <= start + WINDOW for opened in cases.get(order_id, ()))
    )
