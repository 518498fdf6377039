"""Audience fan-out into the outbox: one row per candidate customer, queued or skipped and why.

The audience can be millions of customers, so it is planned inside the database with one
`INSERT ... SELECT ... GROUP BY customer ... ON CONFLICT (key) DO NOTHING`: no customer row
comes into Python, and memory stays flat whatever the audience size. The candidates are the
customers who ever ordered the event's product (product events; in the event's currency when
it names one, as a price change does: Audience.currency_of), or ever ordered anything or a
tagged product (calendar rules); a CASE gives each the reason it is left out, if any:

    outside_window   bought it, but not within the audience window before the event
    not_opted_in     marketing mail, and the customer did not opt in
    suppressed       marketing mail, and the address unsubscribed or bounced
    invalid_address  no usable email address

Each row's key is `rule:source:event_id:customer_id`, so a rerun or a second daemon stores
nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifier.core.rules import Category, Rule
from notifier.core.values import Event, Reason, State
from notifier.db.schema import UTC_TIMESTAMP, Customer, Order, OrderItem, Product
from notifier.db.store.base import NOTIFICATIONS, SUPPRESSIONS, insert_new

CUSTOMERS: sa.Table = Customer.__table__  # type: ignore[attr-defined]
ORDERS: sa.Table = Order.__table__  # type: ignore[attr-defined]
ITEMS: sa.Table = OrderItem.__table__  # type: ignore[attr-defined]
PRODUCTS: sa.Table = Product.__table__  # type: ignore[attr-defined]

# What Python's str.strip() removes from an address (subjects.py strips customer emails).
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
    "rule_fingerprint",
    "due_basis",
    "due_at",
    "expires_at",
    "next_attempt_at",
    "attempts",
    "created_at",
    "updated_at",
)


def insert_audience(
    conn: sa.Connection,
    rule: Rule,
    event: Event,
    *,
    due: datetime,
    expires: datetime,
    basis: str,
    now: datetime,
) -> int:
    """Store one notification per candidate customer; returns how many were newly stored."""
    rows = _rows(conn, rule, event, due=due, expires=expires, basis=basis, now=now)
    return insert_new(conn, NOTIFICATIONS, "key", select=(_VALUE_NAMES, rows))


def audience_rows(
    conn: sa.Connection,
    rule: Rule,
    event: Event,
    *,
    due: datetime,
    expires: datetime,
    basis: str,
    now: datetime,
) -> sa.Select[Any]:
    """The rows insert_audience would store for the customers in the audience (queued), unstored:
    `simulate` counts them."""
    rows = _rows(conn, rule, event, due=due, expires=expires, basis=basis, now=now).subquery()
    return sa.select(rows).where(rows.c.state == State.QUEUED.value)


def audience_counts(conn: sa.Connection, rule: Rule, event: Event) -> dict[str, int]:
    """What the fan-out of one rule for one event stored: 'queued' and each skip reason."""
    n = NOTIFICATIONS
    query = (
        sa.select(n.c.state, n.c.reason, sa.func.count())
        .where(n.c.rule == rule.name, n.c.source == event.source, n.c.event_id == event.id)
        .group_by(n.c.state, n.c.reason)
    )
    return {str(reason or state): count for state, reason, count in conn.execute(query)}


def _text(value: str) -> Any:
    return sa.literal(value, sa.String)


def _moment(value: datetime) -> Any:
    """A timestamp bound with the column type, so it is stored like every other one."""
    return sa.literal(value, UTC_TIMESTAMP)


def _trimmed(conn: sa.Connection, column: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return sa.func.btrim(column, _text(_BLANKS))
    if conn.dialect.name == "mysql":  # its TRIM takes off one string, not a set of characters
        return sa.func.regexp_replace(column, _text(f"^[{_BLANKS}]+|[{_BLANKS}]+$"), _text(""))
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


def _window(rule: Rule) -> tuple[timedelta, str]:
    audience = rule.audience
    assert audience is not None, f"rule {rule.name!r} has no audience"
    if audience.ordered_product_within is not None:
        return audience.ordered_product_within, "the product"
    assert audience.ordered_within is not None
    tags = f"a product tagged {', '.join(audience.product_tags)}" if audience.product_tags else "anything"
    return audience.ordered_within, tags


def _candidates(rule: Rule, event: Event) -> list[Any]:
    """Who may be in the audience at all: who ever ordered the product (product events), or
    anything, or a product with one of the rule's tags (calendar rules)."""
    audience = rule.audience
    assert audience is not None
    if audience.ordered_product_within is not None:
        currency = audience.currency_of(event)
        if currency is None:
            return [ITEMS.c.product_id == event.subject_id]
        # Bought it in the event's currency: the prices in the message are the ones they pay.
        return [ITEMS.c.product_id == event.subject_id, sa.func.upper(ORDERS.c.currency) == _text(currency)]
    if not audience.product_tags:
        return []
    # tags are comma-separated text: match whole tags, not substrings ("rose" is not "roses").
    wrapped = _text(",") + sa.func.replace(PRODUCTS.c.tags, " ", "") + _text(",")
    tagged = sa.or_(*(wrapped.like(f"%,{tag},%") for tag in audience.product_tags))
    return [ITEMS.c.product_id.in_(sa.select(PRODUCTS.c.id).where(tagged))]


def _decided(conn: sa.Connection, rule: Rule, event: Event) -> Any:
    """One row per candidate customer: its id, its usable address (or NULL), and the reason it
    is left out (NULL: it is in the audience)."""
    email = _trimmed(conn, CUSTOMERS.c.email)
    usable = sa.and_(email.is_not(None), email != "", email.like("%@%"))
    if conn.dialect.name == "sqlite":  # SQLite keeps whatever was written: bytes, numbers
        usable = sa.and_(sa.func.typeof(CUSTOMERS.c.email) == "text", usable)
    window, _ = _window(rule)
    in_window = sa.func.max(
        sa.case((_placed_within(conn, event.occurred_at - window, event.occurred_at), 1), else_=0)
    )
    whens: list[tuple[Any, str]] = [(in_window != 1, Reason.OUTSIDE_WINDOW.value)]
    if rule.to is None:
        if rule.category is Category.MARKETING:
            opted_in = CUSTOMERS.c.marketing_opt_in == sa.true()
            suppressed = sa.exists().where(SUPPRESSIONS.c.address == sa.func.lower(email))
            whens += [(~opted_in, Reason.NOT_OPTED_IN.value), (suppressed, Reason.SUPPRESSED.value)]
        whens.append((~usable, Reason.INVALID_ADDRESS.value))
    reason = sa.case(*whens, else_=sa.null())
    return (
        sa.select(
            CUSTOMERS.c.id.label("customer_id"),
            sa.case((usable, email), else_=sa.null()).label("email"),
            reason.label("reason"),
        )
        .select_from(
            CUSTOMERS.join(ORDERS, ORDERS.c.customer_id == CUSTOMERS.c.id).join(
                ITEMS, ITEMS.c.order_id == ORDERS.c.id
            )
        )
        .where(*_candidates(rule, event))
        .group_by(CUSTOMERS.c.id, CUSTOMERS.c.email, CUSTOMERS.c.marketing_opt_in)
        .subquery("decided")
    )


def _details(rule: Rule, event: Event) -> dict[str, str]:
    window, what = _window(rule)
    return {
        Reason.OUTSIDE_WINDOW.value: f"the customer ordered {what}, but not in the {window} before "
        f"{event.type} #{event.id}",
        Reason.NOT_OPTED_IN.value: "the customer has not opted in to marketing mail",
        Reason.SUPPRESSED.value: "the address unsubscribed or bounced (suppression list)",
        Reason.INVALID_ADDRESS.value: "the customer has no usable email address",
    }


def _rows(
    conn: sa.Connection,
    rule: Rule,
    event: Event,
    *,
    due: datetime,
    expires: datetime,
    basis: str,
    now: datetime,
) -> sa.Select[Any]:
    """The candidates' notification rows, shaped like `Planned.row()`."""
    decided = _decided(conn, rule, event)
    customer_id = sa.cast(decided.c.customer_id, sa.String)
    detail = sa.case(*((decided.c.reason == r, _text(words)) for r, words in _details(rule, event).items()))
    values: dict[str, Any] = {
        "key": _text(f"{rule.name}:{event.source}:{event.id}:") + customer_id,
        "rule": _text(rule.name),
        "template": _text(rule.template),
        "category": _text(rule.category.value),
        "source": _text(event.source),
        "event_id": sa.literal(event.id, sa.BigInteger),
        "event_type": _text(event.type),
        "event_occurred_at": _moment(event.occurred_at),
        "thread": _text("customer:") + customer_id,
        "subject_id": sa.literal(event.subject_id, sa.BigInteger),
        "customer_id": decided.c.customer_id,
        "recipient": _text(rule.to) if rule.to else decided.c.email,
        "state": sa.case(
            (decided.c.reason.is_(None), _text(State.QUEUED.value)), else_=_text(State.SKIPPED.value)
        ),
        "reason": decided.c.reason,
        "detail": detail,
        "rule_fingerprint": _text(rule.fingerprint) if rule.fingerprint else sa.null(),
        "due_basis": _text(basis),
        "due_at": _moment(due),
        "expires_at": _moment(expires),
        "next_attempt_at": _moment(due),
        "attempts": sa.literal(0, sa.Integer),
        "created_at": _moment(now),
        "updated_at": _moment(now),
    }
    # A WHERE of its own: SQLite's parser needs one before ON CONFLICT in INSERT ... SELECT.
    return sa.select(*(values[name].label(name) for name in _VALUE_NAMES)).where(
        decided.c.customer_id.is_not(None)
    )
