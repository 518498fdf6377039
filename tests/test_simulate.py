"""`notifier simulate`: a month of orders replayed against a candidate rules file that disables
one rule and adds one - what would be sent beside what was, and nothing written or sent."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner, Result

from notifier.cli import app
from notifier.config.live import load_checked
from notifier.config.settings import Settings
from notifier.db import store
from notifier.db.tables import NOTIFIER_TABLES
from notifier.tools.replay import read_only
from notifier.tools.replay import simulate as replay_simulate
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer
from tests.test_cli_tools import outbox_row

NOW = "2026-02-01 12:00"
DAYS = 30  # one order a day, placed at 02:00 UTC from 2 January


def _candidate(settings: Settings) -> Path:
    """The shipped rules with order-delivered switched off and a thank-you for big orders added."""
    text = Path(settings.rules).read_text()
    text = text.replace(
        "  - name: order-delivered\n    on: order.delivered\n",
        "  - name: order-delivered\n    on: order.delivered\n    enabled: false\n",
    )
    assert "enabled: false\n    template: order_delivered" in text
    text += (
        "\n  - name: delivered-thanks\n    on: order.delivered\n"
        '    when: "order.total >= 100"\n    delay: 2h\n    template: thank_you\n'
    )
    path = Path(settings.rules).with_name("candidate.yaml")
    path.write_text(text)
    return path


def _month(shop: Shop, engine: sa.Engine) -> None:
    """30 orders. Even days: dispatched 10 h later, delivered 30 h later (two roses on every
    fourth day, 118.00; else one, 59.00). Odd days: never dispatched. What was really sent:
    every confirmation a minute after the order, every delivered email a minute after delivery."""
    buyers = [
        shop.customer(email=f"buyer{i}@example.com", timezone="UTC", marketing_opt_in=i < 2) for i in range(3)
    ]
    roses = shop.product(name="Twelve red roses", price="59.00")
    sent: list[dict[str, Any]] = []
    for i in range(DAYS):
        placed = ts("2026-01-02 02:00") + timedelta(days=i)
        at = f"{placed:%Y-%m-%d %H:%M}"
        order = shop.order(buyers[i % 3], items=[(roses, 2 if i % 4 == 0 else 1)], placed_at=at)
        event = shop.event("order", order, "placed", at)
        sent.append(_sent("order-confirmation", event, order, placed))
        if i % 2 == 0:
            dispatched = placed + timedelta(hours=10)
            shop.event(
                "order",
                order,
                "dispatched",
                f"{dispatched:%Y-%m-%d %H:%M}",
                {"carrier": "DHL", "tracking_number": "1"},
            )
            delivered = placed + timedelta(hours=30)
            moment = f"{delivered:%Y-%m-%d %H:%M}"
            event = shop.event(
                "order", order, "delivered", moment, {"delivered_at": moment, "signed_by": "Lin"}
            )
            sent.append(_sent("order-delivered", event, order, delivered))
    # Roses go up on 15 February: the warning is due 21 days before, to opted-in buyers.
    shop.event(
        "product",
        roses,
        "price_change",
        "2026-01-20 01:00",
        {
            "old_price": "59.00",
            "new_price": "69.00",
            "currency": "USD",
            "effective_at": "2026-02-15 01:00:00",
        },
    )
    with engine.begin() as conn:
        store.insert_notifications(conn, sent)


def _sent(rule: str, event: int, order: int, occurred: Any) -> dict[str, Any]:
    return outbox_row(
        rule=rule,
        key=f"{rule}:order:{event}",
        event_id=event,
        subject_id=order,
        thread=f"order:{order}",
        event_at=occurred,
        state="sent",
        sent_at=occurred + timedelta(minutes=1),
    )


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in NOTIFIER_TABLES
        }


def simulate(settings: Settings, *args: str, secret: str | None = "test-secret") -> Result:
    """`notifier simulate` with these settings (a secret key unless told otherwise)."""
    base = ["--database-url", settings.database_url.reveal(), "--rules", str(settings.rules), "simulate"]
    env = {"NOTIFIER_SECRET_KEY": secret} if secret else {}
    with freeze_time(NOW, real_asyncio=True):
        return CliRunner().invoke(app, [*base, *args], env=env)


def test_a_month_replayed_against_candidate_rules(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    _month(shop, engine)
    candidate = _candidate(settings)
    before = _counts(engine)
    result = simulate(settings, "--rules", str(candidate), "--since", "31d", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # plain JSON: no progress bar, no markup
    assert _counts(engine) == before, "nothing written"
    assert smtp_server.connections_opened == 0 and smtp_server.messages == []
    assert data["events"] == DAYS + 2 * 15 + 1
    rules = {row["rule"]: row for row in data["rules"]}

    confirmation = rules["order-confirmation"]
    assert (confirmation["would_send"], confirmation["sent"]) == (DAYS, DAYS)

    off = rules["order-delivered"]
    assert off["status"] == "disabled (was enabled)"
    assert (off["would_send"], off["sent"]) == (0, 15)

    thanks = rules["delivered-thanks"]
    assert thanks["status"] == "new" and thanks["sent"] == 0
    assert thanks["would_send"] == 8, "delivered orders of 118.00: days 0, 4, ... 28"
    assert thanks["would_skip"] == 7 and thanks["skip_reasons"] == {"condition_false": 7}

    delayed = rules["dispatch-delayed"]
    assert delayed["would_send"] == 14, "the 15 never-dispatched orders but the last, due after now"
    assert delayed["not_due_yet"] == 1
    assert delayed["skip_reasons"] == {"unless_happened": 15}

    warning = rules["price-rise-warning"]
    assert warning["would_send"] == 2, "the two opted-in buyers, counted, not stored"

    days = {(row["day"], row["rule"]): row for row in data["days"]}
    assert days[("2026-01-05", "order-confirmation")]["would_send"] == 1
    assert days[("2026-01-05", "order-confirmation")]["sent"] == 1
    assert days[("2026-01-03", "order-delivered")]["sent"] == 1  # ordered 2 Jan, delivered 3 Jan 08:00
    assert days[("2026-01-03", "order-delivered")]["would_send"] == 0
    assert days[("2026-01-05", "delivered-thanks")]["would_skip"] == 1  # 59.00, delivered 5 Jan
    assert days[("2026-01-07", "delivered-thanks")]["would_send"] == 1  # 118.00, delivered 7 Jan
    assert days[("2026-01-25", "price-rise-warning")]["would_send"] == 2  # 21 days before 15 February
    assert days[("2026-01-05", "dispatch-delayed")]["would_send"] == 1  # the 3 January order, 48 h on
    assert days[("2026-01-06", "dispatch-delayed")]["would_skip"] == 1  # 4 January: dispatched in time


def test_simulate_prints_tables_and_refuses_a_bad_candidate(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    _month(shop, engine)
    candidate = _candidate(settings)
    human = simulate(settings, "--rules", str(candidate), "--since", "31d")
    assert human.exit_code == 0, human.output
    keyless = simulate(settings, "--rules", str(candidate), "--since", "31d", secret=None)
    assert "price-rise-warning would skip: no_secret_key 2" in keyless.stdout, "as the daemon would, keyless"
    line = next(line for line in human.stdout.splitlines() if "delivered-thanks" in line)
    assert "new" in line and " 8 " in line
    assert "delivered-thanks would skip: condition_false 7" in human.stdout
    assert "per day (UTC)" in human.stdout and "2026-01-25" in human.stdout

    candidate.write_text(candidate.read_text().replace("template: thank_you", "template: no_such_template"))
    bad = simulate(settings, "--rules", str(candidate))
    assert bad.exit_code == 1 and "no_such_template" in bad.output
    short = simulate(settings, "--rules", str(candidate), "--since", "whenever")
    assert short.exit_code == 2
    assert smtp_server.connections_opened == 0


def test_the_replay_connection_cannot_write(db_url: str) -> None:
    with read_only(db_url) as conn:
        with pytest.raises(sa.exc.DBAPIError):
            store.insert_notifications(conn, [outbox_row()])


BUSINESS_NOTICE = """
  - name: price-rise-notice
    on: product.price_change
    delay: 2 business days
    audience: { ordered_product_within: 365d }
    template: price_change_warning
"""


def test_an_audience_rule_in_business_time_is_due_on_the_shops_calendar(
    settings: Settings, shop: Shop, engine: sa.Engine
) -> None:
    """Friday 13 February 2026, 09:00 in Taipei: Saturday is a rush day, the Lunar New Year
    holidays run 16-20 February, so two business days end on Tuesday 24 (not Tuesday 17, as
    on a default calendar)."""
    settings.rules.write_text(settings.rules.read_text() + BUSINESS_NOTICE)
    buyer = shop.customer(email="lin@example.com", timezone="Asia/Taipei")
    roses = shop.product()
    shop.order(buyer, items=[(roses, 1)], placed_at="2026-02-01 02:00")
    change = {"old_price": "59.00", "new_price": "69.00", "currency": "USD", "effective_at": "2026-04-01"}
    shop.event("product", roses, "price_change", "2026-02-13 01:00", change)
    rules, _renderer = load_checked(settings.rules, settings.templates)
    with read_only(settings.database_url.reveal()) as conn:
        replay = replay_simulate(conn, rules, since=ts("2026-02-01 00:00"), now=ts("2026-03-01 00:00"))
    days = replay.days.items()
    assert [day for (day, rule), tally in days if rule == "price-rise-notice" and tally.would_send] == [
        date(2026, 2, 24)
    ]
