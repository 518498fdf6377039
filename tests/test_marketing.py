"""Marketing mail: only to opted-in, unsuppressed customers, never in their quiet hours, always
with a one-click way out (RFC 8058)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.settings import Settings
from notifier.db import store
from tests.journey import notifications, parse, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

MARKETING_RULE = """
  - name: delivered-offer
    on: order.delivered
    category: marketing
    template: thank_you
"""


def _marketing(settings: Settings) -> Settings:
    rules = Path(settings.rules)
    rules.write_text(rules.read_text() + MARKETING_RULE)
    return settings


def _delivered(
    shop: Shop,
    *,
    opt_in: bool = True,
    email: str = "lin@example.tw",
    tz: str = "Asia/Taipei",
    at: str = "2026-02-10 13:30",
) -> int:
    customer = shop.customer(email=email, timezone=tz, marketing_opt_in=opt_in, locale="zh-TW")
    product = shop.product(price="300.00")
    order = shop.order(customer, items=[(product, 1)])
    shop.event("order", order, "delivered", at, {"delivered_at": at + ":00", "signed_by": "Lin"})
    return order


def test_marketing_waits_for_the_end_of_quiet_hours(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    settings = _marketing(settings)
    _delivered(shop, at="2026-02-10 13:30")  # 21:30 in Taipei
    with freeze_time("2026-02-10 14:00", real_asyncio=True):  # 22:00 in Taipei
        code, result = run(settings)
    assert code == 0 and result.sent == 1
    [offer] = notifications(engine, rule="delivered-offer")
    assert offer["state"] == "queued" and offer["reason"] == "quiet_hours"
    assert "08:00 local" in offer["detail"]
    transactional = len(smtp_server.messages)
    assert transactional == 1, "the transactional delivered email is not held by quiet hours"
    with freeze_time("2026-02-10 23:59", real_asyncio=True):  # 07:59 in Taipei: still quiet
        run(settings)
    assert len(smtp_server.messages) == 1
    with freeze_time("2026-02-11 00:00:30", real_asyncio=True):  # 08:00 in Taipei
        run(settings)
    assert len(smtp_server.messages) == 2
    message = parse(smtp_server.messages[-1])
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe and "/unsubscribe/" in unsubscribe and "mailto:" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    first = parse(smtp_server.messages[0])
    assert first["List-Unsubscribe"] is None and first["List-Unsubscribe-Post"] is None


@freeze_time("2026-02-10 03:00", real_asyncio=True)  # 11:00 in Taipei
def test_marketing_only_to_opted_in_and_unsuppressed(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    settings = _marketing(settings)
    _delivered(shop, opt_in=False, email="no@example.tw", at="2026-02-10 02:50")
    _delivered(shop, opt_in=True, email="gone@example.tw", at="2026-02-10 02:50")
    _delivered(shop, opt_in=True, email="yes@example.tw", at="2026-02-10 02:50")
    with engine.begin() as conn:
        store.suppress(conn, "Gone@Example.tw", "unsubscribed", ts("2026-02-01 00:00"))
    run(settings)
    offers = {row["recipient"]: row for row in notifications(engine, rule="delivered-offer")}
    assert offers["no@example.tw"]["reason"] == "not_opted_in"
    assert offers["gone@example.tw"]["reason"] == "suppressed"
    assert offers["yes@example.tw"]["state"] == "sent"
    marketing_to = [m.rcpt_tos[0] for m in smtp_server.messages if parse(m)["List-Unsubscribe"]]
    assert marketing_to == ["yes@example.tw"]


def test_no_marketing_without_a_secret_key_it_waits_and_goes_once_the_key_is_set(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    keyed = _marketing(settings)
    _delivered(shop, at="2026-02-10 02:50")
    with freeze_time("2026-02-10 03:00", real_asyncio=True):
        run(replace(keyed, secret_key=None))
    [offer] = notifications(engine, rule="delivered-offer")
    assert (offer["state"], offer["reason"]) == ("queued", "no_secret_key"), "held, not skipped for good"
    assert "NOTIFIER_SECRET_KEY" in offer["detail"]
    assert len(smtp_server.messages) == 1  # the transactional one
    with freeze_time("2026-02-10 03:01", real_asyncio=True):  # a restart with the key: it goes at once
        run(keyed)
    [offer] = notifications(engine, rule="delivered-offer")
    assert offer["state"] == "sent" and len(smtp_server.messages) == 2


@freeze_time("2026-02-10 03:00", real_asyncio=True)
def test_a_hard_bounce_suppresses_further_marketing(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    settings = _marketing(settings)
    smtp_server.fail(550, on="RCPT", times=None, recipient="bounce@example.tw")
    _delivered(shop, email="bounce@example.tw", at="2026-02-10 02:50")
    run(settings)
    with engine.connect() as conn:
        assert store.suppressed(conn, ["bounce@example.tw"]) == {"bounce@example.tw"}
