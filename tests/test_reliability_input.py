"""Poison input: rows the order system should not have written never stop the pipeline.

Each bad event or customer is skipped with a reason and a plain-words detail that
`notifier history` shows, while the good orders in the same batch are sent.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.live import load_checked
from notifier.config.settings import Settings
from notifier.db.events import read_ids
from notifier.db.subjects import CUSTOMERS
from notifier.run.intake import intake
from tests.journey import notifications, parse, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

AT = "2026-02-10 09:00"


def _order(shop: Shop, **customer: Any) -> int:
    product = shop.product()
    return shop.order(shop.customer(**{"timezone": "UTC", **customer}), items=[(product, 1)])


def _set_email(engine: sa.Engine, order: int, email: str) -> None:
    """Write an address the way a careless order system would, bypassing any checks."""
    with engine.begin() as conn:
        query = sa.text("SELECT customer_id FROM orders WHERE id = :o")
        customer = conn.execute(query, {"o": order}).scalar()
        conn.execute(CUSTOMERS.update().where(CUSTOMERS.c.id == customer).values(email=email))


def _history(settings: Settings, order: int) -> str:
    """`history --order`, its lines (wrapped to the terminal's width) joined again."""
    result = CliRunner().invoke(
        app, ["--database-url", settings.database_url.reveal(), "history", "--order", str(order)]
    )
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@freeze_time("2026-02-10 09:01", real_asyncio=True)
def test_poison_rows_are_skipped_with_a_reason_and_good_orders_still_go(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    checked = engine.dialect.name in ("postgresql", "mysql")  # a JSON type that checks its text
    good = _order(shop, email="good@example.com")
    shop.event("order", good, "placed", AT)

    bad_json = _order(shop, email="json@example.com")
    # jsonb and MariaDB's JSON refuse text that is not JSON; there the worst is JSON not an object.
    shop.event("order", bad_json, "placed", AT, raw_data='["not", "an object"]' if checked else "{not json")

    no_customer = shop.order(424242)
    shop.event("order", no_customer, "placed", AT)

    no_order = 999999
    shop.event("order", no_order, "placed", AT)

    empty = _order(shop, email="placeholder@example.com")
    _set_email(engine, empty, "")
    shop.event("order", empty, "placed", AT)

    invalid = _order(shop, email="placeholder@example.com")
    _set_email(engine, invalid, "not-an-address")
    shop.event("order", invalid, "placed", AT)

    mars = _order(shop, email="mars@example.com", timezone="Mars/Base")
    shop.event("order", mars, "placed", AT)

    unknown_locale = _order(shop, email="xx@example.com", locale="xx-YY")
    shop.event("order", unknown_locale, "placed", AT)

    bad_eta = _order(shop, email="eta@example.com")
    shop.event("order", bad_eta, "dispatched", AT, {"carrier": "DHL", "tracking_number": "1", "eta": "soon"})

    late = _order(shop, email="late@example.com")
    shop.event("order", late, "placed", "2026-02-10 09:00:30")

    code, result = run(settings)
    assert code == 0
    sent = {m.rcpt_tos[0]: parse(m) for m in smtp_server.messages}
    assert set(sent) == {"good@example.com", "xx@example.com", "late@example.com"}
    assert result.sent == 3
    # An unknown locale falls back to English and is sent.
    assert re.search(rf"Order {unknown_locale}\b", sent["xx@example.com"]["Subject"])

    expected = {
        bad_json: ("order-confirmation", "bad_event", "not an object" if checked else "not valid JSON"),
        no_customer: ("order-confirmation", "no_recipient", "customer 424242 does not exist"),
        no_order: ("order-confirmation", "no_recipient", "order 999999 does not exist"),
        empty: ("order-confirmation", "invalid_address", "the address is empty"),
        invalid: ("order-confirmation", "invalid_address", "'not-an-address' has no @"),
        mars: ("order-confirmation", "no_recipient", "'Mars/Base', which is not an IANA timezone"),
        bad_eta: ("order-dispatched", "bad_event", "data key 'eta'"),
    }
    for order, (rule, reason, detail) in expected.items():
        [row] = notifications(engine, rule=rule, subject_id=order)
        assert row["state"] == "skipped" and row["reason"] == reason, (order, row)
        assert detail in row["detail"], (order, row["detail"])
        shown = _history(settings, order)
        assert rule in shown and f"skipped ({reason})" in shown, shown
        assert detail in shown, shown
    assert notifications(engine, state="failed") == []
    assert notifications(engine, state="sending") == []

    # Nothing about the poison rows is tried again on the next run.
    code, result = run(settings)
    assert code == 0 and result.sent == 0 and result.failed == 0 and len(smtp_server.messages) == 3


def _poke(engine: sa.Engine, table: str, row_id: int, column: str, value: Any) -> None:
    """Write a value the way a careless order system (or SQLite's loose typing) would."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE id = :i"), {"v": value, "i": row_id})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL's types refuse these
def test_rows_holding_values_notifier_cannot_use_are_bad_rows_and_the_batch_goes_on(
    shop: Shop, engine: sa.Engine, project: Path
) -> None:
    """SQLite keeps whatever is written; each bad value is its own Subject's problem (bad_row)."""
    cases = {
        ("customers", "name"): (b"\xff\xfe not utf-8", "holds bytes that are not UTF-8 text"),
        ("orders", "customer_id"): ("someone", "holds the text 'someone' where a whole number belongs"),
        ("orders", "total"): ("a lot", "orders.total of order"),
        ("orders", "placed_at"): ("yesterday-ish", "not a timestamp"),
        ("orders", "ship_to_name"): ("x" * 20_000, "20000 characters long"),
        ("orders", "promised_date"): ("someday", "not a date"),
        ("customers", "marketing_opt_in"): ("perhaps", "where true or false belongs"),
        ("order_items", "quantity"): (1e30, "where a whole number belongs"),
    }
    product = shop.product()
    bad: dict[int, str] = {}
    for (table, column), (value, words) in cases.items():
        customer = shop.customer(email=f"{table}.{column}@example.com")
        order = shop.order(customer, items=[(product, 1)])
        target = {"customers": customer, "orders": order}.get(table)
        if target is None:
            with engine.connect() as conn:
                target = conn.execute(
                    sa.text("SELECT id FROM order_items WHERE order_id = :o"), {"o": order}
                ).scalar()
        _poke(engine, table, target, column, value)
        shop.event("order", order, "placed", AT)
        bad[order] = words
    good = shop.order(shop.customer(email="good@example.com"), items=[(product, 1)])
    shop.event("order", good, "placed", AT)
    rules = load_checked(project / "rules.yaml", project / "templates")[0]

    result = intake(engine, rules, clock=lambda: ts(AT), batch_size=100, gap_timeout=timedelta(minutes=10))

    assert result.events == len(cases) + 1
    rows = {row["subject_id"]: row for row in notifications(engine, rule="order-confirmation")}
    assert rows[good]["state"] == "queued" and rows[good]["recipient"] == "good@example.com"
    for order, words in bad.items():
        assert (rows[order]["state"], rows[order]["reason"]) == ("skipped", "bad_row"), rows[order]["detail"]
        assert words in rows[order]["detail"], rows[order]["detail"]
        assert len(rows[order]["detail"]) < 300


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL's types refuse these
def test_an_event_row_of_the_wrong_shape_is_a_bad_event_not_a_stopped_batch(
    shop: Shop, engine: sa.Engine, project: Path
) -> None:
    product = shop.product()
    customer = shop.customer()
    weird = shop.order(customer, items=[(product, 1)])
    odd = shop.event("order", weird, "placed", AT)
    with engine.begin() as conn:  # a text where the order id belongs, a blob where the type belongs
        conn.execute(
            sa.text("UPDATE order_events SET order_id = 'forty-two', type = :t WHERE id = :i"),
            {"t": b"\xff", "i": odd},
        )
    good = shop.order(customer, items=[(product, 1)])
    shop.event("order", good, "placed", AT)
    rules = load_checked(project / "rules.yaml", project / "templates")[0]

    result = intake(engine, rules, clock=lambda: ts(AT), batch_size=100, gap_timeout=timedelta(minutes=10))

    assert result.events == 2
    [row] = notifications(engine, rule="order-confirmation")
    assert row["subject_id"] == good and row["state"] == "queued"
    with engine.connect() as conn:
        [event] = read_ids(conn, "order", [odd])
    assert event.problem and "not UTF-8" in event.problem
