"""What no single-stream notifier knows: supersession, holding marketing during an open
complaint, and promises kept in business time — end to end through `run --once`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.settings import Settings
from notifier.core.gates import judge
from notifier.core.values import Reason
from notifier.db.engine import reading
from notifier.db.facts import load_facts
from notifier.run.daemon import Pipeline
from notifier.run.intake import intake
from tests.journey import notifications, parse, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer


@contextmanager
def at(moment: str) -> Iterator[None]:
    with freeze_time(moment, real_asyncio=True):
        yield


def test_delivered_supersedes_a_stale_dispatched_message(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    customer = shop.customer(email="lin@example.com", timezone="Asia/Taipei")
    order = shop.order(customer)
    # The daemon was down: the truck scan and the delivery both arrive before it runs again.
    shop.event("order", order, "dispatched", "2026-02-10 01:00", {"carrier": "DHL", "tracking_number": "1"})
    shop.event(
        "order",
        order,
        "delivered",
        "2026-02-10 03:02",
        {"delivered_at": "2026-02-10 03:02:00", "signed_by": "Ms Lin"},
    )
    with at("2026-02-10 04:00"):
        run(settings)
    subjects = [parse(m)["Subject"] for m in smtp_server.messages]
    assert len(subjects) == 1 and "delivered" in subjects[0]
    [dispatched] = notifications(engine, rule="order-dispatched")
    assert dispatched["state"] == "skipped" and dispatched["reason"] == "superseded"
    assert "order.delivered" in dispatched["detail"]
    history = CliRunner().invoke(
        app, ["--database-url", settings.database_url.reveal(), "history", "--order", str(order)]
    )
    assert "superseded" in history.output


def test_dispatched_still_goes_when_nothing_newer_is_known(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    customer = shop.customer(email="lin@example.com")
    order = shop.order(customer)
    shop.event("order", order, "dispatched", "2026-02-10 01:00", {"carrier": "DHL", "tracking_number": "1"})
    with at("2026-02-10 01:01"):
        run(settings)
    assert ["on its way" in parse(m)["Subject"] for m in smtp_server.messages] == [True]


def _price_rise(shop: Shop, customer: int) -> int:
    product = shop.product(name="Twelve red roses", price="59.00")
    shop.order(customer, items=[(product, 1)], placed_at="2026-01-05 02:00")
    shop.event(
        "product",
        product,
        "price_change",
        "2026-01-20 01:00",
        {
            "old_price": "59.00",
            "new_price": "69.00",
            "currency": "USD",
            "effective_at": "2026-02-01 00:00:00",
        },
    )
    return product


def test_marketing_waits_while_a_complaint_is_open(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    customer = shop.customer(email="lin@example.com", timezone="Asia/Taipei", marketing_opt_in=True)
    case = shop.case(customer, subject="Wilted roses", opened_at="2026-01-19 02:00")
    shop.event("case", case, "opened", "2026-01-19 02:00")
    shop.event("case", case, "agent_replied", "2026-01-19 03:00")
    _price_rise(shop, customer)
    with at("2026-01-20 02:00"):  # 10:00 in Taipei: daytime, but the case is still open
        run(settings)
    [warning] = notifications(engine, rule="price-rise-warning")
    assert warning["state"] == "queued" and warning["reason"] == "held"
    assert warning["detail"] == f"held: open case {case}"
    assert not any("69" in parse(m)["Subject"] + str(parse(m).get_body()) for m in smtp_server.messages)
    shop.event("case", case, "resolved", "2026-01-20 05:00")
    with at("2026-01-20 05:30"):  # 13:30 in Taipei, after the hold's next look
        run(settings)
    [warning] = notifications(engine, rule="price-rise-warning")
    assert warning["state"] == "sent"


def test_a_held_message_is_dropped_after_its_max_age(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    customer = shop.customer(email="lin@example.com", timezone="Asia/Taipei", marketing_opt_in=True)
    case = shop.case(customer, opened_at="2026-01-19 02:00")
    shop.event("case", case, "opened", "2026-01-19 02:00")
    _price_rise(shop, customer)
    with at("2026-01-20 02:00"):
        run(settings)
    with at("2026-01-28 02:00"):  # still open 8 days on: past marketing's 7-day max_age
        run(settings)
    [warning] = notifications(engine, rule="price-rise-warning")
    assert warning["state"] == "skipped" and warning["reason"] == "expired"


BUSINESS_RULE = """
  - name: late-two-business-days
    on: order.placed
    unless: [order.dispatched]
    after: 2 business days
    template: dispatch_delayed
"""


def test_two_business_days_across_a_weekend_and_a_holiday(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    rules = settings.rules
    rules.write_text(
        rules.read_text().replace(
            "enabled: false\n    template: thank_you",
            "enabled: false\n    template: thank_you" + BUSINESS_RULE,
        )
    )
    customer = shop.customer(email="lin@example.com", timezone="Asia/Taipei")
    order = shop.order(customer)
    # Thursday 12 Feb 2026 10:00 Taipei. Fri 13 counts; Sat 14 (a rush day too), Sun 15 and the
    # Lunar New Year holidays 16-20 do not; Mon 23 is the second business day.
    shop.event("order", order, "placed", "2026-02-12 02:00")
    with at("2026-02-23 01:59"):  # 09:59 Taipei, Monday 23: one minute early
        run(settings)
    [late] = notifications(engine, rule="late-two-business-days")
    assert late["state"] == "queued"
    assert all("late" not in parse(m)["Subject"].lower() for m in smtp_server.messages)
    with at("2026-02-23 02:00:30"):
        run(settings)
    [late] = notifications(engine, rule="late-two-business-days")
    assert late["state"] == "sent"


@pytest.mark.parametrize("orders", [4, 40])
def test_supersession_is_judged_for_a_whole_batch_in_a_fixed_number_of_queries(
    settings: Settings, shop: Shop, engine: sa.Engine, orders: int
) -> None:
    """A sale day's backlog of dispatched-then-delivered orders: the statements it takes to
    judge a batch do not grow with the batch (they were two or three per message)."""
    for number in range(orders):
        order = shop.order(shop.customer(email=f"c{number}@example.com"))
        truck = {"carrier": "DHL", "tracking_number": "1"}
        shop.event("order", order, "dispatched", "2026-02-10 01:00", truck)
        shop.event("order", order, "delivered", "2026-02-10 03:02", {"delivered_at": "2026-02-10 03:02:00"})
    pipeline = Pipeline(settings)
    now = datetime(2026, 2, 10, 4, 0, tzinfo=UTC)
    rules = pipeline.config.rules
    intake(pipeline.engine, rules, clock=lambda: now, batch_size=500, gap_timeout=timedelta(hours=1))
    claimed = [c for c in pipeline.dispatcher._claim(now) if c.rule == "order-dispatched"]
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    with reading(pipeline.engine) as conn:
        sa.event.listen(conn, "before_cursor_execute", count)
        facts = load_facts(conn, claimed, pipeline.config.rules, has_secret=False)
        _, decided = judge(claimed, pipeline.config.rules, facts, now=now)
    pipeline.engine.dispose()
    assert len(claimed) == orders
    assert [d.reason for d in decided] == [Reason.SUPERSEDED] * orders
    assert len(statements) <= 6, statements
