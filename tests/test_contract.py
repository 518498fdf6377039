"""The contract between rules and templates: what each trigger supplies, checked statically.

Ops edit rules.yaml and marketing edits templates independently; `notifier check` must catch a
template using something its rule's trigger cannot supply, with the file and line, including
breaks that rendering with sample data never sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from notifier.cli import app
from notifier.compose.contract import check_contract, locale_report
from notifier.compose.rendering import Renderer
from notifier.compose.samples import TRIGGERS, sample_context
from notifier.config.live import load_checked
from notifier.config.validate import validate
from notifier.core.locale import LOCALES
from notifier.core.supply import SUPPLIES
from notifier.core.vocabulary import VOCABULARY
from notifier.db.engine import make_engine
from notifier.db.locales import customer_locales
from notifier.errors import Problem
from notifier.tools.checking import check_all

ROOT = Path(__file__).resolve().parent.parent


def _insert(path: Path, after: str, text: str) -> int:
    """Put `text` on a new line after the first line containing `after`; return its line number."""
    lines = path.read_text(encoding="utf-8").split("\n")
    index = next(i for i, line in enumerate(lines) if after in line)
    lines.insert(index + 1, text)
    path.write_text("\n".join(lines), encoding="utf-8")
    return index + 2


def _contract(project: Path) -> list[Problem]:
    """The contract's problems alone (the whole validation refuses the files too)."""
    rules = validate(project / "rules.yaml", project / "templates").rules
    assert rules is not None
    return check_contract(rules, project / "templates")


def _about(problems: list[Problem], reference: str) -> list[Problem]:
    return [p for p in problems if p.message.startswith(f"`{reference}`")]


def _add_rule(project: Path, text: str) -> None:
    path = project / "rules.yaml"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


# -- the contract itself ------------------------------------------------------------------


def test_event_attributes_come_from_the_vocabulary() -> None:
    for event_type, keys in VOCABULARY.items():
        event = SUPPLIES[event_type].names["event"]
        assert set(event.fields) == {"id", "type", "occurred_at", "data", *keys}, event_type
        assert all(event.fields[key].nullable for key in keys), event_type


def test_what_each_kind_of_event_supplies() -> None:
    order, case, product = SUPPLIES["order.placed"], SUPPLIES["case.opened"], SUPPLIES["product.price_change"]
    assert {"customer", "order", "items", "event", "links", "brand"} <= order.present
    assert order.absent == {"case", "product", "reply_by"}
    assert case.optional == {"order"} and {"case", "reply_by", "customer"} <= case.present
    assert product.absent == {"order", "case", "reply_by"} and {"product", "customer"} <= product.present


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_samples_follow_the_contract(trigger: str) -> None:
    """Sample data and the contract describe the same context, key for key."""
    sample = sample_context(trigger)
    supply = SUPPLIES[trigger]
    assert set(sample) == set(supply.names)
    assert {name for name, value in sample.items() if value is None} == supply.absent
    for name, shape in supply.names.items():
        if shape.kind == "record" and not shape.open and sample[name] is not None:
            assert set(sample[name]) == set(shape.fields), name
    if sample["items"]:
        assert set(sample["items"][0]) == set(supply.names["items"].item.fields)  # type: ignore[union-attr]


def test_shipped_rules_and_templates_have_no_findings() -> None:
    rules, renderer = load_checked(ROOT / "rules.yaml", ROOT / "templates")
    assert check_contract(rules, ROOT / "templates") == []
    assert locale_report(rules, renderer, ROOT / "templates") == ([], [])
    problems, summary = check_all(ROOT / "rules.yaml", ROOT / "templates")
    assert problems == []
    assert any("contract:" in line and "0 problem(s), 0 warning(s)" in line for line in summary), summary


# -- breaks the contract reports -----------------------------------------------------------


def test_an_event_key_the_trigger_does_not_have_is_reported_with_file_and_line(project: Path) -> None:
    template = project / "templates" / "order_dispatched" / "en.html"
    line = _insert(template, "<h2>What happens next</h2>", "<p>Tracking: {{ event.tracking_nr }}</p>")
    found = _about(_contract(project), "event.tracking_nr")
    assert [(p.path, p.line) for p in found] == [(template.as_posix(), line)]
    assert "order.dispatched events supply no event.tracking_nr" in found[0].message
    assert "tracking_number" in found[0].message  # what it does have
    assert "rule 'order-dispatched'" in found[0].message


def test_an_order_rule_using_a_case_template_is_reported(project: Path) -> None:
    _add_rule(project, "\n  - name: welcome-case\n    on: order.placed\n    template: case_received\n")
    problems = _contract(project)
    html = project / "templates" / "case_received" / "en.html"
    subject = _about(problems, "case.subject")
    assert (html.as_posix(), 8) in {(p.path, p.line) for p in subject}
    assert all("case is None for order.placed events" in p.message for p in subject)
    assert all("rule 'welcome-case'" in p.message for p in problems), problems
    assert not any("reply_by" in p.message for p in problems)  # guarded by {% if reply_by %}
    # The rendering half of `check` renders case_received as its first rule's (case.opened) and
    # passes: every problem is the contract's, about the new rule.
    all_problems, _ = check_all(project / "rules.yaml", project / "templates")
    assert all_problems and all("'welcome-case'" in p.message for p in all_problems)


def test_a_branch_sample_data_never_enters_is_still_checked(project: Path) -> None:
    template = project / "templates" / "order_dispatched" / "en.html"
    line = _insert(
        template,
        "<h2>What happens next</h2>",
        "{% if not event.tracking_url %}<p>Ask {{ event.carrier.nickname }} for {{ event.tracking_nr }}</p>"
        "{% endif %}",
    )
    # Rendering with sample data passes: the sample always has a tracking URL.
    rendered = Renderer(project / "templates").render(
        "order_dispatched", "en", sample_context("order.dispatched")
    )
    assert "Ask" not in rendered.html
    problems = _contract(project)
    nickname = _about(problems, "event.carrier.nickname")
    assert {(p.path, p.line) for p in nickname} == {(template.as_posix(), line)}
    assert any("event.carrier is text, which has no attribute 'nickname'" in p.message for p in nickname)
    assert [p.line for p in _about(problems, "event.tracking_nr")] == [line]


def test_order_of_a_case_may_be_none_unless_guarded(project: Path) -> None:
    template = project / "templates" / "case_received" / "en.html"
    _insert(template, "<h2>What happens next</h2>", "{% if order %}<p>{{ order.total|money }}</p>{% endif %}")
    _insert(template, "<h2>What happens next</h2>", "<p>{{ order.total|money if order }}</p>")
    _insert(
        template, "<h2>What happens next</h2>", "{% if not order %}-{% else %}{{ order.number }}{% endif %}"
    )
    unguarded = _insert(template, "<h2>What happens next</h2>", "<p>{{ order.total|money }}</p>")
    found = _about(problems := _contract(project), "order.total") + _about(problems, "order.number")
    assert [(p.path, p.line) for p in found] == [(template.as_posix(), unguarded)]
    assert "order may be None for case.opened events" in found[0].message
    assert "guard with {% if order %}" in found[0].message
    # The sample case has an order, so rendering it passes.
    Renderer(project / "templates").render("case_received", "en", sample_context("case.opened"))


def test_a_product_rule_template_using_the_order_is_reported(project: Path) -> None:
    template = project / "templates" / "price_change_warning" / "en.html"
    line = _insert(template, "<h1>", "<p>Your last order: {{ order.number }}</p>")
    found = _about(_contract(project), "order.number")
    assert [(p.path, p.line) for p in found] == [(template.as_posix(), line)]
    assert "order is None for product.price_change events" in found[0].message


def test_a_shared_file_must_suit_every_trigger_that_includes_it(project: Path) -> None:
    footer = project / "templates" / "_footer.txt"
    line = _insert(footer, "brand.name", "Case {{ case.number }}")
    found = _about(_contract(project), "case.number")
    assert found and {(p.path, p.line) for p in found} == {(footer.as_posix(), line)}
    triggers = {p.message.split(" events")[0].rsplit(" ", 1)[-1] for p in found}
    assert "order.placed" in triggers and "product.price_change" in triggers
    assert not any(t.startswith("case.") for t in triggers)  # case events have a case
    assert any("used by order_confirmation/en.txt" in p.message for p in found)


def test_values_passed_to_a_macro_are_followed(project: Path) -> None:
    template = project / "templates" / "case_received" / "en.html"
    _insert(template, "<h2>What happens next</h2>", "{{ m.items_table(items, order) }}")
    _insert(
        template, "<h2>What happens next</h2>", "{% if order %}{{ m.items_table(items, order) }}{% endif %}"
    )
    macros = (project / "templates" / "_macros.html").as_posix()
    found = [p for p in _contract(project) if p.path == macros]
    assert {p.line for p in found} == {18, 23}, found
    assert all("order may be None for case.opened events" in p.message for p in found)
    assert all("used by case_received/en.html" in p.message for p in found)


def test_local_names_loops_macros_and_explicit_guards_are_understood(project: Path) -> None:
    template = project / "templates" / "order_confirmation" / "en.html"
    block = """\
{% set ns = namespace(count=0) %}
{% for item in items %}{% set ns.count = ns.count + item.quantity %}
{{ loop.index }}. {{ item.name }}{% endfor %}
{% macro line(label, value) %}{{ label }}: {{ value }} {{ caller() }}{% endmacro %}
{% call line("Total", order.total) %}{{ order.number }}{% endcall %}
{% with first = items|first %}{{ first.name }}{% endwith %}
{% if event.carrier is defined %}{{ event.carrier }}{% endif %}{{ event.reason|default("") }}
{{ m.button(links.unsubscribe, "Unsubscribe") if links.unsubscribe }} {{ ns.count }} {{ range(3)|list }}"""
    _insert(template, "<h2>What happens next</h2>", block)
    assert _contract(project) == []
    problems, _ = check_all(project / "rules.yaml", project / "templates")
    assert problems == []  # and it renders
    line = _insert(
        template, "<h2>What happens next</h2>", "{% for item in items %}{{ item.nmae }}{% endfor %}"
    )
    found = _about(_contract(project), "item.nmae")
    assert [p.line for p in found] == [line]
    assert "(item has product_id, sku, name" in found[0].message


def test_unknown_names_and_macros_are_reported(project: Path) -> None:
    template = project / "templates" / "order_confirmation" / "en.txt"
    line = _insert(template, "WHAT HAPPENS NEXT", "{{ shipping_fee }} {{ m.no_such_macro() }}")
    problems = _contract(project)
    assert [p.line for p in _about(problems, "shipping_fee")] == [line]
    assert "no such variable" in _about(problems, "shipping_fee")[0].message


# -- locales -------------------------------------------------------------------------------


def test_a_locale_customers_use_but_the_template_lacks_is_a_warning(project: Path) -> None:
    for part in ("zh-TW.subject.txt", "zh-TW.html", "zh-TW.txt"):
        (project / "templates" / "order_dispatched" / part).unlink()
    problems, summary = check_all(project / "rules.yaml", project / "templates", locales={"en", "zh_TW"})
    assert problems == []
    warnings = [line for line in summary if line.startswith("  warning:")]
    shown = (project / "templates" / "order_dispatched").as_posix()
    assert warnings == [
        f"  warning: {shown}: no zh-TW version, so en is sent instead "
        "[customers use zh_TW: rule 'order-dispatched']"
    ]
    _, summary = check_all(project / "rules.yaml", project / "templates", locales={"en", "zh-CN"})
    assert not [line for line in summary if line.startswith("  warning:")]


def test_a_rule_template_without_english_is_a_problem(project: Path) -> None:
    rules, _ = load_checked(project / "rules.yaml", project / "templates")
    for part in ("en.subject.txt", "en.html", "en.txt"):
        (project / "templates" / "order_delivered" / part).unlink()
    # A renderer that sees the folders as they are now (the daemon's keeps them as checked).
    renderer = Renderer(project / "templates")
    problems, _ = locale_report(rules, renderer, project / "templates", set(LOCALES))
    assert [p.path for p in problems] == [(project / "templates" / "order_delivered").as_posix()]
    assert "no 'en' version" in problems[0].message and "order-delivered" in problems[0].message


def test_customer_locales_come_from_the_database(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        for email, locale in [
            ("a@example.com", "zh_TW"),
            ("b@example.com", "en"),
            ("c@example.com", "zh_TW"),
        ]:
            conn.execute(
                sa.text(
                    "INSERT INTO customers (email, name, locale, timezone, marketing_opt_in) "
                    "VALUES (:email, 'A', :locale, 'UTC', false)"
                ),
                {"email": email, "locale": locale},
            )
    engine.dispose()
    assert customer_locales(sqlite_url) == {"zh_TW", "en"}
    missing = tmp_path / "nothing-here.db"
    assert customer_locales(f"sqlite:///{missing}") is None
    assert not missing.exists()  # looking does not create a database
    assert customer_locales("postgresql://nobody@127.0.0.1:1/shop") is None


# -- the command ---------------------------------------------------------------------------


def test_check_command_fails_on_a_contract_break_rendering_misses(project: Path) -> None:
    template = project / "templates" / "order_dispatched" / "en.html"
    line = _insert(
        template,
        "<h2>What happens next</h2>",
        "{% if not event.tracking_url %}<p>Ask {{ event.carrier.nickname }}</p>{% endif %}",
    )
    result = CliRunner().invoke(
        app, ["--rules", str(project / "rules.yaml"), "--templates", str(project / "templates"), "check"]
    )
    assert result.exit_code == 1, result.output
    assert f"{template.as_posix()}:{line}: `event.carrier.nickname`" in result.output
    assert "order_dispatched: rendered en, zh-CN, zh-TW" in result.output  # rendering alone passed
