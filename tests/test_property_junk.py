"""Whatever junk lands in the order system's columns, every good row's mail still goes.

Hypothesis writes random values (bytes, huge values, wrong types, NULLs, bad JSON, bad
timestamps) into one integration column of one shop's rows at a time, beside good rows, in a
real SQLite shop; `run --once` sends to the real SMTP test server. Nothing may raise, and the
good customer's confirmation must arrive. (SQLite only: PostgreSQL's types refuse such values
at the door.)
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from notifier.config.settings import Settings
from notifier.db.engine import make_engine
from tests.journey import run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

COLUMNS = {
    "customers": ["email", "name", "locale", "timezone", "marketing_opt_in"],
    "orders": [
        "customer_id",
        "placed_at",
        "status",
        "total",
        "currency",
        "ship_to_name",
        "ship_to_address",
        "promised_date",
    ],
    "order_items": ["order_id", "product_id", "quantity", "unit_price"],
    "products": ["sku", "name", "tags", "price", "currency"],
    "cases": ["customer_id", "order_id", "subject", "status", "priority", "opened_at"],
    "order_events": ["order_id", "type", "occurred_at", "data"],
    "case_events": ["case_id", "type", "occurred_at", "data"],
    "product_events": ["product_id", "type", "occurred_at", "data"],
}
TARGETS = [(table, column) for table, columns in COLUMNS.items() for column in columns]
JUNK = st.one_of(
    st.none(),
    st.binary(max_size=20),
    st.just(b"\xff\xfe\x00"),
    st.text(max_size=20),
    st.just("x" * 20_000),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["{not json", "[1, 2]", "null", '{"eta": "soon"}', "2026-13-45 99:99", "yesterday", ""]),
)
_counter = itertools.count()
TABLES = (
    "notifier_attempts",
    "notifier_notifications",
    "notifier_cursors",
    "notifier_gaps",
    "notifier_state",
    "notifier_feedback",
    "order_events",
    "case_events",
    "product_events",
    "order_items",
    "cases",
    "orders",
    "products",
    "customers",
)


def _now() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")


def _poke(engine: sa.Engine, table: str, row_id: int, column: str, value: Any) -> bool:
    """Write junk as a careless order system would; False when even SQLite refuses it."""
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE {table} SET {column} = :v WHERE id = :i"), {"v": value, "i": row_id}
            )
    except sa.exc.SQLAlchemyError:
        return False
    return True


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=st.sampled_from(TARGETS), junk=JUNK)
def test_junk_in_any_column_never_stops_the_good_rows(
    settings: Settings, smtp_server: FaultySmtpServer, project: Path, target: tuple[str, str], junk: Any
) -> None:
    engine = make_engine(settings.database_url.reveal())
    with engine.begin() as conn:
        present = set(sa.inspect(conn).get_table_names())
        for name in TABLES:
            if name in present:
                conn.execute(sa.text(f"DELETE FROM {name}"))
    shop = Shop(engine)
    n = next(_counter)
    at = _now()
    # The victim: a customer with an order, a case and a product event, one column of which is junk.
    roses = shop.product()
    victim = shop.customer(email=f"victim{n}@example.com", marketing_opt_in=True)
    order = shop.order(victim, items=[(roses, 1)], placed_at=at)
    case = shop.case(victim, order_id=order, opened_at=at)
    events = {
        "order_events": shop.event("order", order, "placed", at),
        "case_events": shop.event("case", case, "opened", at),
        "product_events": shop.event(
            "product", roses, "price_change", at, {"old_price": "1", "new_price": "2"}
        ),
    }
    # The good row: its own customer, product and order, written after the victim.
    good_email = f"good{n}@example.com"
    good_order = shop.order(shop.customer(email=good_email), items=[(shop.product(), 1)], placed_at=at)
    shop.event("order", good_order, "placed", at)
    table, column = target
    with engine.connect() as conn:
        item = conn.execute(sa.text("SELECT id FROM order_items WHERE order_id = :o"), {"o": order}).scalar()
    row_id = {
        "customers": victim,
        "orders": order,
        "order_items": item,
        "products": roses,
        "cases": case,
    }.get(table) or events[table]
    _poke(engine, table, row_id, column, junk)
    engine.dispose()
    before = len([m for m in smtp_server.messages if good_email in m.rcpt_tos])

    code, _ = run(settings)

    got = [m for m in smtp_server.messages if good_email in m.rcpt_tos]
    assert len(got) - before == 1, f"{table}.{column} = {junk!r}: the good order's confirmation did not go"
    assert code in (0, 1), code
