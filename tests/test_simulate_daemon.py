"""`simulate` is the daemon: a week recorded by the real pipeline on a simulated clock, then
replayed with the same rules file; per rule, what simulate says equals what the daemon did.

The week has every decision the daemon takes after planning: an order delivered before its
dispatched message went out (the daemon was down: supersession), marketing held while a
complaint is open, marketing in quiet hours, an absence rule cancelled by its `unless:` event,
business-time rules (`after: response_time`, and an audience rule with `delay: 1 business day`
across a weekend) and immediate ones.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifier.config.live import load_checked
from notifier.config.settings import Settings
from notifier.core.rules import RuleSet
from notifier.db import store
from notifier.db.events import SOURCES
from notifier.run.daemon import Pipeline
from notifier.tools.replay import Replay, read_only, simulate
from tests.journey import notifications
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

START = datetime(2026, 2, 2, 1, 0, tzinfo=UTC)  # Monday, 09:00 in Taipei
END = datetime(2026, 2, 9, 4, 0, tzinfo=UTC)  # the next Monday, 12:00 in Taipei
DOWN = (datetime(2026, 2, 2, 4, 30, tzinfo=UTC), datetime(2026, 2, 2, 6, 30, tzinfo=UTC))

# Transactional, to everyone who bought the product, one business day after the change: on
# the shop's calendar (Asia/Taipei) Friday 09:00 -> Monday 09:00 Taipei (01:00 UTC); on a
# default UTC calendar it would be Monday 09:00 UTC, after the recorded week.
NOTICE_RULE = """
  - name: price-rise-notice
    on: product.price_change
    delay: 1 business day
    audience: { ordered_product_within: 365d }
    template: price_change_warning
"""


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _timeline(shop: Shop) -> list[tuple[datetime, str, int, str, dict[str, Any] | None]]:
    lin = shop.customer(email="lin@example.com", timezone="Asia/Taipei", marketing_opt_in=True)
    kai = shop.customer(email="kai@example.com", timezone="Asia/Taipei", marketing_opt_in=True)
    roses = shop.product(name="Twelve red roses", price="59.00")
    first = shop.order(lin, items=[(roses, 1)], placed_at="2026-02-02 01:00")
    second = shop.order(kai, items=[(roses, 1)], placed_at="2026-02-02 01:00")
    case = shop.case(lin, order_id=first, opened_at="2026-02-02 02:00")

    def price(effective: str) -> dict[str, Any]:
        return {"old_price": "59.00", "new_price": "69.00", "currency": "USD", "effective_at": effective}

    return [
        (_at("2026-02-02 01:00"), "order", first, "placed", None),
        (_at("2026-02-02 01:00"), "order", second, "placed", None),  # never dispatched: late
        (_at("2026-02-02 02:00"), "case", case, "opened", None),  # Lin complains; still open at the end
        # The daemon is down: the truck scan and the delivery are both read at 07:00.
        (_at("2026-02-02 05:00"), "order", first, "dispatched", {"carrier": "DHL", "tracking_number": "1"}),
        (_at("2026-02-02 06:00"), "order", first, "delivered", {"delivered_at": "2026-02-02 06:00:00"}),
        # The warning is due at 15:00 UTC: 23:00 in Taipei (quiet hours); Lin's is held.
        (_at("2026-02-03 03:00"), "product", roses, "price_change", price("2026-02-24 15:00:00")),
        (_at("2026-02-06 01:00"), "product", roses, "price_change", price("2026-02-28 02:00:00")),
    ]


async def _record(settings: Settings, engine: sa.Engine, shop: Shop) -> None:
    """Run the real pipeline hour by hour over the week, writing each event when it happens."""
    events = _timeline(shop)
    clock = [START]
    async with Pipeline(settings, engine=engine, clock=lambda: clock[0]) as pipeline:
        moment = START
        while moment <= END:
            clock[0] = moment
            while events and events[0][0] <= moment:
                when, source, subject_id, kind, data = events.pop(0)
                table, column = SOURCES[source]
                with engine.begin() as conn:
                    row = {column: subject_id, "type": kind, "occurred_at": when, "data": data}
                    conn.execute(sa.insert(table).values(row))
            if not DOWN[0] <= moment <= DOWN[1]:
                await pipeline.cycle()
            moment += timedelta(hours=1)


def _rules(settings: Settings) -> RuleSet:
    rules, _renderer = load_checked(settings.rules, settings.templates)
    return rules


def _replay(settings: Settings) -> Replay:
    with read_only(settings.database_url.reveal()) as conn:
        return simulate(conn, _rules(settings), since=START, now=END)


def test_simulate_with_the_rules_in_force_equals_what_the_daemon_did(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    settings.rules.write_text(settings.rules.read_text() + NOTICE_RULE)
    asyncio.run(_record(settings, engine, shop))
    rows = notifications(engine)
    did: dict[str, dict[str, Any]] = {}
    for row in rows:
        figures = did.setdefault(row["rule"], {"sent": 0, "waiting": 0, "skipped": Counter()})
        if row["state"] == "sent":
            figures["sent"] += 1
        elif row["state"] == "skipped":
            figures["skipped"][row["reason"]] += 1
        else:
            figures["waiting"] += 1
    # The week as the daemon lived it (the test's own premises).
    assert did["order-dispatched"]["skipped"] == {"superseded": 1}
    assert did["dispatch-delayed"] == {"sent": 1, "waiting": 0, "skipped": {"unless_happened": 1}}
    assert did["price-rise-warning"] == {"sent": 2, "waiting": 2, "skipped": {}}, "Kai's (in the morning)"
    assert did["price-rise-notice"]["sent"] == 4, "Monday 09:00 in Taipei on the shop's calendar"
    assert did["case-overdue-team"]["sent"] == 1 and did["order-confirmation"]["sent"] == 2
    assert len(smtp_server.messages) == sum(figures["sent"] for figures in did.values())

    replay = _replay(settings)
    said = {
        name: {"sent": tally.would_send, "waiting": tally.not_due_yet, "skipped": Counter(tally.skip_reasons)}
        for name, tally in replay.rules.items()
        if tally.would_send or tally.not_due_yet or tally.would_skip
    }
    assert said == did
    assert all(tally.would_send == tally.sent for tally in replay.rules.values())


def test_simulate_says_what_the_daemon_without_a_secret_key_would_do(
    settings: Settings, shop: Shop, engine: sa.Engine
) -> None:
    _timeline(shop)  # the customers, the product and the orders; no event rows
    roses = 1
    with engine.begin() as conn:
        table, column = SOURCES["product"]
        data = {"old_price": "59.00", "new_price": "69.00", "currency": "USD", "effective_at": "2026-03-01"}
        row = {column: roses, "type": "price_change", "occurred_at": START, "data": data}
        conn.execute(sa.insert(table).values(row))
    with read_only(settings.database_url.reveal()) as conn:
        without = simulate(conn, _rules(settings), since=START, now=END, has_secret=False)
        with_key = simulate(conn, _rules(settings), since=START, now=END, has_secret=True)
    warning = without.rules["price-rise-warning"]
    assert (warning.would_send, dict(warning.skip_reasons)) == (0, {"no_secret_key": 2})
    assert with_key.rules["price-rise-warning"].would_send == 2


def test_a_message_held_past_its_max_age_would_be_skipped_as_expired(
    settings: Settings, shop: Shop, engine: sa.Engine
) -> None:
    """The same week's events, replayed to 20 February without a daemon: Lin's case never
    closes, so her two warnings are held until marketing's 7-day max_age has passed."""
    for when, source, subject_id, kind, data in _timeline(shop):
        table, column = SOURCES[source]
        row = {column: subject_id, "type": kind, "occurred_at": when, "data": data}
        with engine.begin() as conn:
            conn.execute(sa.insert(table).values(row))
    with read_only(settings.database_url.reveal()) as conn:
        replay = simulate(conn, _rules(settings), since=START, now=_at("2026-02-20 00:00"))
    warning = replay.rules["price-rise-warning"]
    assert (warning.would_send, warning.not_due_yet, dict(warning.skip_reasons)) == (2, 0, {"expired": 2})
    # The first was due 3 February 15:00 UTC; the first look past its max_age is on 10 February.
    assert replay.days[(_at("2026-02-10 00:00").date(), "price-rise-warning")].skip_reasons == {"expired": 1}
    assert replay.rules["order-dispatched"].would_send == 1, "read when it happened: nothing newer known"


OFFER_RULE = """
  - name: delivered-offer
    on: order.delivered
    delay: 2h
    category: marketing
    template: thank_you
"""


def test_an_address_suppressed_later_did_not_stop_the_mail_before(
    settings: Settings, shop: Shop, engine: sa.Engine
) -> None:
    """Lin unsubscribed the day after her offer went; Kai an hour before his was due."""
    settings.rules.write_text(settings.rules.read_text() + OFFER_RULE)
    for name in ("lin", "kai"):
        buyer = shop.customer(email=f"{name}@example.com", timezone="UTC", marketing_opt_in=True)
        order = shop.order(buyer, placed_at="2026-02-02 01:00")
        shop.event("order", order, "delivered", "2026-02-03 09:00", {"delivered_at": "2026-02-03 09:00:00"})
    with engine.begin() as conn:
        store.suppress(conn, "lin@example.com", "unsubscribed", _at("2026-02-04 09:00"))
        store.suppress(conn, "kai@example.com", "unsubscribed", _at("2026-02-03 10:00"))
    with read_only(settings.database_url.reveal()) as conn:
        replay = simulate(conn, _rules(settings), since=START, now=END)
    offer = replay.rules["delivered-offer"]
    assert (offer.would_send, dict(offer.skip_reasons)) == (1, {"suppressed": 1})
