"""The case messages beyond the acknowledgement and the follow-up: the overdue update to
the customer and its notice to the team, "we have replied", "marked as solved", and the
team's notice when a customer says a case is not solved."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from notifier.compose.mail import Rendered
from notifier.compose.rendering import Renderer
from notifier.compose.samples import SAMPLE_TRIGGER_OF_TEMPLATE, TRIGGERS, sample_context
from notifier.core.locale import LOCALES

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CUSTOMER_MESSAGES = ["case_overdue_customer", "case_agent_replied", "case_resolved"]
TEAM_NOTICES = ["case_overdue_team", "case_not_solved_team"]
CASE_NUMBER = "2087"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


def context_for(template: str, locale: str, **changes: Any) -> dict[str, Any]:
    """The sample context of a template, some values changed ("case__priority": path)."""
    context = sample_context(SAMPLE_TRIGGER_OF_TEMPLATE[template], locale)
    for path, value in changes.items():
        holder = context
        *parents, key = path.split("__")
        for parent in parents:
            holder = holder[parent]
        holder[key] = value
    return context


def render(renderer: Renderer, template: str, locale: str, **changes: Any) -> Rendered:
    return renderer.render(template, locale, context_for(template, locale, **changes))


def everything(rendered: Rendered) -> str:
    return rendered.subject + "\n" + html.unescape(rendered.html) + "\n" + rendered.text


def test_the_new_case_triggers_and_templates_have_samples(renderer: Renderer) -> None:
    assert "case.not_solved" in TRIGGERS
    assert SAMPLE_TRIGGER_OF_TEMPLATE["case_overdue_customer"] == "case.opened"
    assert SAMPLE_TRIGGER_OF_TEMPLATE["case_overdue_team"] == "case.opened"
    assert SAMPLE_TRIGGER_OF_TEMPLATE["case_agent_replied"] == "case.agent_replied"
    assert SAMPLE_TRIGGER_OF_TEMPLATE["case_resolved"] == "case.resolved"
    assert SAMPLE_TRIGGER_OF_TEMPLATE["case_not_solved_team"] == "case.not_solved"
    for template in CUSTOMER_MESSAGES:
        assert renderer.locales_of(template) == list(LOCALES)
    for template in TEAM_NOTICES:
        assert renderer.locales_of(template) == ["en"]
    assert renderer.check_syntax() == []


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("trigger", [t for t in TRIGGERS if t.startswith("case.")])
def test_case_samples_promise_a_reply_time_and_come_after_the_opening(trigger: str, locale: str) -> None:
    context = sample_context(trigger, locale)
    case = context["case"]
    assert case["priority"] in {"low", "normal", "high", "urgent"}
    assert context["reply_by"] is not None and context["reply_by"].tzinfo is not None
    assert context["now"] > case["opened_at"]
    assert context["now"] > context["event"]["occurred_at"]


@pytest.mark.parametrize("locale", LOCALES)
def test_the_not_solved_sample_carries_the_customers_comment(locale: str) -> None:
    event = sample_context("case.not_solved", locale)["event"]
    assert event["type"] == "case.not_solved"
    assert event["comment"] and event["data"] == {"comment": event["comment"]}
    assert sample_context("case.not_solved", "en")["event"]["comment"] == "The roses are still wilted."


# -- every new message in each of its locales ----------------------------------------

RENDERINGS = [(t, locale) for t in CUSTOMER_MESSAGES for locale in LOCALES]
RENDERINGS += [(t, "en") for t in TEAM_NOTICES]


@pytest.mark.parametrize(("template", "locale"), RENDERINGS)
def test_each_message_renders_with_the_case_number_in_subject_and_body(
    renderer: Renderer, template: str, locale: str
) -> None:
    rendered = render(renderer, template, locale)
    context = context_for(template, locale)

    assert rendered.subject and "\n" not in rendered.subject and len(rendered.subject) < 80
    assert CASE_NUMBER in rendered.subject
    assert f"<strong>{CASE_NUMBER}</strong>" in rendered.html
    assert CASE_NUMBER in rendered.text
    assert f'<html lang="{locale}">' in rendered.html
    assert rendered.text.endswith("\n") and "<" not in rendered.text
    assert context["customer"]["name"] in rendered.text
    assert context["case"]["subject"] in rendered.text
    for part in (rendered.subject, rendered.html, rendered.text):
        assert "None" not in part and "{{" not in part and "{%" not in part


@pytest.mark.parametrize("template", TEAM_NOTICES)
@pytest.mark.parametrize("wanted", ["zh-CN", "zh-TW"])
def test_team_notices_are_in_english_whatever_the_customers_locale(
    renderer: Renderer, template: str, wanted: str
) -> None:
    chosen = renderer.choose_locale(template, wanted)
    assert chosen == "en"
    rendered = renderer.render(template, chosen, sample_context(SAMPLE_TRIGGER_OF_TEMPLATE[template], wanted))
    assert '<html lang="en">' in rendered.html
    assert CASE_NUMBER in rendered.subject
    assert sample_context("case.opened", wanted)["customer"]["name"] in rendered.text


@pytest.mark.parametrize("template", CUSTOMER_MESSAGES)
def test_zh_tw_is_traditional_and_zh_cn_is_simplified(renderer: Renderer, template: str) -> None:
    tw = everything(render(renderer, template, "zh-TW"))
    cn = everything(render(renderer, template, "zh-CN"))

    assert "案件" in tw and "處理" in tw
    assert "处理" not in tw and "服务单" not in tw and "这" not in tw
    assert "服务单" in cn and "处理" in cn
    assert "處理" not in cn and "這" not in cn and "們" not in cn


# -- the overdue update --------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "apology", "senior"),
    [("en", "sorry", "senior member of our team"), ("zh-CN", "抱歉", "资深"), ("zh-TW", "抱歉", "資深")],
)
def test_overdue_update_apologises_and_says_who_will_write(
    renderer: Renderer, locale: str, apology: str, senior: str
) -> None:
    rendered = render(renderer, "case_overdue_customer", locale)
    for part in (html.unescape(rendered.html), rendered.text):
        assert apology in part and senior in part


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("reply_by", ["sample", None])
def test_overdue_update_never_asks_the_customer_to_call(
    renderer: Renderer, locale: str, reply_by: str | None
) -> None:
    changes = {} if reply_by == "sample" else {"reply_by": None}
    text = everything(render(renderer, "case_overdue_customer", locale, **changes)).lower()
    assert "call" not in text and "phone" not in text
    assert "电话" not in text and "致电" not in text and "電話" not in text and "致電" not in text
    assert "beyond our control" not in text


def test_overdue_update_names_the_missed_time_and_promises_no_new_one(renderer: Renderer) -> None:
    rendered = render(renderer, "case_overdue_customer", "en")
    assert "by Tuesday 17 February, 10:00, and we have not yet" in rendered.text
    # The only time in the message is the missed one and the time the case came in.
    assert re.findall(r"\d\d:\d\d", rendered.text) == ["10:00", "16:40"]

    without = render(renderer, "case_overdue_customer", "en", reply_by=None)
    assert "We are sorry" in without.text and "10:00" not in without.text


# -- the team notices ----------------------------------------------------------------


def test_overdue_notice_states_priority_age_customer_and_order(renderer: Renderer) -> None:
    rendered = render(renderer, "case_overdue_team", "en")
    context = context_for("case_overdue_team", "en")
    age = round((context["now"] - context["case"]["opened_at"]).total_seconds() / 3600, 1)

    assert rendered.subject == f"Case 2087 overdue: no reply after {age} hours (normal)"
    for part in (html.unescape(rendered.html), rendered.text):
        assert f"{age} hours" in part
        assert "normal" in part
        assert context["customer"]["name"] in part and context["customer"]["email"] in part
        assert context["case"]["subject"] in part
    assert "Priority: normal" in rendered.text
    assert "Opened: Mon 16 Feb, 16:40" in rendered.text
    assert "Reply promised by: Tue 17 Feb, 10:00" in rendered.text
    assert "Order: 1042" in rendered.text
    assert 'href="mailto:mei.lin@example.com"' in rendered.html


def test_overdue_notice_computes_the_age_from_now(renderer: Renderer) -> None:
    opened = sample_context("case.opened")["case"]["opened_at"]
    rendered = render(
        renderer, "case_overdue_team", "en", now=opened + timedelta(hours=4, minutes=3), case__priority="high"
    )
    assert rendered.subject == "Case 2087 overdue: no reply after 4.0 hours (high)"
    assert "Age now: 4.0 hours" in rendered.text and "Priority: high" in rendered.text


def test_overdue_notice_leaves_out_what_is_not_known(renderer: Renderer) -> None:
    rendered = render(renderer, "case_overdue_team", "en", reply_by=None, order=None, items=[])
    assert "Reply promised by" not in rendered.html + rendered.text
    assert "Order" not in rendered.html + rendered.text
    assert "None" not in rendered.html + rendered.text + rendered.subject


def test_not_solved_notice_quotes_the_customer_and_asks_for_a_reply_today(renderer: Renderer) -> None:
    rendered = render(renderer, "case_not_solved_team", "en")
    context = context_for("case_not_solved_team", "en")

    assert rendered.subject == "Case 2087 reopened by the customer: not solved"
    for part in (html.unescape(rendered.html), rendered.text):
        assert "The roses are still wilted." in part
        assert "normal" in part
        assert context["customer"]["name"] in part and context["customer"]["email"] in part
        assert context["case"]["subject"] in part
        assert "reply to the customer today" in part
    assert "Priority: normal" in rendered.text and "Order: 1042" in rendered.text


def test_not_solved_notice_without_a_comment_or_an_order(renderer: Renderer) -> None:
    rendered = render(renderer, "case_not_solved_team", "en", event__comment=None, order=None, items=[])
    assert "Ms Lin says case 2087 is not solved. They left no comment." in rendered.text
    assert "wrote:" not in rendered.text and "Order" not in rendered.text
    assert "None" not in rendered.html + rendered.text


def test_a_comment_cannot_inject_markup_into_the_notice(renderer: Renderer) -> None:
    rendered = render(renderer, "case_not_solved_team", "en", event__comment="<b>still</b>\nwilted")
    assert "<b>still</b>" not in rendered.html and "&lt;b&gt;still&lt;/b&gt;<br" in rendered.html


# -- we have replied -----------------------------------------------------------------


@pytest.mark.parametrize(("locale", "agent"), [("en", "Sam"), ("zh-CN", "小陈"), ("zh-TW", "小陳")])
def test_agent_replied_names_the_agent_and_says_how_to_answer(
    renderer: Renderer, locale: str, agent: str
) -> None:
    rendered = render(renderer, "case_agent_replied", locale)
    for part in (html.unescape(rendered.html), rendered.text):
        assert agent in part
    if locale == "en":
        assert "Sam from our team has replied to case 2087" in rendered.text
        assert "reply to this email" in rendered.text


@pytest.mark.parametrize("locale", LOCALES)
def test_agent_replied_without_an_agent_names_no_one(renderer: Renderer, locale: str) -> None:
    rendered = render(renderer, "case_agent_replied", locale, event__agent=None)
    agent = sample_context("case.agent_replied", locale)["event"]["agent"]
    assert agent not in everything(rendered)
    assert "None" not in everything(rendered)
    if locale == "en":
        assert "Our team has replied to case 2087" in rendered.text
        assert "Replied by" not in rendered.text


# -- marked as solved ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "label"), [("en", "It is not solved"), ("zh-CN", "问题还没解决"), ("zh-TW", "問題還沒解決")]
)
def test_resolved_shows_the_not_solved_link(renderer: Renderer, locale: str, label: str) -> None:
    rendered = render(renderer, "case_resolved", locale)
    context = context_for("case_resolved", locale)
    link = context["links"]["not_solved"]
    assert re.search(rf'<a [^>]*href="{re.escape(link)}"[^>]*>{label}</a>', rendered.html)
    assert link in rendered.text
    assert context["event"]["resolution"] in rendered.text


@pytest.mark.parametrize(
    ("locale", "reply"),
    [
        ("en", "If it is not, reply to this email"),
        ("zh-CN", "请直接回复这封邮件"),
        ("zh-TW", "請直接回覆這封信"),
    ],
)
def test_resolved_without_a_link_asks_for_a_reply(renderer: Renderer, locale: str, reply: str) -> None:
    rendered = render(renderer, "case_resolved", locale, links__not_solved=None)
    assert 'href=""' not in rendered.html
    assert "not-solved" not in rendered.html + rendered.text
    assert "It is not solved" not in rendered.html + rendered.text
    for part in (html.unescape(rendered.html), rendered.text):
        assert reply in part


def test_resolved_without_a_resolution_leaves_the_line_out(renderer: Renderer) -> None:
    rendered = render(renderer, "case_resolved", "en", event__resolution=None)
    assert "What we did" not in rendered.html + rendered.text
    assert "None" not in rendered.html + rendered.text
