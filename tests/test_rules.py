"""rules.yaml: the shipped file and the SPEC example load; every broken file is rejected
with its file, line and a plain-words reason."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from notifier.cli import app
from notifier.compose.samples import sample_context
from notifier.config.live import load_checked
from notifier.config.rules_file import load_rules
from notifier.core.rules import Category
from notifier.errors import RulesError

CASES = Path(__file__).parent / "rules_cases"
ROOT = Path(__file__).resolve().parent.parent

SPEC_EXAMPLE = """\
version: 1
defaults:
  from: "Blossom & Co <care@blossom.example>"
  quiet_hours: { start: "21:00", end: "08:00" }   # customer's local time; marketing only
rules:
  - name: order-confirmation
    on: order.placed
    template: order_confirmation
  - name: dispatch-delayed
    on: order.placed
    unless: [order.dispatched, order.cancelled]   # absence rule
    after: 48h
    template: dispatch_delayed
  - name: price-rise-warning
    on: product.price_change
    when: "event.new_price > event.old_price"     # condition over event/order/customer/case/product
    send_at: "event.effective_at - 21d"
    audience: { ordered_product_within: 365d }
    category: marketing
    template: price_change_warning
  - name: big-order-thanks
    on: order.delivered
    when: "order.total >= 200"
    delay: 2h
    enabled: false
    template: thank_you
"""


def _load(path: Path):  # type: ignore[no-untyped-def]
    existing = {p.name for p in (ROOT / "templates").iterdir() if p.is_dir()}
    return load_rules(path, template_exists=existing.__contains__, check_context=sample_context)


def test_spec_example_is_valid_as_written(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(SPEC_EXAMPLE)
    rules = _load(path)
    assert [r.name for r in rules.rules] == [
        "order-confirmation",
        "dispatch-delayed",
        "price-rise-warning",
        "big-order-thanks",
    ]
    delayed = rules.by_name("dispatch-delayed")
    assert delayed is not None and delayed.after == timedelta(hours=48)
    assert delayed.unless == ("order.dispatched", "order.cancelled")
    warning = rules.by_name("price-rise-warning")
    assert warning is not None and warning.category is Category.MARKETING
    assert warning.send_at is not None and warning.send_at.offset == -timedelta(days=21)
    assert warning.audience is not None and warning.audience.ordered_product_within == timedelta(days=365)
    thanks = rules.by_name("big-order-thanks")
    assert thanks is not None and not thanks.enabled and thanks.delay == timedelta(hours=2)
    assert rules.defaults.quiet_hours is not None
    assert rules.defaults.quiet_hours.start == time(21, 0) and rules.defaults.quiet_hours.end == time(8, 0)
    assert rules.enabled_on("order.delivered") == ()


def test_shipped_rules_and_templates_load_together() -> None:
    rules, renderer = load_checked(ROOT / "rules.yaml", ROOT / "templates")
    for rule in rules.rules:
        assert renderer.has_template(rule.template), rule.template
    assert rules.defaults.max_age[Category.TRANSACTIONAL] == timedelta(days=2)


@pytest.mark.parametrize(
    ("case", "line", "words"),
    [
        ("yaml_syntax", 7, "YAML"),
        ("unknown_key", 7, "unknown key 'tempalte'"),
        ("unknown_event", 6, "unknown event 'order.shipped'"),
        ("missing_template", 10, "template 'welcome_aboard' not found"),
        ("bad_expression", 7, "not a valid expression"),
        ("unknown_name_in_expression", 7, "totl"),
        ("bad_duration", 7, "'2 hours' is not a duration"),
        ("unless_without_after", 5, "unless needs after"),
        ("bad_version", 1, "version must be 1"),
        ("duplicate_name", 8, "used twice"),
        ("bad_category", 7, "must be transactional or marketing"),
        ("bad_to", 7, "to:"),
        ("unknown_default_key", 4, "unknown key 'quite_hours'"),
        ("audience_on_order", 7, "audience only applies to product events"),
        ("audience_when_customer", 7, "there is no customer yet"),
        # The sample's price falls, so evaluating it never reaches `customer`: found statically.
        ("audience_when_customer_after_and", 7, "`customer.marketing_opt_in`: customer is None"),
        ("bad_cron", 6, "schedule:"),
        ("schedule_and_on", 5, "either on (an event) or schedule"),
        ("bad_calendar", 4, "'funday' is not a weekday"),
        ("business_typo", 8, "'2 busines days' is not a duration"),
    ],
)
def test_broken_rules_name_file_line_and_reason(case: str, line: int, words: str) -> None:
    path = CASES / f"{case}.yaml"
    with pytest.raises(RulesError) as caught:
        _load(path)
    messages = [str(p) for p in caught.value.problems]
    assert any(m.startswith(f"{path}:{line}: ") and words in m for m in messages), messages


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        (CASES / "unknown_key.yaml").read_text() + "    delay: soon\n"
        "  - name: other\n    on: order.nope\n    template: order_confirmation\n"
    )
    with pytest.raises(RulesError) as caught:
        _load(path)
    found = {(p.line, p.message.split(":")[0]) for p in caught.value.problems}
    messages = " | ".join(p.message for p in caught.value.problems)
    assert {p.line for p in caught.value.problems} >= {5, 7, 8, 10}, messages
    assert "'soon' is not a duration" in messages and "order.nope" in messages, found


@pytest.mark.parametrize(
    "case", ["yaml_syntax", "unknown_key", "unknown_event", "missing_template", "bad_expression"]
)
def test_check_command_exits_non_zero_with_file_line_reason(case: str) -> None:
    path = CASES / f"{case}.yaml"
    result = CliRunner().invoke(app, ["--rules", str(path), "--templates", str(ROOT / "templates"), "check"])
    assert result.exit_code == 1
    assert f"{path}:" in result.output


def test_check_command_passes_on_shipped_files() -> None:
    result = CliRunner().invoke(
        app,
        ["--rules", str(ROOT / "rules.yaml"), "--templates", str(ROOT / "templates"), "check"],
        env={"NOTIFIER_SECRET_KEY": "test-secret"},  # the shipped rules send marketing mail
    )
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "order_confirmation: rendered en, zh-CN, zh-TW" in result.output


# -- fingerprints ---------------------------------------------------------------------------


FINGERPRINTED = """\
version: 1
defaults:
  from: "Shop <care@shop.example>"
  quiet_hours: { start: "21:00", end: "08:00" }
calendar: { timezone: Europe/London }
rules:
  - name: confirm
    on: order.placed
    template: order_confirmation
  - name: late
    on: order.placed
    unless: [order.dispatched]
    after: 2 business days
    template: dispatch_delayed
  - name: rise
    on: product.price_change
    when: "event.new_price > event.old_price"
    audience: { ordered_product_within: 365d }
    category: marketing
    template: price_change_warning
"""


def _fingerprints(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return {rule.name: rule.fingerprint for rule in _load(path).rules}


def test_the_same_rules_give_the_same_fingerprints(tmp_path: Path) -> None:
    first = _fingerprints(tmp_path, FINGERPRINTED)
    assert all(len(value) == 12 for value in first.values()) and len(set(first.values())) == 3, first
    assert _fingerprints(tmp_path, FINGERPRINTED) == first
    # Comments, order of keys and position in the file are not the rule's definition.
    moved = FINGERPRINTED.replace(
        "  - name: confirm\n    on: order.placed\n    template: order_confirmation\n", ""
    ) + "  - name: confirm  # first message\n    template: order_confirmation\n    on: order.placed\n"
    assert _fingerprints(tmp_path, moved) == first


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ("after: 2 business days", "after: 3 business days", {"late"}),
        ("event.new_price > event.old_price", "event.new_price >= event.old_price", {"rise"}),
        ("template: order_confirmation", "template: thank_you", {"confirm"}),
        ('from: "Shop <care@shop.example>"', 'from: "Shop <hi@shop.example>"', {"confirm", "late", "rise"}),
        ('start: "21:00"', 'start: "22:00"', {"rise"}),  # quiet hours: marketing only
        ("timezone: Europe/London", "timezone: Asia/Taipei", {"late"}),  # the calendar: business time only
        ("    category: marketing\n", "    category: marketing\n    max_age: 3d\n", {"rise"}),
    ],
)
def test_a_change_to_a_rule_or_the_defaults_it_uses_changes_its_fingerprint(
    tmp_path: Path, old: str, new: str, changed: set[str]
) -> None:
    before = _fingerprints(tmp_path, FINGERPRINTED)
    assert old in FINGERPRINTED
    after = _fingerprints(tmp_path, FINGERPRINTED.replace(old, new, 1))
    assert {name for name in before if before[name] != after[name]} == changed
