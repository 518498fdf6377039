"""The order number the customer sees, from the optional column `orders.number`.

Many shops show a text number ('100001', 'BL-2026-0042') beside the integer id that keys
the order. A shop whose `orders` table or view has a `number` column gets that value as
`order.number` in every message; the integer `id` stays the key (events, history, facts).
Without the column, or where a row's number is NULL or blank, `order.number` is the id.

`find_order` reads what a person typed (`history --order`, `preview --order`) as an id or,
failing that, as a number.

Whether `orders` has the column is asked of the database once per engine (once per
`run --once`, once per daemon start), as for `product_translations`.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import sqlalchemy as sa

from notifier.db.schema import Order

ORDERS: sa.Table = Order.__table__  # type: ignore[attr-defined]
COLUMN = "number"
# `orders` as notifier reads it when the shop has the column: SPEC §2's columns and the number.
NUMBERED: sa.TableClause = sa.table(ORDERS.name, *(sa.column(c.name) for c in ORDERS.c), sa.column(COLUMN))
_present: weakref.WeakKeyDictionary[sa.Engine, bool] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def has_number(conn: sa.Connection) -> bool:
    """Whether this database's `orders` has a `number` column (a column the shop adds while
    the daemon runs is seen after a restart)."""
    with _lock:
        known = _present.get(conn.engine)
    if known is None:
        inspector = sa.inspect(conn)
        known = inspector.has_table(ORDERS.name) or ORDERS.name in inspector.get_view_names()
        known = known and COLUMN in {c["name"].lower() for c in inspector.get_columns(ORDERS.name)}
        with _lock:
            _present[conn.engine] = known
    return known


def orders_table(conn: sa.Connection) -> sa.TableClause:
    """The `orders` relation to read: with `number` where the shop has it."""
    return NUMBERED if has_number(conn) else ORDERS


@dataclass(frozen=True)
class FoundOrder:
    """The order `history --order` and `preview --order` were given: `id` (None when the value
    names no order), and `note`, the line that says a number was read as an id, or why not."""

    id: int | None
    note: str | None = None


def find_order(conn: sa.Connection, given: str) -> FoundOrder:
    """The order a person typed: its id, or - when the value is no order's id but exactly one
    order's `number` - that order (customer service reads the number off the customer's email).
    An id wins when both match; an integer that matches nothing is still taken as an id (an
    order's notifications outlive the order)."""
    text = given.strip()
    as_id = int(text) if text.lstrip("-").isdigit() else None
    if as_id is not None and conn.execute(sa.select(ORDERS.c.id).where(ORDERS.c.id == as_id)).first():
        return FoundOrder(as_id)
    matches = _numbered(conn, text) if text and has_number(conn) else []
    if len(matches) == 1:
        return FoundOrder(matches[0], f"order number {text} is order id {matches[0]}")
    if len(matches) > 1:
        ids = ", ".join(str(i) for i in matches)
        return FoundOrder(None, f"order number {text} is on more than one order (ids {ids}): give the id")
    if as_id is not None:
        return FoundOrder(as_id)
    return FoundOrder(None, f"no order has the id or number {given!r}")


def _numbered(conn: sa.Connection, number: str) -> list[int]:
    # Compared as text: a shop's number column may be an integer, and the person typed text.
    column = sa.cast(NUMBERED.c[COLUMN], sa.String)
    query = sa.select(NUMBERED.c.id).where(column == number).order_by(NUMBERED.c.id).limit(5)
    return [int(i) for i in conn.execute(query).scalars()]
