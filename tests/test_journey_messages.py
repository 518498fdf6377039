"""The rest of the order journey (SPEC §3): cancelled, refunded, out for delivery and delivery
failed, in every shipped locale, through `run --once` and a real SMTP server. Each message
states what SPEC §3 requires of it, in the customer's language, time and currency."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.settings import Settings
from tests.journey import body, notifications, parse, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

# Per locale: the customer, and the words each message must carry.
PEOPLE: dict[str, dict[str, Any]] = {
    "en": {"name": "Emma Lin", "timezone": "Europe/London", "currency": "GBP"},
    "zh-CN": {"name": "王芳", "timezone": "Asia/Shanghai", "currency": "CNY"},
    "zh-TW": {"name": "林美玲", "timezone": "Asia/Taipei", "currency": "TWD"},
}


def _order(shop: Shop, locale: str) -> int:
    person = PEOPLE[locale]
    customer = shop.customer(
        name=person["name"], email=f"{locale.lower()}@example.com", locale=locale, timezone=person["timezone"]
    )
    roses = shop.product(name="Twelve red roses", price="59.00")
    return shop.order(
        customer,
        items=[(roses, 2)],
        currency=person["currency"],
        ship_to_name="Ms Lin",
        ship_to_address="12 Rosebery Avenue, London",
        promised_date=date(2026, 2, 12),
    )


def _one_message(settings: Settings, smtp_server: FaultySmtpServer) -> tuple[str, str, str]:
    code, result = run(settings)
    assert code == 0 and result.sent == 1, result
    [received] = smtp_server.messages
    message = parse(received)
    return str(message["Subject"]), body(message), body(message, "html")


# What each message must state (SPEC §3), per locale; "{order}" is the order number.
CANCELLED = {
    "en": ["Order {order} has been cancelled", "The florist ran out of red roses", "£118.00", "refunding"],
    "zh-CN": ["订单 {order} 已取消", "The florist ran out of red roses", "¥118.00", "退款金额"],
    "zh-TW": ["訂單 {order} 已取消", "The florist ran out of red roses", "$118", "退款金額"],
}


@pytest.mark.parametrize("locale", list(PEOPLE))
@freeze_time("2026-02-10 12:01", real_asyncio=True)
def test_a_cancellation_gives_the_reason_and_the_refund(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer, locale: str
) -> None:
    order = _order(shop, locale)
    currency = PEOPLE[locale]["currency"]
    data = {"reason": "The florist ran out of red roses", "refund_amount": "118.00", "currency": currency}
    shop.event("order", order, "cancelled", "2026-02-10 12:00", data=data)
    subject, text, html = _one_message(settings, smtp_server)
    assert str(order) in subject
    for needle in CANCELLED[locale]:
        needle = needle.format(order=order)
        assert needle in subject + text, needle
        assert needle in subject + html, needle


@freeze_time("2026-02-10 12:01", real_asyncio=True)
def test_a_cancellation_without_a_refund_says_nothing_more_is_charged(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    order = _order(shop, "en")
    shop.event("order", order, "cancelled", "2026-02-10 12:00")
    subject, text, _ = _one_message(settings, smtp_server)
    assert str(order) in subject
    assert "nothing more will be charged" in text and "Refund:" not in text and "Reason:" not in text


REFUNDED = {"en": "£59.00", "zh-CN": "¥59.00", "zh-TW": "$59"}


@pytest.mark.parametrize("locale", list(PEOPLE))
@freeze_time("2026-02-14 10:01", real_asyncio=True)
def test_a_refund_names_the_amount_in_the_orders_currency(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer, locale: str
) -> None:
    order = _order(shop, locale)
    # No currency in the event: the order's own currency is the one the customer paid in.
    shop.event("order", order, "refunded", "2026-02-14 10:00", data={"amount": "59.00"})
    subject, text, html = _one_message(settings, smtp_server)
    assert str(order) in subject
    assert REFUNDED[locale] in text and REFUNDED[locale] in html
    assert "US$" not in text


DASH = "\u2013"  # the en dash of a time range
WINDOW = {"en": ("09:00", "12:00"), "zh-CN": ("17:00", "20:00"), "zh-TW": ("17:00", "20:00")}


@pytest.mark.parametrize("locale", list(PEOPLE))
@freeze_time("2026-02-12 07:46", real_asyncio=True)
def test_out_for_delivery_gives_the_window_in_the_customers_time(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer, locale: str
) -> None:
    order = _order(shop, locale)
    window = {"window_start": "2026-02-12 09:00:00", "window_end": "2026-02-12 12:00:00", "carrier": "DPD"}
    shop.event("order", order, "out_for_delivery", "2026-02-12 07:45", data=window)
    subject, text, html = _one_message(settings, smtp_server)
    start, end = WINDOW[locale]  # London is UTC in February; Shanghai and Taipei are UTC+8
    assert str(order) in subject and f"{start}{DASH}{end}" in subject
    assert f"{start}{DASH}{end}" in text and "DPD" in text and f"{start}{DASH}{end}" in html


@freeze_time("2026-02-12 11:30", real_asyncio=True)
def test_out_for_delivery_is_not_sent_once_the_order_is_delivered(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    """After downtime both events wait: "arriving today" must not follow "delivered"."""
    order = _order(shop, "en")
    shop.event("order", order, "out_for_delivery", "2026-02-12 07:45", data={"carrier": "DPD"})
    shop.event("order", order, "delivered", "2026-02-12 11:02", data={"signed_by": "A. Morgan"})
    code, _ = run(settings)
    assert code == 0
    subjects = [str(parse(m)["Subject"]) for m in smtp_server.messages]
    assert len(subjects) == 1 and subjects[0].startswith(f"Order {order} delivered"), subjects
    [out] = notifications(engine, rule="out-for-delivery")
    assert out["state"] == "skipped" and out["reason"] == "superseded"


FAILED_NEXT = {"en": "Friday 13 February, 09:00", "zh-CN": "2月13日 17:00", "zh-TW": "2月13日 下午5:00"}


@pytest.mark.parametrize("locale", list(PEOPLE))
@freeze_time("2026-02-12 11:03", real_asyncio=True)
def test_a_failed_delivery_gives_the_carriers_words_and_the_next_attempt(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer, locale: str
) -> None:
    order = _order(shop, locale)
    data = {"reason": "No one home, card left", "next_attempt_at": "2026-02-13 09:00:00"}
    shop.event("order", order, "delivery_failed", "2026-02-12 11:02", data=data)
    subject, text, html = _one_message(settings, smtp_server)
    assert str(order) in subject
    assert "No one home, card left" in text and "No one home, card left" in html
    assert FAILED_NEXT[locale] in text, text


@freeze_time("2026-02-12 11:03", real_asyncio=True)
def test_a_failed_delivery_with_no_next_attempt_says_what_to_do(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    order = _order(shop, "en")
    shop.event("order", order, "delivery_failed", "2026-02-12 11:02")
    _, text, _ = _one_message(settings, smtp_server)
    assert "Reply to this email with a time that suits Ms Lin" in text
    assert "Next attempt" not in text
