"""One rule cannot stop intake: a rule that raises for an event is that rule-and-event's
failure (rule_error, with the rule, its file:line and the error in words), counted in `status`
and /metrics, and every other rule and event in the batch is planned."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.live import load_checked
from notifier.core.conditions import compile_expression
from notifier.core.rules import RuleSet
from notifier.errors import RulesError
from notifier.run import metrics
from notifier.run.intake import intake
from notifier.tools.status import status
from tests.journey import notifications
from tests.shop import Shop, ts

NOW = ts("2026-02-10 09:30")
RISE = {"old_price": "59.00", "new_price": "65.00", "currency": "USD", "effective_at": "2026-04-01 00:00:00"}


def _rules(project: Path, old: str, new: str) -> RuleSet:
    """The shipped rules with one condition changed after `check`: `check` (and so the daemon's
    reload) refuses this one statically, so it stands for a condition that fails only at run time."""
    rules_file = project / "rules.yaml"
    loaded = load_checked(rules_file, project / "templates")[0]
    rules_file.write_text(rules_file.read_text().replace(old, new))
    with pytest.raises(RulesError, match="customer is None"):
        load_checked(rules_file, project / "templates")
    source = new.removeprefix('when: "').removesuffix('"')
    return replace(
        loaded,
        rules=tuple(
            replace(rule, when=compile_expression(source))
            if rule.when is not None and rule.when.source in old
            else rule
            for rule in loaded.rules
        ),
    )


def _intake(engine: sa.Engine, rules: RuleSet) -> tuple[int, int]:
    result = intake(engine, rules, clock=lambda: NOW, batch_size=100, gap_timeout=timedelta(minutes=10))
    return result.events, result.planned


def _errors(rule: str) -> float:
    value = metrics.REGISTRY.get_sample_value("notifier_rule_errors_total", {"rule": rule})
    return value or 0.0


def test_an_audience_rule_naming_customer_fails_alone_and_intake_goes_on(
    engine: sa.Engine, shop: Shop, project: Path
) -> None:
    rules = _rules(
        project,
        'when: "event.new_price > event.old_price"',
        'when: "event.new_price > event.old_price and customer.marketing_opt_in"',
    )
    roses = shop.product()
    buyer = shop.customer(email="lin@example.com", marketing_opt_in=True)
    order = shop.order(buyer, items=[(roses, 1)], placed_at="2026-01-05 12:00")
    shop.event("product", roses, "price_change", "2026-02-10 09:00", RISE)
    shop.event("order", order, "placed", "2026-02-10 09:05")
    before = _errors("price-rise-warning")

    events, _ = _intake(engine, rules)

    assert events == 2
    [confirmation] = notifications(engine, rule="order-confirmation")
    assert confirmation["state"] == "queued" and confirmation["recipient"] == "lin@example.com"
    [failed] = notifications(engine, rule="price-rise-warning")
    assert (failed["state"], failed["reason"]) == ("failed", "rule_error")
    rule = rules.by_name("price-rise-warning")
    assert rule is not None
    detail = failed["detail"]
    assert f"rule price-rise-warning ({rules.path}:{rule.line})" in detail, detail
    assert "customer.marketing_opt_in" in detail and "'None' has no attribute 'marketing_opt_in'" in detail
    assert "Traceback" not in detail
    assert _errors("price-rise-warning") == before + 1

    # A rerun (the cursor lost) stores nothing twice, and counts nothing twice.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE notifier_cursors SET position = 0"))
    assert _intake(engine, rules) == (2, 0)
    assert len(notifications(engine, rule="price-rise-warning")) == 1
    assert _errors("price-rise-warning") == before + 1

    with engine.connect() as conn:
        report = status(conn, NOW)
    assert report.rule_errors == {"price-rise-warning": 1}
    assert report.rule_errors_line == "rule errors: 1 (price-rise-warning: 1)"
    assert report.by_reason["failed"] == {"rule_error": 1}
    assert report.as_dict()["rule_errors"] == {"price-rise-warning": 1}
    url = engine.url.render_as_string(hide_password=False)
    shown = CliRunner().invoke(app, ["--database-url", url, "status"])
    assert shown.exit_code == 0, shown.output
    assert "rule errors: 1 (price-rise-warning: 1)" in shown.output


def test_a_rule_whose_condition_raises_for_one_event_leaves_the_others_planned(
    engine: sa.Engine, shop: Shop, project: Path
) -> None:
    # `check` refuses this condition on its sample data; a rule it cannot foresee fails the same way.
    loaded = load_checked(project / "rules.yaml", project / "templates")[0]
    rules = replace(
        loaded,
        rules=tuple(
            replace(rule, when=compile_expression("order.total > 0 and order.nosuch"))
            if rule.name == "order-confirmation"
            else rule
            for rule in loaded.rules
        ),
    )
    customer = shop.customer()
    product = shop.product()
    orders = [shop.order(customer, items=[(product, 1)]) for _ in range(3)]
    for order in orders:
        shop.event("order", order, "placed", "2026-02-10 09:00")

    events, planned = _intake(engine, rules)

    # Three failed confirmations; three dispatch-delayed checks and three promise-day apologies.
    assert events == 3 and planned == 9
    failed = notifications(engine, rule="order-confirmation")
    assert [(row["state"], row["reason"]) for row in failed] == [("failed", "rule_error")] * 3
    assert "when: order.total > 0 and order.nosuch raised an error" in failed[0]["detail"]
    assert "has no attribute 'nosuch'" in failed[0]["detail"]
    waiting = notifications(engine, rule="dispatch-delayed")
    assert [row["state"] for row in waiting] == ["queued"] * 3
    assert all(row["due_basis"].startswith("48h after order.placed #") for row in waiting)
