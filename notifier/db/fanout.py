"""Audience fan-out: one product event -> one notification per customer who bought the product.

A rule with `audience: { ordered_product_within: 365d }` owes a message to every customer
with an order of the event's product placed in that window before the event. The audience
can be millions of customers, so it is planned inside the database with one
`INSERT ... SELECT ... GROUP BY customer ... ON CONFLICT (key) DO NOTHING`: no customer row
comes into Python, and memory stays flat whatever the audience size.

`when:` and `send_at:` are evaluated once for the event (the context has `event` and
`product`, no customer). Each recipient's notification has its own key
`rule:product:event_id:customer_id`, so a rerun or a second daemon stores nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from notifier.core.conditions import ExpressionError
from notifier.core.context import template_context
from notifier.core.planning import due_time
from notifier.core.rules import Category, Rule, RuleSet
from notifier.core.values import Event, State, Subject
from notifier.db.schema import UTC_TIMESTAMP
from notifier.db.store import NOTIFICATIONS, SUPPRESSIONS
from notifier.db.subjects import CUSTOMERS, ITEMS, ORDERS, PRODUCTS

log = logging.getLogger("notifier.db.fanout")

# What Python's str.strip() removes from an address (context.py strips customer emails).
_BLANKS = " \t\r\n\f\v"
# The columns of a notification row, as `Planned.row()` writes them.
_VALUE_NAMES = (
    "key",
    "rule",
    "template",
    "category",
    "source",
    "event_id",
    "event_type",
    "event_occurred_at",
    "thread",
    "subject_id",
    "customer_id",
    "recipient",
    "state",
    "reason",
    "detail",
    "due_at",
    "expires_at",
    "next_attempt_at",
    "attempts",
    "created_at",
    "updated_at",
)


def plan_audience(
    conn: sa.Connection,
    rule: Rule,
    event: Event,
    rules: RuleSet,
    *,
    subject: Subject,
    brand: Mapping[str, str],
    now: datetime,
) -> int:
    """Store one queued notification per customer in the rule's audience; return how many
    were newly stored (0 when `when:` is false or the event cannot be used)."""
    assert rule.audience is not None, f"rule {rule.name!r} has no audience"
    label = f"{rule.name} for {event.type} #{event.id}"
    if event.problem or subject.problem:
        log.warning("skipped %s: %s", label, event.problem or subject.problem)
        return 0
    context = template_context(subject, event, brand=brand, now=now)
    try:
        if rule.when is not None and not rule.when.holds(context):
            log.info("skipped %s: when: %s was false", label, rule.when.source)
            return 0
        due = due_time(rule, event, context, rules)
    except ExpressionError as exc:
        log.warning("skipped %s: when/send_at could not be evaluated: %s", label, exc)
        return 0
    statement = _insert(conn).from_select(
        list(_VALUE_NAMES), _audience_select(conn, rule, event, due, due + rules.max_age(rule), now)
    )
    statement = statement.on_conflict_do_nothing(index_elements=["key"])
    # SQLAlchemy keeps an INSERT's row count only when asked (else -1 on PostgreSQL).
    result = conn.execute(statement.execution_options(preserve_rowcount=True))
    planned = max(result.rowcount or 0, 0)
    log.info("planned %s to %d customer(s), due %s", label, planned, due.isoformat(timespec="seconds"))
    return planned


def _insert(conn: sa.Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(NOTIFICATIONS)


def _text(value: str) -> Any:
    return sa.literal(value, sa.String)


def _moment(value: datetime) -> Any:
    """A timestamp bound with the column type, so it is stored like every other one."""
    return sa.literal(value, UTC_TIMESTAMP)


def _trimmed(conn: sa.Connection, column: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return sa.func.btrim(column, _text(_BLANKS))
    return sa.func.trim(column, _text(_BLANKS))


def _placed_within(conn: sa.Connection, start: datetime, end: datetime) -> Any:
    """orders.placed_at between start and end, both included."""
    placed = ORDERS.c.placed_at
    if conn.dialect.name == "sqlite":
        # Text in SQLite, with or without fractional seconds, 'T' or an offset: compare instants.
        return sa.func.julianday(placed).between(
            sa.func.julianday(_moment(start)), sa.func.julianday(_moment(end))
        )
    return placed.between(_moment(start), _moment(end))


def _bought(conn: sa.Connection, rule: Rule, event: Event) -> list[Any]:
    """What the customer must have ordered, and when: the event's product (product events), or
    anything — or a product with one of the rule's tags — in the window (calendar rules)."""
    audience = rule.audience
    assert audience is not None
    if audience.ordered_product_within is not None:
        since = event.occurred_at - audience.ordered_product_within
        return [ITEMS.c.product_id == event.subject_id, _placed_within(conn, since, event.occurred_at)]
    assert audience.ordered_within is not None
    conditions = [_placed_within(conn, event.occurred_at - audience.ordered_within, event.occurred_at)]
    if audience.product_tags:
        # tags are comma-separated text: match whole tags, not substrings ("rose" is not "roses").
        wrapped = _text(",") + sa.func.replace(PRODUCTS.c.tags, " ", "") + _text(",")
        tagged = sa.or_(*(wrapped.like(f"%,{tag},%") for tag in audience.product_tags))
        conditions.append(ITEMS.c.product_id.in_(sa.select(PRODUCTS.c.id).where(tagged)))
    return conditions


def _audience_select(
    conn: sa.Connection, rule: Rule, event: Event, due: datetime, expires: datetime, now: datetime
) -> sa.Select[Any]:
    """One row per distinct customer in the audience, shaped like `Planned.row()`."""
    assert rule.audience is not None
    email = _trimmed(conn, CUSTOMERS.c.email)
    customer_id = sa.cast(CUSTOMERS.c.id, sa.String)
    values: dict[str, Any] = {
        "key": _text(f"{rule.name}:{event.source}:{event.id}:") + customer_id,
        "rule": _text(rule.name),
        "template": _text(rule.template),
        "category": _text(rule.category.value),
        "source": _text(event.source),
        "event_id": sa.literal(event.id, sa.Integer),
        "event_type": _text(event.type),
        "event_occurred_at": _moment(event.occurred_at),
        "thread": _text("customer:") + customer_id,
        "subject_id": sa.literal(event.subject_id, sa.Integer),
        "customer_id": CUSTOMERS.c.id,
        "recipient": _text(rule.to) if rule.to else email,
        "state": _text(State.QUEUED.value),
        "reason": sa.null(),
        "detail": sa.null(),
        "due_at": _moment(due),
        "expires_at": _moment(expires),
        "next_attempt_at": _moment(due),
        "attempts": sa.literal(0, sa.Integer),
        "created_at": _moment(now),
        "updated_at": _moment(now),
    }
    conditions = [*_bought(conn, rule, event), email != ""]
    if rule.category is Category.MARKETING and rule.to is None:
        suppressed = sa.exists().where(SUPPRESSIONS.c.address == sa.func.lower(email))
        conditions += [CUSTOMERS.c.marketing_opt_in == sa.true(), ~suppressed]
    return (
        sa.select(*(values[name].label(name) for name in _VALUE_NAMES))
        .select_from(
            CUSTOMERS.join(ORDERS, ORDERS.c.customer_id == CUSTOMERS.c.id).join(
                ITEMS, ITEMS.c.order_id == ORDERS.c.id
            )
        )
        .where(*conditions)
        .group_by(CUSTOMERS.c.id, CUSTOMERS.c.email)
    )
