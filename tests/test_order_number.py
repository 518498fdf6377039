"""The order number the customer sees: `orders.number` where the shop's table or view has it,
the integer id where it has not (or where a row's number is empty); the id stays the key."""

from __future__ import annotations

import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner, Result

from notifier.cli import app
from notifier.config.settings import Settings
from tests.journey import body, notifications, parse, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer


def _sql(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def _numbered_view(engine: sa.Engine, numbers: dict[int, str | None]) -> None:
    """`orders` becomes a view over the shop's own table, which carries a text number."""
    _sql(
        engine,
        "ALTER TABLE orders RENAME TO shop_orders",
        "ALTER TABLE shop_orders ADD COLUMN number VARCHAR(20)",
        "CREATE VIEW orders AS SELECT * FROM shop_orders",
    )
    with engine.begin() as conn:
        update = sa.text("UPDATE shop_orders SET number = :n WHERE id = :i")
        for order_id, number in numbers.items():
            conn.execute(update, {"n": number, "i": order_id})


def _placed(shop: Shop, count: int) -> list[int]:
    customer = shop.customer(email="emma@example.com", timezone="Europe/London")
    roses = shop.product(name="Twelve red roses", price="59.00")
    orders = [shop.order(customer, items=[(roses, 1)]) for _ in range(count)]
    for order in orders:
        shop.event("order", order, "placed", "2026-02-10 09:00")
    return orders


def _confirmations(settings: Settings, smtp_server: FaultySmtpServer) -> dict[str, str]:
    """Subject -> plain text of every confirmation sent by one `run --once`."""
    with freeze_time("2026-02-10 09:01", real_asyncio=True):
        code, _ = run(settings)
    assert code == 0
    messages = [parse(received) for received in smtp_server.messages]
    return {str(m["Subject"]): body(m) for m in messages if "confirmed" in str(m["Subject"])}


def test_a_view_with_a_number_shows_it_and_keeps_the_id_as_the_key(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    first, second = _placed(shop, 2)
    _numbered_view(engine, {first: "BL-100001", second: None})
    sent = _confirmations(settings, smtp_server)
    assert set(sent) == {"Order BL-100001 confirmed", f"Order {second} confirmed"}
    assert "We have your order BL-100001" in sent["Order BL-100001 confirmed"]
    assert "BL-100001" not in sent[f"Order {second} confirmed"]  # no number: the id, as before
    threads = {row["thread"] for row in notifications(engine, rule="order-confirmation")}
    assert threads == {f"order:{first}", f"order:{second}"}


def test_without_a_number_column_the_id_is_the_number(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    [order] = _placed(shop, 1)
    assert set(_confirmations(settings, smtp_server)) == {f"Order {order} confirmed"}


def _check(settings: Settings) -> Result:
    args = ["--database-url", settings.database_url.reveal(), "--rules", str(settings.rules)]
    args += ["--templates", str(settings.templates), "check"]
    return CliRunner().invoke(app, args, env={"NOTIFIER_SECRET_KEY": "k" * 32})


def test_check_accepts_a_text_number_and_names_one_of_another_type(
    settings: Settings, shop: Shop, engine: sa.Engine
) -> None:
    _placed(shop, 1)
    _numbered_view(engine, {})
    result = _check(settings)
    assert result.exit_code == 0, result.output
    assert "number" not in result.output
    _sql(
        engine,
        "DROP VIEW orders",
        "CREATE TABLE order_numbers (order_id INTEGER PRIMARY KEY, number INTEGER)",
        "CREATE VIEW orders AS SELECT o.id, o.customer_id, o.placed_at, o.status, o.total, o.currency, "
        "o.ship_to_name, o.ship_to_address, o.promised_date, n.number "
        "FROM shop_orders o LEFT JOIN order_numbers n ON n.order_id = o.id",
    )
    result = _check(settings)
    assert result.exit_code == 1, result.output
    assert "orders: column number is INTEGER; notifier shows it as the order number and needs text" in (
        result.output
    )
    assert "Traceback" not in result.output


def _cli(settings: Settings, *command: str) -> Result:
    args = ["--database-url", settings.database_url.reveal(), "--rules", str(settings.rules)]
    args += ["--templates", str(settings.templates), *command]
    return CliRunner().invoke(app, args, env={"NOTIFIER_SECRET_KEY": "k" * 32})


def test_history_and_preview_take_the_order_number_customer_service_types(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    first, second = _placed(shop, 2)
    # The second order's number is the first's id: an id wins when both match.
    _numbered_view(engine, {first: "100001", second: str(first)})
    _confirmations(settings, smtp_server)
    history = _cli(settings, "history", "--order", "100001")
    assert history.exit_code == 0, history.output
    assert f"order number 100001 is order id {first}" in history.output
    assert "Order 100001 confirmed" in history.output
    preview = _cli(settings, "preview", "order_confirmation", "--order", "100001")
    assert preview.exit_code == 0, preview.output
    assert f"order number 100001 is order id {first}" in preview.output
    assert "Subject: Order 100001 confirmed" in preview.output
    by_id = _cli(settings, "preview", "order_confirmation", "--order", str(first))
    assert "Subject: Order 100001 confirmed" in by_id.output
    assert "order number" not in by_id.output
    unknown = _cli(settings, "history", "--order", "BL-9")
    assert unknown.exit_code == 1
    assert "no order has the id or number 'BL-9'" in unknown.output
    assert "Traceback" not in unknown.output


def test_a_number_on_two_orders_is_refused_with_their_ids(
    settings: Settings, shop: Shop, engine: sa.Engine
) -> None:
    first, second = _placed(shop, 2)
    _numbered_view(engine, {first: "BL-7", second: "BL-7"})
    result = _cli(settings, "history", "--order", "BL-7")
    assert result.exit_code == 1
    refused = f"order number BL-7 is on more than one order (ids {first}, {second}): give the id"
    assert refused in result.output
