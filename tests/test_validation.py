"""One validation for `notifier check` and the daemon's (re)load: what `check` refuses, the
daemon refuses too, at start and on every reload (last good kept); warnings stay warnings.
Renders are bounded, and conditions are checked statically in every branch."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.live import LiveConfig
from notifier.config.settings import Settings
from notifier.errors import RulesError
from notifier.tools.checking import check_all
from tests.journey import notifications, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

RUNAWAY = (
    "{% for a in range(3000) %}{% for b in range(3000) %}{% for c in range(3000) %}"
    "{{ a }}{% endfor %}{% endfor %}{% endfor %}"
)

PRICE_RULE = """
  - name: rise-opted-in
    on: product.price_change
    when: "event.new_price > event.old_price and customer.marketing_opt_in"
    audience: { ordered_product_within: 365d }
    category: marketing
    template: price_change_warning
"""


def _append(path: Path, text: str) -> int:
    """Add `text` as new lines at the end; the 1-based number of its first line."""
    before = path.read_text(encoding="utf-8")
    path.write_text(before.rstrip("\n") + "\n" + text, encoding="utf-8")
    return len(before.rstrip("\n").splitlines()) + 1


def _check(project: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["--rules", str(project / "rules.yaml"), "--templates", str(project / "templates"), "check"],
        env={"NOTIFIER_SECRET_KEY": "test-secret"},  # the shipped rules send marketing mail
    )
    return result.exit_code, result.output


def _touch_later(path: Path) -> None:
    """Make sure the reload sees a new mtime even on a coarse clock."""
    stamp = path.stat().st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(stamp, stamp))


def test_an_undefined_name_check_refuses_is_refused_by_a_reload_too(project: Path) -> None:
    live = LiveConfig(project / "rules.yaml", project / "templates")
    subject = live.renderer.render("order_confirmation", "en", _sample()).subject
    html = project / "templates" / "order_confirmation" / "en.html"
    line = _append(html, "<p>{{ customer.nickname }}</p>")
    code, output = _check(project)
    assert code == 1 and f"{html}:{line}" in output and "nickname" in output, output

    _touch_later(html)
    outcome = live.reload_if_changed()
    assert outcome.changed and outcome.error is not None
    assert f"{html}:{line}" in outcome.error and "nickname" in outcome.error, outcome.error
    # The last good templates stay in force.
    assert live.renderer.render("order_confirmation", "en", _sample()).subject == subject


def test_start_up_with_a_refused_template_stops_with_file_line_and_reason(project: Path) -> None:
    html = project / "templates" / "order_confirmation" / "en.html"
    line = _append(html, "<p>{{ customer.nickname }}</p>")
    with pytest.raises(RulesError) as caught:
        LiveConfig(project / "rules.yaml", project / "templates")
    assert any(str(p).startswith(f"{html}:{line}: ") and "nickname" in str(p) for p in caught.value.problems)


def test_a_runaway_loop_is_refused_by_check_and_reload_in_plain_words_without_hanging(project: Path) -> None:
    live = LiveConfig(project / "rules.yaml", project / "templates")
    html = project / "templates" / "order_dispatched" / "zh-TW.html"
    _append(html, RUNAWAY)
    started = time.monotonic()
    problems, _ = check_all(project / "rules.yaml", project / "templates")
    assert time.monotonic() - started < 30
    [problem] = [p for p in problems if "limit" in p.message]
    assert problem.path == html.as_posix()
    assert "iteration limit" in problem.message and "locale zh-TW" in problem.message, problem

    _touch_later(html)
    outcome = live.reload_if_changed()
    assert outcome.error is not None and "iteration limit" in outcome.error and str(html) in outcome.error


def test_check_says_which_limit_a_template_goes_over(project: Path) -> None:
    html = project / "templates" / "order_delivered" / "en.html"
    loop = "{% for i in range(90000) %}{{ 'sixteen letters!' }}{% endfor %}"
    html.write_text(html.read_text().replace("{% block content %}", "{% block content %}" + loop, 1))
    code, output = _check(project)
    assert code == 1 and str(html) in output and "the size limit for one part" in output, output


def test_a_missing_translation_stays_a_warning_for_check_and_reload(project: Path) -> None:
    live = LiveConfig(project / "rules.yaml", project / "templates")
    folder = project / "templates" / "order_delivered"
    for part in ("zh-TW.subject.txt", "zh-TW.html", "zh-TW.txt"):
        (folder / part).unlink(missing_ok=True)
    problems, summary = check_all(project / "rules.yaml", project / "templates")
    assert problems == []
    assert any("warning:" in line and "no zh-TW version" in line for line in summary), summary
    _touch_later(folder)
    _touch_later(project / "rules.yaml")
    outcome = live.reload_if_changed()
    assert outcome.changed and outcome.error is None
    assert "zh-TW" not in live.renderer.locales_of("order_delivered")


def test_a_customer_in_an_audience_condition_is_refused_in_every_branch(project: Path) -> None:
    """The sample evaluation of `a and customer.x` stops at a false `a`; the static check
    does not: check (and so start-up and reload) name the file, the line and the reason."""
    rules = project / "rules.yaml"
    line = _append(rules, PRICE_RULE.lstrip("\n")) + 2
    problems, _ = check_all(rules, project / "templates")
    assert [(p.path, p.line) for p in problems] == [(str(rules), line)], problems
    assert "customer" in problems[0].message and "there is no customer yet" in problems[0].message
    with pytest.raises(RulesError):
        LiveConfig(rules, project / "templates")


def test_a_name_in_a_branch_the_sample_never_takes_is_refused(project: Path) -> None:
    """The sample's carrier is DPD, so its evaluation never reaches `order.totl`."""
    rules = project / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    anchor = "  - name: order-dispatched\n    on: order.dispatched\n"
    assert anchor in text
    rules.write_text(
        text.replace(anchor, anchor + "    when: \"event.carrier == 'DPD' or order.totl > 10\"\n", 1),
        encoding="utf-8",
    )
    problems, _ = check_all(rules, project / "templates")
    assert any("order.totl" in p.message and "supply no order.totl" in p.message for p in problems), problems


def _sample() -> dict[str, object]:
    from notifier.compose.samples import sample_context

    return sample_context("order.placed", "en")


@freeze_time("2026-02-10 09:05", real_asyncio=True)
def test_at_run_time_a_render_over_a_bound_fails_that_message_and_the_rest_flows(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    """A loop only real data enters (so `check` and the start-up accept the template): the
    message fails as render_failed, saying which limit, and the other confirmation goes."""
    html = Path(settings.templates) / "order_confirmation" / "en.html"
    loop = (
        '{% if customer.email == "big@example.com" %}{% for a in range(1000) %}'
        "{% for b in range(1000) %}{% endfor %}{% endfor %}{% endif %}"
    )
    html.write_text(html.read_text().replace("{% block content %}", "{% block content %}" + loop, 1))
    big = shop.order(shop.customer(email="big@example.com", timezone="UTC"))
    small = shop.order(shop.customer(email="small@example.com", timezone="UTC"))
    for order in (big, small):
        shop.event("order", order, "placed", "2026-02-10 09:00")
    code, result = run(settings)
    assert code == 0 and result.sent == 1 and result.failed == 1
    [failed] = notifications(engine, rule="order-confirmation", subject_id=big)
    assert failed["state"] == "failed" and failed["reason"] == "render_failed"
    assert "en.html" in failed["detail"] and "the iteration limit" in failed["detail"], failed["detail"]
    assert [m.rcpt_tos for m in smtp_server.messages] == [("small@example.com",)]
