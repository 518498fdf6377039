"""A product event fans out to the customers who bought the product: who is in the
audience, when their message is due, that nobody is planned twice, and the email itself."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.live import load_checked
from notifier.config.settings import Settings
from notifier.core.context import brand_of
from notifier.core.planning import plan_rule
from notifier.core.rules import RuleSet
from notifier.core.timing import as_utc
from notifier.db import store
from notifier.db.events import read_ids
from notifier.db.fanout import plan_audience
from notifier.db.store.planned import planned_row
from notifier.db.subjects import load_customers, load_subjects
from notifier.db.tables import Notification
from notifier.run.intake import intake
from tests.journey import body, notifications, parse, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]
NOW = ts("2026-02-10 09:30")
EVENT_AT = "2026-02-10 09:00"
RISE = {"old_price": "59.00", "new_price": "65.00", "currency": "USD", "effective_at": "2026-04-01 00:00:00"}
TIMESTAMPS = ("event_occurred_at", "due_at", "expires_at", "next_attempt_at", "created_at", "updated_at")


def _rules(project: Path) -> RuleSet:
    return load_checked(project / "rules.yaml", project / "templates")[0]


def _intake(engine: sa.Engine, rules: RuleSet) -> tuple[int, int]:
    result = intake(engine, rules, clock=lambda: NOW, batch_size=100, gap_timeout=timedelta(minutes=10))
    return result.events, result.planned


def _warnings(engine: sa.Engine) -> list[Any]:
    """The warnings queued for customers in the audience."""
    return notifications(engine, rule="price-rise-warning", state="queued")


def _left_out(engine: sa.Engine) -> dict[int | None, str]:
    """The candidates left out of the warning's audience, and why."""
    return {
        row["customer_id"]: row["reason"]
        for row in notifications(engine, rule="price-rise-warning", state="skipped")
    }


def _by_customer(engine: sa.Engine) -> dict[int, Any]:
    rows = _warnings(engine)
    by_customer = {row["customer_id"]: row for row in rows}
    assert len(by_customer) == len(rows), "a customer was planned more than once"
    return by_customer


def test_the_audience_is_every_opted_in_buyer_within_the_window_once(
    engine: sa.Engine, shop: Shop, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="notifier.db.fanout")
    roses = shop.product(name="Twelve red roses", price="59.00")
    vase = shop.product(name="Glass vase", price="19.50")

    def buyer(placed_at: str, *, product: int = roses, **customer: Any) -> int:
        cid = shop.customer(**customer)
        shop.order(cid, items=[(product, 1)], placed_at=placed_at)
        return cid

    loyal = buyer("2025-06-01 10:00", marketing_opt_in=True)
    shop.order(loyal, items=[(roses, 1), (vase, 1), (roses, 2)], placed_at="2026-01-05 12:00")
    shop.order(loyal, items=[(roses, 1)], placed_at="2026-02-01 12:00")
    on_the_edge = buyer("2025-02-10 09:00", marketing_opt_in=True)  # exactly 365 days before
    too_long_ago = buyer("2025-02-10 08:59", marketing_opt_in=True)
    after_the_event = buyer("2026-02-10 09:01", marketing_opt_in=True)
    opted_out = buyer("2026-01-05 12:00", marketing_opt_in=False)
    vase_only = buyer("2026-01-05 12:00", product=vase, marketing_opt_in=True)
    unsubscribed = buyer("2026-01-05 12:00", email=" Fiona@Example.com ", marketing_opt_in=True)
    no_address = buyer("2026-01-05 12:00", email="   ", marketing_opt_in=True)
    spaced = buyer("2026-01-05 12:00", email="\t Hank@Example.com \n", marketing_opt_in=True)
    with engine.begin() as conn:
        store.suppress(conn, "Fiona@example.COM", "unsubscribed", NOW)
    shop.event("product", roses, "price_change", EVENT_AT, RISE)

    events, planned = _intake(engine, _rules(project))

    assert events == 1
    rows = _by_customer(engine)
    assert sorted(rows) == sorted([loyal, on_the_edge, spaced]), {
        "too long ago": too_long_ago,
        "after the event": after_the_event,
        "opted out": opted_out,
        "vase only": vase_only,
        "unsubscribed": unsubscribed,
        "no address": no_address,
    }
    assert _left_out(engine) == {
        too_long_ago: "outside_window",
        after_the_event: "outside_window",
        opted_out: "not_opted_in",
        unsubscribed: "suppressed",
        no_address: "invalid_address",
    }, "everyone who ever bought the product has a row; vase_only never did"
    assert planned == 8
    [summary] = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("fan-out price-rise-warning")
    ]
    assert summary.endswith(
        "queued 3, not bought within the audience window 2, unusable address 1, not opted in 1, suppressed 1"
    ), summary
    assert rows[spaced]["recipient"] == "Hank@Example.com"
    assert rows[loyal]["key"] == f"price-rise-warning:product:1:{loyal}"
    assert rows[loyal]["thread"] == f"customer:{loyal}"
    assert {row["state"] for row in rows.values()} == {"queued"}


def test_an_audience_row_is_the_row_planning_one_customer_would_store(
    engine: sa.Engine, shop: Shop, project: Path
) -> None:
    roses = shop.product()
    cid = shop.customer(email="lin@example.com", marketing_opt_in=True)
    shop.order(cid, items=[(roses, 1)], placed_at="2026-01-05 12:00")
    event_id = shop.event("product", roses, "price_change", EVENT_AT, RISE)
    rules = _rules(project)
    _intake(engine, rules)

    rule = rules.by_name("price-rise-warning")
    assert rule is not None
    with engine.connect() as conn:
        [event] = read_ids(conn, "product", [event_id])
        subject = load_subjects(conn, [("product", roses)])[("product", roses)]
        customer = load_customers(conn, [cid])[cid]
        raw_due = conn.execute(sa.select(sa.cast(NOTIFICATIONS.c.due_at, sa.Text))).scalar_one()
    plan = plan_rule(rule, event, subject, rules, brand=brand_of(rules), now=NOW, customer=customer)
    expected = planned_row(plan, NOW)
    [row] = _warnings(engine)
    stored = {name: row[name] for name in expected}
    for name in TIMESTAMPS:
        stored[name] = as_utc(stored[name])
    assert stored == {**expected, "thread": f"customer:{cid}"}
    assert stored["due_at"] == ts("2026-03-11 00:00"), "21 days before effective_at"
    assert stored["expires_at"] == ts("2026-03-18 00:00"), "due plus the 7 days marketing max_age"
    if engine.dialect.name == "sqlite":  # stored the way every other timestamp is
        assert re.fullmatch(r"2026-03-11 00:00:00(\.0+)?", raw_due), raw_due


def test_a_price_decrease_plans_nothing(engine: sa.Engine, shop: Shop, project: Path) -> None:
    roses = shop.product()
    cid = shop.customer(marketing_opt_in=True)
    shop.order(cid, items=[(roses, 1)], placed_at="2026-01-05 12:00")
    shop.event(
        "product", roses, "price_change", EVENT_AT, {**RISE, "old_price": "65.00", "new_price": "59.00"}
    )
    events, planned = _intake(engine, _rules(project))
    assert events == 1 and planned == 1
    assert _warnings(engine) == []
    assert _left_out(engine) == {None: "condition_false"}, "one skipped row for the event, no fan-out"


def test_a_rerun_plans_nobody_twice(engine: sa.Engine, shop: Shop, project: Path) -> None:
    roses = shop.product()
    buyers = [shop.customer(marketing_opt_in=True) for _ in range(5)]
    for cid in buyers:
        shop.order(cid, items=[(roses, 1)], placed_at="2026-01-05 12:00")
    event_id = shop.event("product", roses, "price_change", EVENT_AT, RISE)
    rules = _rules(project)
    assert _intake(engine, rules) == (1, 5)
    keys = sorted(row["key"] for row in _warnings(engine))

    # As if the cursor had never moved (a crash before its commit, a second daemon):
    with engine.begin() as conn:
        conn.execute(store.CURSORS.update().values(position=0))
    assert _intake(engine, rules) == (1, 0)
    rule = rules.by_name("price-rise-warning")
    assert rule is not None
    with engine.begin() as conn:
        [event] = read_ids(conn, "product", [event_id])
        subject = load_subjects(conn, [("product", roses)])[("product", roses)]
        again = plan_audience(conn, rule, event, rules, subject=subject, brand=brand_of(rules), now=NOW)
    assert again.stored == 0 and again.counts == {"queued": 5}
    assert sorted(row["key"] for row in _warnings(engine)) == keys and len(keys) == 5


def test_a_send_at_already_past_is_due_at_the_event(engine: sa.Engine, shop: Shop, project: Path) -> None:
    roses = shop.product()
    cid = shop.customer(marketing_opt_in=True)
    shop.order(cid, items=[(roses, 1)], placed_at="2026-01-05 12:00")
    shop.event("product", roses, "price_change", EVENT_AT, {**RISE, "effective_at": "2026-02-20 00:00:00"})
    _intake(engine, _rules(project))
    [row] = _warnings(engine)
    assert as_utc(row["due_at"]) == ts(EVENT_AT)
    assert as_utc(row["next_attempt_at"]) == ts(EVENT_AT)


def test_a_transactional_audience_ignores_opt_in_and_suppressions(
    engine: sa.Engine, shop: Shop, project: Path
) -> None:
    rules_file = project / "rules.yaml"
    rules_file.write_text(
        rules_file.read_text().replace(
            "    category: marketing\n",
            "",
        )
    )
    rules = _rules(project)
    rule = rules.by_name("price-rise-warning")
    assert rule is not None and rule.category.value == "transactional"
    roses = shop.product()
    opted_out = shop.customer(marketing_opt_in=False)
    unsubscribed = shop.customer(email="gone@example.com", marketing_opt_in=False)
    stranger = shop.customer(marketing_opt_in=True)
    for cid in (opted_out, unsubscribed):
        shop.order(cid, items=[(roses, 1)], placed_at="2026-01-05 12:00")
    with engine.begin() as conn:
        store.suppress(conn, "gone@example.com", "unsubscribed", NOW)
    shop.event("product", roses, "price_change", EVENT_AT, RISE)
    _intake(engine, rules)
    rows = _by_customer(engine)
    assert sorted(rows) == [opted_out, unsubscribed] and stranger not in rows
    assert {row["category"] for row in rows.values()} == {"transactional"}


def test_an_event_for_a_missing_product_plans_nothing_and_moves_on(
    engine: sa.Engine, shop: Shop, project: Path
) -> None:
    roses = shop.product()
    cid = shop.customer(marketing_opt_in=True)
    shop.order(cid, items=[(roses, 1)], placed_at="2026-01-05 12:00")
    shop.event("product", 999, "price_change", EVENT_AT, RISE)
    shop.event("product", roses, "price_change", "2026-02-10 09:05", RISE)
    events, planned = _intake(engine, _rules(project))
    assert events == 2 and planned == 2
    [row] = _warnings(engine)
    assert row["subject_id"] == roses and row["event_id"] == 2
    assert _left_out(engine) == {None: "no_recipient"}


@freeze_time("2026-02-10 02:00", real_asyncio=True)  # 10:00 in Taipei: daytime for the customer
def test_the_price_warning_reaches_the_buyer_as_marketing_mail(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    roses = shop.product(name="Twelve red roses", price="59.00")
    lin = shop.customer(name="Ms Lin", email="lin@example.com", timezone="Asia/Taipei", marketing_opt_in=True)
    quiet = shop.customer(email="quiet@example.com", timezone="Asia/Taipei", marketing_opt_in=False)
    shop.order(quiet, items=[(roses, 1)], placed_at="2026-01-20 03:00")
    order = shop.order(lin, items=[(roses, 1)], placed_at="2026-02-10 01:30")
    shop.event("order", order, "placed", "2026-02-10 01:30")
    shop.event(
        "product",
        roses,
        "price_change",
        "2026-02-10 01:45",
        {**RISE, "effective_at": "2026-02-20 00:00:00"},  # 21 days before is past: at once
    )

    code, result = run(settings)

    assert code == 0 and result.sent == 2
    assert {m.rcpt_tos for m in smtp_server.messages} == {("lin@example.com",)}
    by_subject = {parse(m)["Subject"]: parse(m) for m in smtp_server.messages}
    [warning] = [m for s, m in by_subject.items() if "Twelve red roses" in s]
    [confirmation] = [m for s, m in by_subject.items() if str(order) in s]
    text = body(warning)
    assert "Twelve red roses" in text and "$59.00" in text and "$65.00" in text
    unsubscribe = warning["List-Unsubscribe"]
    assert re.search(r"<https?://[^>]+>", unsubscribe), unsubscribe
    assert re.search(r"<mailto:[^>]+>", unsubscribe), unsubscribe
    assert warning["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert confirmation["List-Unsubscribe"] is None
    assert confirmation["List-Unsubscribe-Post"] is None
    [row] = notifications(engine, rule="price-rise-warning", state="sent")
    assert row["customer_id"] == lin
    assert _left_out(engine) == {quiet: "not_opted_in"}
