"""The order number the customer sees, from the optional column `orders.number`.

Many shops show a text number ('100001', 'BL-2026-0042') beside the integer id that keys
the order. A shop whose `orders` table or view has a `number` column gets that value as
`order.number` in every message; the integer `id` stays the key (events, history, facts).
Without the column, or where a row's number is NULL or blank, `order.number` is the id.

Whether `orders` has the column is asked of the database once per engine (once per
`run --once`, once per daemon start), as for `product_translations`.
"""

from __future__ import annotations

import threading
import weakref

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
