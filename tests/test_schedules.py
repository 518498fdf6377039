"""Calendar rules: fire on the tick, to the right audience, once — even with two daemons."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.live import load_checked
from notifier.config.settings import Settings
from notifier.db.store import STATE
from notifier.run.schedules import fire_due, latest_tick
from tests.journey import notifications, parse, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer


def _enable(settings: Settings) -> None:
    text = settings.rules.read_text()
    settings.rules.write_text(
        text.replace(
            "    enabled: false\n    template: valentines_invitation", "    template: valentines_invitation"
        )
    )


def test_latest_tick_of_a_yearly_schedule(settings: Settings) -> None:
    _enable(settings)
    rules, _ = load_checked(settings.rules, settings.templates)
    rule = rules.by_name("valentines-invitation")
    assert rule is not None
    tick = ts("2026-01-20 02:00")  # 10:00 in Taipei
    assert latest_tick(rule, ts("2026-01-01 00:00"), ts("2026-01-20 01:59")) is None
    assert latest_tick(rule, ts("2026-01-01 00:00"), ts("2026-01-20 02:00")) == tick
    assert latest_tick(rule, tick, ts("2026-06-01 00:00")) is None, "already fired"
    assert latest_tick(rule, ts("2025-01-01 00:00"), ts("2026-02-01 00:00")) == tick, "only the latest"


def test_invitation_goes_to_recent_rose_buyers_once(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    _enable(settings)
    roses = shop.product(name="Twelve red roses", tags="roses,valentine")
    tulips = shop.product(name="Ten tulips", tags="tulips")
    buyer = shop.customer(email="buyer@example.tw", marketing_opt_in=True, locale="zh-TW")
    shop.order(buyer, items=[(roses, 1)], placed_at="2025-11-02 03:00")
    shop.order(buyer, items=[(roses, 1)], placed_at="2025-12-02 03:00")  # two orders: one email
    tulip_buyer = shop.customer(email="tulips@example.tw", marketing_opt_in=True)
    shop.order(tulip_buyer, items=[(tulips, 1)], placed_at="2025-12-02 03:00")
    quiet = shop.customer(email="no-news@example.tw", marketing_opt_in=False)
    shop.order(quiet, items=[(roses, 1)], placed_at="2025-12-02 03:00")
    old = shop.customer(email="old@example.tw", marketing_opt_in=True)
    shop.order(old, items=[(roses, 1)], placed_at="2024-12-02 03:00")  # more than 365 days ago
    with freeze_time("2026-01-20 01:59", real_asyncio=True):
        run(settings)
    assert notifications(engine, rule="valentines-invitation") == []
    with freeze_time("2026-01-20 02:00:30", real_asyncio=True):
        run(settings)
    with freeze_time("2026-01-20 02:05", real_asyncio=True):
        run(settings)
    sent = [m for m in smtp_server.messages if "情人節" in parse(m)["Subject"]]
    assert [m.rcpt_tos for m in sent] == [("buyer@example.tw",)]
    assert parse(sent[0])["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_second_daemon_firing_the_same_tick_stores_nothing_twice(
    settings: Settings, shop: Shop, engine: sa.Engine
) -> None:
    _enable(settings)
    roses = shop.product(tags="roses")
    for n in range(3):
        customer = shop.customer(email=f"c{n}@example.tw", marketing_opt_in=True)
        shop.order(customer, items=[(roses, 1)], placed_at="2025-12-02 03:00")
    rules, _ = load_checked(settings.rules, settings.templates)
    moment = ts("2026-01-20 02:01")
    assert fire_due(engine, rules, clock=lambda: moment) == 3
    with engine.begin() as conn:  # a daemon that has not seen the first one's note fires again
        conn.execute(STATE.delete().where(STATE.c.key == "schedule.valentines-invitation"))
    assert fire_due(engine, rules, clock=lambda: moment + timedelta(seconds=5)) == 0
    assert len(notifications(engine, rule="valentines-invitation")) == 3


def test_a_tick_missed_for_longer_than_max_age_is_not_fired_late(
    settings: Settings, shop: Shop, engine: sa.Engine
) -> None:
    _enable(settings)
    roses = shop.product(tags="roses")
    customer = shop.customer(email="c@example.tw", marketing_opt_in=True)
    shop.order(customer, items=[(roses, 1)], placed_at="2025-12-02 03:00")
    rules, _ = load_checked(settings.rules, settings.templates)
    assert fire_due(engine, rules, clock=lambda: ts("2026-02-10 00:00")) == 0  # 21 days late
