"""The order journey end to end: event rows in a database made by init-db, `run --once`,
a real SMTP server, and the messages parsed back."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.settings import Settings
from tests.journey import body, notifications, parse, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer


def _order(shop: Shop, **customer: object) -> int:
    cid = shop.customer(**customer)  # type: ignore[arg-type]
    roses = shop.product(name="Twelve red roses", price="59.00")
    vase = shop.product(name="Glass vase", price="19.50")
    return shop.order(
        cid,
        items=[(roses, 2), (vase, 1)],
        ship_to_name="Ms Lin",
        ship_to_address="12 Rosebery Avenue, London",
        promised_date=date(2026, 2, 12),
    )


@freeze_time("2026-02-10 09:01", real_asyncio=True)
def test_confirmation_states_what_the_spec_lists(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    order = _order(shop, name="Emma Lin", email="emma@example.com", locale="en", timezone="Europe/London")
    shop.event("order", order, "placed", "2026-02-10 09:00")
    code, result = run(settings)
    assert code == 0 and result.sent == 1
    [received] = smtp_server.messages
    assert received.rcpt_tos == ("emma@example.com",)
    message = parse(received)
    assert str(order) in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"
    assert message["From"] == "Blossom & Co <care@blossom.example>"
    assert message["To"].addresses[0].addr_spec == "emma@example.com"
    assert message["Message-ID"] and message["Date"]
    text = body(message)
    for needle in (
        str(order),
        "Twelve red roses",
        "Glass vase",
        "$137.50",
        "12 Rosebery Avenue",
        "12 February 2026",
    ):
        assert needle in text, needle
    html = body(message, "html")
    assert "Twelve red roses" in html and "style=" in html


@freeze_time("2026-02-10 12:00", real_asyncio=True)
def test_dispatched_and_delivered_in_traditional_chinese(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    order = _order(shop, name="林美玲", email="meiling@example.tw", locale="zh-TW", timezone="Asia/Taipei")
    shop.event(
        "order",
        order,
        "dispatched",
        "2026-02-10 01:00",
        {
            "carrier": "黑貓宅急便",
            "tracking_number": "TC987654",
            "tracking_url": "https://t.example/TC987654",
            "eta": "2026-02-11",
        },
    )
    code, result = run(settings)  # on the truck: told at once
    assert code == 0 and result.sent == 1
    shop.event(
        "order",
        order,
        "delivered",
        "2026-02-10 03:30",
        {"delivered_at": "2026-02-10 03:02:00", "signed_by": "林美玲"},
    )
    code, result = run(settings)
    assert code == 0 and result.sent == 1
    dispatched, delivered = (parse(m) for m in smtp_server.messages)
    assert str(order) in dispatched["Subject"] and str(order) in delivered["Subject"]
    text = body(dispatched)
    assert "黑貓宅急便" in text and "TC987654" in text and "https://t.example/TC987654" in text
    assert "訂單" in text
    delivered_text = body(delivered)
    assert "11:02" in delivered_text, "03:02 UTC is 11:02 in Taipei"
    assert "林美玲" in delivered_text
    assert delivered["To"].addresses[0].display_name == "林美玲"


@freeze_time("2026-02-10 09:05", real_asyncio=True)
def test_simplified_chinese_and_fallback_to_english(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    cn = _order(shop, name="王芳", email="wang@example.cn", locale="zh-CN", timezone="Asia/Shanghai")
    fr = _order(shop, name="Amélie", email="amelie@example.fr", locale="fr", timezone="Europe/Paris")
    shop.event("order", cn, "placed", "2026-02-10 09:00")
    shop.event("order", fr, "placed", "2026-02-10 09:00")
    run(settings)
    by_rcpt = {m.rcpt_tos[0]: parse(m) for m in smtp_server.messages}
    assert "订单" in by_rcpt["wang@example.cn"]["Subject"]
    assert "Order" in by_rcpt["amelie@example.fr"]["Subject"]


@freeze_time("2026-02-10 09:05", real_asyncio=True)
def test_a_rerun_sends_nothing_twice(settings: Settings, shop: Shop, smtp_server: FaultySmtpServer) -> None:
    order = _order(shop)
    shop.event("order", order, "placed", "2026-02-10 09:00")
    run(settings)
    run(settings)
    code, result = run(settings)
    assert code == 0 and result.sent == 0
    assert len(smtp_server.messages) == 1


@freeze_time("2026-02-10 09:05", real_asyncio=True)
def test_a_name_cannot_inject_headers_or_recipients(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    order = _order(shop, name="Lin\r\nBcc: victim@evil.example\r\nX-Evil: 1", email="lin@example.com")
    shop.event("order", order, "placed", "2026-02-10 09:00")
    run(settings)
    [received] = smtp_server.messages
    assert received.rcpt_tos == ("lin@example.com",)
    message = parse(received)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert [a.addr_spec for a in message["To"].addresses] == ["lin@example.com"]


@freeze_time("2026-02-10 09:05", real_asyncio=True)
def test_html_escapes_database_values(settings: Settings, shop: Shop, smtp_server: FaultySmtpServer) -> None:
    order = _order(shop, name="<script>alert(1)</script>", email="x@example.com")
    shop.event("order", order, "placed", "2026-02-10 09:00")
    run(settings)
    message = parse(smtp_server.messages[0])
    html = body(message, "html")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>alert(1)</script>" in body(message)


def test_transient_failure_is_retried_later_then_sent(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    order = _order(shop)
    shop.event("order", order, "placed", "2026-02-10 09:00")
    smtp_server.fail(451, on="RCPT")
    with freeze_time("2026-02-10 09:01", real_asyncio=True):
        code, result = run(settings)
    assert code == 0 and result.retrying == 1 and smtp_server.messages == []
    [row] = notifications(engine, rule="order-confirmation")
    assert row["state"] == "retrying" and row["attempts"] == 1 and "451" in row["detail"]
    with freeze_time("2026-02-10 09:01:30", real_asyncio=True):
        run(settings)  # the back-off (about a minute) has not passed: nothing is sent
    assert smtp_server.messages == []
    with freeze_time("2026-02-10 09:05", real_asyncio=True):
        code, result = run(settings)
    assert result.sent == 1 and len(smtp_server.messages) == 1
    [row] = notifications(engine, rule="order-confirmation")
    assert row["state"] == "sent" and row["attempts"] == 2


@freeze_time("2026-02-10 09:05", real_asyncio=True)
def test_permanent_failure_is_not_retried(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    order = _order(shop, email="gone@example.com")
    shop.event("order", order, "placed", "2026-02-10 09:00")
    smtp_server.fail(550, on="RCPT", times=None, recipient="gone@example.com")
    code, result = run(settings)
    assert code == 0 and result.failed == 1
    [row] = notifications(engine, rule="order-confirmation")
    assert row["state"] == "failed" and row["reason"] == "smtp_permanent" and "550" in row["detail"]
    _code, result = run(settings)
    assert result.failed == 0 and notifications(engine, rule="order-confirmation")[0]["attempts"] == 1


@freeze_time("2026-02-10 09:05", real_asyncio=True)
def test_a_broken_template_fails_that_message_only(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    # A rule whose `when:` is fine but whose template uses a name only real data lacks (in a
    # branch the sample data never takes, so `check` and the start-up accept it).
    html = Path(settings.templates) / "order_dispatched" / "en.html"
    real_only = '{{ event.carrier }}{% if event.tracking_number == "1" %}{{ event.data.nickname }}{% endif %}'
    html.write_text(html.read_text().replace("{{ event.carrier }}", real_only, 1))
    order = _order(shop)
    shop.event("order", order, "placed", "2026-02-10 09:00")
    shop.event("order", order, "dispatched", "2026-02-10 09:01", {"carrier": "DHL", "tracking_number": "1"})
    _code, result = run(settings)
    assert result.sent == 1 and result.failed == 1
    [failed] = notifications(engine, rule="order-dispatched")
    assert failed["state"] == "failed" and failed["reason"] == "render_failed"
    assert "en.html" in failed["detail"] and "nickname" in failed["detail"]
    assert len(smtp_server.messages) == 1  # only the confirmation; nothing half-made


def test_stale_messages_expire_instead_of_flooding(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    order = _order(shop)
    shop.event("order", order, "placed", "2026-02-01 09:00")
    with freeze_time("2026-02-10 09:05", real_asyncio=True):
        _code, result = run(settings)
    assert result.skipped >= 1 and smtp_server.messages == []
    [row] = notifications(engine, rule="order-confirmation")
    assert row["state"] == "skipped" and row["reason"] == "expired"
    assert timedelta(days=2) < timedelta(days=9)
