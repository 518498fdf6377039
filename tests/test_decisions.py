"""Decisions recorded, then explained: the due time's words and the rule's fingerprint are
stored when a notification is planned, and `history` shows them after the rules changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from notifier.config.live import load_checked
from notifier.core.rules import RuleSet
from notifier.run.intake import intake
from notifier.tools.history import history
from tests.journey import notifications
from tests.shop import Shop, ts

NOW = ts("2026-02-10 09:30")
RISE = {"old_price": "59.00", "new_price": "65.00", "currency": "USD", "effective_at": "2026-04-01 00:00:00"}


def _rules(project: Path, fingerprints: dict[str, str] | None = None) -> RuleSet:
    rules = load_checked(project / "rules.yaml", project / "templates")[0]
    fingerprints = fingerprints or {}
    return replace(
        rules,
        rules=tuple(replace(r, fingerprint=fingerprints.get(r.name, r.fingerprint)) for r in rules.rules),
    )


def _intake(engine: sa.Engine, rules: RuleSet) -> None:
    intake(engine, rules, clock=lambda: NOW, batch_size=100, gap_timeout=timedelta(minutes=10))


def test_history_says_what_was_decided_after_the_rule_was_edited(
    engine: sa.Engine, shop: Shop, project: Path
) -> None:
    order = shop.order(shop.customer(email="lin@example.com"), items=[(shop.product(), 1)])
    event = shop.event("order", order, "placed", "2026-02-09 09:00")
    _intake(engine, _rules(project, {"dispatch-delayed": "v1"}))
    [row] = notifications(engine, rule="dispatch-delayed")
    assert row["rule_fingerprint"] == "v1"
    assert row["due_basis"] == (
        f"48h after order.placed #{event} at 2026-02-09 09:00 UTC, "
        "unless order.dispatched or order.cancelled happens first"
    )

    rules_file = project / "rules.yaml"
    text = rules_file.read_text()
    start = text.index("  - name: dispatch-delayed")
    edited = text[:start] + text[start:].replace("after: 48h", "after: 10s", 1)
    assert edited != text
    rules_file.write_text(edited)
    now_rules = _rules(project, {"dispatch-delayed": "v2"})
    with engine.connect() as conn:
        entries = {e.rule: e for e in history(conn, order=order, rules=now_rules, now=NOW)}

    words = entries["dispatch-delayed"].explanation
    assert "waiting until 2026-02-11 09:00 UTC (48h after order.placed" in words, words
    assert "10s" not in words
    assert "rule dispatch-delayed has changed since this was decided" in words


def test_history_of_a_customer_shows_why_they_were_left_out_of_a_fan_out(
    engine: sa.Engine, shop: Shop, project: Path
) -> None:
    roses = shop.product()
    quiet = shop.customer(email="quiet@example.com", marketing_opt_in=False)
    shop.order(quiet, items=[(roses, 1)], placed_at="2026-01-05 12:00")
    shop.event("product", roses, "price_change", "2026-02-10 09:00", RISE)
    _intake(engine, _rules(project))
    with engine.connect() as conn:
        entries = [
            e
            for e in history(conn, customer_email="QUIET@example.com", now=NOW)
            if e.rule == "price-rise-warning"
        ]
    [entry] = entries
    assert (entry.state, entry.outcome) == ("skipped", "not_opted_in")
    assert entry.explanation == "not opted in: the customer has not opted in to marketing mail"
