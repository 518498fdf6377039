"""The read position of each event table: 64-bit event ids through the whole pipeline, and
`notifier position show / set` to see it and move it on purpose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner, Result

from notifier.cli import app
from notifier.config.settings import Settings
from notifier.db.schema import OrderEvent, ProductEvent
from tests.journey import notifications, parse, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

BIG = 3_000_000_000  # above 2,147,483,647, where a 32-bit id ends
ORDER_EVENTS: sa.Table = OrderEvent.__table__  # type: ignore[attr-defined]
PRODUCT_EVENTS: sa.Table = ProductEvent.__table__  # type: ignore[attr-defined]


@contextmanager
def at(moment: str) -> Iterator[None]:
    with freeze_time(moment, real_asyncio=True):
        yield


def cli(settings: Settings, *args: str) -> Result:
    base = ["--database-url", settings.database_url.reveal(), "--rules", str(settings.rules)]
    return CliRunner().invoke(app, [*base, *args])


def _placed(shop: Shop, count: int) -> list[int]:
    customer = shop.customer(email="lin@example.com", timezone="UTC")
    orders = [shop.order(customer) for _ in range(count)]
    return [shop.event("order", order, "placed", "2026-02-10 09:00") for order in orders]


def test_an_event_id_above_32_bits_is_read_planned_and_sent(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    customer = shop.customer(email="lin@example.com", timezone="UTC", marketing_opt_in=True)
    product = shop.product()
    order = shop.order(customer, items=[(product, 1)])
    with engine.begin() as conn:
        conn.execute(
            ORDER_EVENTS.insert().values(
                id=BIG, order_id=order, type="placed", occurred_at=ts("2026-02-10 09:00")
            )
        )
        price = {
            "old_price": "59.00",
            "new_price": "69.00",
            "currency": "USD",
            "effective_at": "2026-04-01T00:00:00Z",
        }
        conn.execute(
            PRODUCT_EVENTS.insert().values(
                id=BIG + 5,
                product_id=product,
                type="price_change",
                occurred_at=ts("2026-02-10 09:00"),
                data=price,
            )
        )
    with at("2026-02-10 09:01"):
        code, result = run(settings)
    assert code == 0 and result.sent == 1
    [received] = smtp_server.messages
    assert str(order) in parse(received)["Subject"]
    [sent] = notifications(engine, rule="order-confirmation")
    assert sent["event_id"] == BIG and sent["state"] == "sent"
    [warning] = notifications(engine, rule="price-rise-warning")  # fanned out in one INSERT ... SELECT
    assert warning["event_id"] == BIG + 5 and warning["state"] == "queued"
    shown = json.loads(cli(settings, "position", "show", "--json").stdout)
    assert {p["source"]: p["position"] for p in shown} == {"order": BIG, "product": BIG + 5, "case": 0}


def test_position_show_counts_what_is_unread(settings: Settings, shop: Shop) -> None:
    first = _placed(shop, 2)
    with at("2026-02-10 09:01"):
        run(settings)
    _placed(shop, 3)
    result = cli(settings, "position", "show")
    assert result.exit_code == 0, result.output
    lines = {line.split(":", 1)[0]: line for line in result.stdout.splitlines()}
    assert f"read up to id {first[-1]}" in lines["order"]
    assert f"order_events highest id {first[-1] + 3}; 3 unread, 0 gap(s)" in lines["order"]
    assert "read up to id 0 (last looked 2026-02-10 09:01 UTC)" in lines["case"]
    assert "case_events empty" in lines["case"]
    [order] = [
        p for p in json.loads(cli(settings, "position", "show", "--json").stdout) if p["source"] == "order"
    ]
    assert (order["position"], order["highest"], order["unread"], order["present"]) == (
        first[-1],
        first[-1] + 3,
        3,
        True,
    )


def test_moving_forward_skips_events_and_the_dry_run_changes_nothing(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    ids = _placed(shop, 4)
    dry = cli(settings, "position", "set", "order", str(ids[2]), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would move the order read position from 0 to {ids[2]}" in dry.stdout
    assert f"3 event(s) in order_events with ids 1-{ids[2]} would be skipped" in dry.stdout
    assert "dry run: nothing changed" in dry.stdout
    assert json.loads(cli(settings, "position", "show", "--json").stdout)[0]["position"] == 0

    done = cli(settings, "position", "set", "order_events", str(ids[2]))
    assert done.exit_code == 0 and "are skipped: never evaluated" in done.stdout
    with at("2026-02-10 09:01"):
        code, result = run(settings)
    assert code == 0 and result.events == 1 and len(smtp_server.messages) == 1
    assert [row["event_id"] for row in notifications(engine, rule="order-confirmation")] == [ids[3]]


def test_moving_back_reads_again_and_sends_no_repeats(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    ids = _placed(shop, 3)
    # And a price rise fanned out to an audience (one INSERT ... SELECT, keyed per customer).
    buyer = shop.customer(email="buyer@example.com", timezone="UTC", marketing_opt_in=True)
    product = shop.product()
    shop.order(buyer, items=[(product, 1)])
    rise = {
        "old_price": "59.00",
        "new_price": "69.00",
        "currency": "USD",
        "effective_at": "2026-04-01T00:00:00Z",
    }
    shop.event("product", product, "price_change", "2026-02-10 09:00", rise)
    with at("2026-02-10 09:01"):
        run(settings)
    before = notifications(engine)
    assert len(smtp_server.messages) == 3
    assert [row["recipient"] for row in notifications(engine, rule="price-rise-warning")] == [
        "buyer@example.com"
    ]

    dry = cli(settings, "position", "set", "order", "0", "--dry-run")
    assert f"3 event(s) in order_events with ids 1-{ids[-1]} would be read again" in dry.stdout
    assert dry.stdout.count("warning:") == 1
    assert "send no repeat (the outbox keeps one notification per rule and event)" in dry.stdout
    assert cli(settings, "position", "set", "order", "0").exit_code == 0
    assert cli(settings, "position", "set", "product", "0").exit_code == 0
    with at("2026-02-10 09:02"):
        code, result = run(settings)
    assert code == 0 and result.events == 4 and result.sent == 0
    assert len(smtp_server.messages) == 3  # the outbox's unique key per rule and event
    assert [dict(row) for row in notifications(engine)] == [dict(row) for row in before]


def test_a_position_above_every_id_is_called_out(settings: Settings, shop: Shop) -> None:
    # After switching from views to trigger tables: the old position is above every new id.
    _placed(shop, 2)
    assert cli(settings, "position", "set", "order", "500").exit_code == 0
    line = next(x for x in cli(settings, "position", "show").stdout.splitlines() if x.startswith("order"))
    assert "ABOVE every id present" in line


def test_a_wrong_source_or_id_is_a_plain_refusal(settings: Settings) -> None:
    wrong = cli(settings, "position", "set", "orders", "5")
    assert wrong.exit_code == 2 and "there is no event source 'orders'" in wrong.output
    assert "Traceback" not in wrong.output
    negative = cli(settings, "position", "set", "case", "--", "-1")
    assert negative.exit_code == 2 and "0 or more" in negative.output


def _history(settings: Settings, order: int) -> dict[str, dict[str, str]]:
    result = cli(settings, "history", "--order", str(order), "--json")
    assert result.exit_code == 0, result.output
    return {entry["rule"]: entry for entry in json.loads(result.stdout)}


def test_history_tells_never_read_from_skipped_from_not_in_force(settings: Settings, shop: Shop) -> None:
    customer = shop.customer(email="lin@example.com", timezone="UTC")
    skipped, read = shop.order(customer), shop.order(customer)
    first = shop.event("order", skipped, "placed", "2026-02-10 09:00")
    above = _history(settings, skipped)["order-confirmation"]
    assert above["outcome"] == "not_read_yet"
    assert (
        f"order.placed #{first} was never read: it is above the order read position (0)"
        in above["explanation"]
    )

    assert cli(settings, "position", "set", "order", str(first)).exit_code == 0
    shop.event("order", read, "placed", "2026-02-10 09:00")
    with at("2026-02-10 09:01"):
        run(settings)
    below = _history(settings, skipped)["order-confirmation"]
    assert below["outcome"] == "not_evaluated", below
    assert "not evaluated" in below["explanation"] and "notifier position set" in below["explanation"]
    assert "not in force" not in below["explanation"]
    assert _history(settings, read)["order-confirmation"]["state"] == "sent"
