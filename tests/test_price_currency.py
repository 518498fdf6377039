"""Money the customer recognises: a price change names its currency (one event per currency the
shop sells in), goes to those who bought the product in that currency, and quotes it in it.
End to end: `run --once`, a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.settings import Settings
from tests.journey import body, notifications, parse, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

EVENT_AT = "2026-02-10 09:00"
EFFECTIVE = "2026-03-01 00:00:00"
# Per currency: the rise, and how each customer's locale writes the two prices.
RISES = {
    "GBP": ("45.00", "52.00", ("£45.00", "£52.00")),
    "CNY": ("398.00", "458.00", ("¥398.00", "¥458.00")),
    "TWD": ("1680", "1880", ("NT$1,680", "NT$1,880")),
}
PEOPLE = {  # currency -> (locale, timezone, email)
    "GBP": ("en", "Europe/London", "emma@example.co.uk"),
    "CNY": ("zh-CN", "Asia/Shanghai", "wang.fang@example.cn"),
    "TWD": ("zh-TW", "Asia/Taipei", "lin.meiling@example.tw"),
}


def _shop(shop: Shop) -> tuple[int, dict[str, int]]:
    """Roses, bought by three opted-in customers, each in their own currency; one price-change
    event per currency."""
    roses = shop.product(name="Twelve red roses", price="45.00", currency="GBP")
    buyers = {}
    for currency, (locale, zone, email) in PEOPLE.items():
        buyers[currency] = shop.customer(email=email, locale=locale, timezone=zone, marketing_opt_in=True)
        shop.order(buyers[currency], items=[(roses, 1)], currency=currency)
    for currency, (old, new, _) in RISES.items():
        data = {"old_price": old, "new_price": new, "currency": currency, "effective_at": EFFECTIVE}
        shop.event("product", roses, "price_change", EVENT_AT, data)
    return roses, buyers


def test_each_customer_hears_of_the_rise_once_in_the_currency_they_paid(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    _, buyers = _shop(shop)
    with freeze_time("2026-02-10 10:00", real_asyncio=True):  # daytime in London, Shanghai, Taipei
        code, result = run(settings)
    assert code == 0
    got: dict[str, list[str]] = {}
    for message in smtp_server.messages:
        mail = parse(message)
        got.setdefault(str(mail["To"]), []).append(body(mail))
    assert result.sent == 3 and len(smtp_server.messages) == 3, {to: len(b) for to, b in got.items()}
    for currency, (_, _, email) in PEOPLE.items():
        [text] = next(texts for to, texts in got.items() if email in to)
        old, new = RISES[currency][2]
        assert old in text and new in text, (currency, text)
        foreign = [p for other, rise in RISES.items() if other != currency for p in rise[2] if p in text]
        assert foreign == [] and "US$" not in text, (currency, foreign, text)
    rows = notifications(engine, rule="price-rise-warning")
    assert len(rows) == 3, "a customer who paid in another currency is not in that event's audience"
    assert {(r["customer_id"], r["state"]) for r in rows} == {(c, "sent") for c in buyers.values()}


def test_a_price_change_without_a_currency_still_reaches_every_buyer(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    """An order system that does not name the currency keeps today's audience: every buyer."""
    roses = shop.product(name="Twelve red roses", price="45.00", currency="GBP")
    for currency, (locale, zone, email) in PEOPLE.items():
        buyer = shop.customer(email=email, locale=locale, timezone=zone, marketing_opt_in=True)
        shop.order(buyer, items=[(roses, 1)], currency=currency)
    rise = {"old_price": "45.00", "new_price": "52.00", "effective_at": EFFECTIVE}
    shop.event("product", roses, "price_change", EVENT_AT, rise)
    with freeze_time("2026-02-10 10:00", real_asyncio=True):
        code, _ = run(settings)
    assert code == 0
    assert len(notifications(engine, rule="price-rise-warning", state="sent")) == 3
