"""Poison input: rows the order system should not have written never stop the pipeline.

Each bad event or customer is skipped with a reason and a plain-words detail that
`notifier history` shows, while the good orders in the same batch are sent.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.settings import Settings
from notifier.db.subjects import CUSTOMERS
from tests.journey import notifications, parse, run
from tests.shop import Shop
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
    result = CliRunner().invoke(
        app, ["--database-url", settings.database_url.reveal(), "history", "--order", str(order)]
    )
    assert result.exit_code == 0, result.output
    return result.output


@freeze_time("2026-02-10 09:01", real_asyncio=True)
def test_poison_rows_are_skipped_with_a_reason_and_good_orders_still_go(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    postgres = engine.dialect.name == "postgresql"
    good = _order(shop, email="good@example.com")
    shop.event("order", good, "placed", AT)

    bad_json = _order(shop, email="json@example.com")
    # jsonb refuses text that is not JSON; there the worst is JSON that is not an object.
    shop.event("order", bad_json, "placed", AT, raw_data='["not", "an object"]' if postgres else "{not json")

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
        bad_json: ("order-confirmation", "bad_event", "not an object" if postgres else "not valid JSON"),
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
