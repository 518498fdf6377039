"""notifier.compose.rendering and the shipped templates: every message in every locale says what
SPEC §3 requires, in the customer's timezone and money; templates stay in their sandbox."""

from __future__ import annotations

import html
import logging
import os
import re
import shutil
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency

from notifier.compose.mail import Rendered
from notifier.compose.plaintext import html_to_text
from notifier.compose.rendering import Renderer, TemplateError, _one_line
from notifier.compose.samples import SAMPLE_TRIGGER_OF_TEMPLATE, TRIGGERS, sample_context
from notifier.core.locale import LOCALES, message_locale, normalize_locale
from notifier.core.names import name_in

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
INTERNAL = {"case_overdue_team", "case_reply_due_team", "case_not_solved_team"}  # to the team, English only
SHIPPED = sorted(set(SAMPLE_TRIGGER_OF_TEMPLATE) - INTERNAL)
SHARED = ["_layout.html", "_style.css", "_macros.html", "_footer.txt"]

# Characters whose Simplified and Traditional forms differ, as (Simplified, Traditional).
SCRIPT_PAIRS = [
    ("订", "訂"), ("单", "單"), ("确", "確"), ("认", "認"), ("发", "發"), ("货", "貨"),
    ("达", "達"), ("这", "這"), ("们", "們"), ("问", "問"), ("题", "題"), ("务", "務"),
    ("邮", "郵"), ("为", "為"), ("时", "時"), ("间", "間"), ("谢", "謝"), ("过", "過"),
    ("还", "還"), ("没", "沒"), ("与", "與"), ("会", "會"), ("对", "對"), ("队", "隊"),
]  # fmt: skip


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


def render(renderer: Renderer, template: str, locale: str, **changes: Any) -> Rendered:
    """Render a shipped template with its sample context, some values changed."""
    context = sample_context(SAMPLE_TRIGGER_OF_TEMPLATE[template], locale)
    for path, value in changes.items():
        holder = context
        *parents, key = path.split("__")
        for parent in parents:
            holder = holder[parent]
        holder[key] = value
    # As the daemon does: the locale chosen by message_locale, then exactly that one rendered.
    return renderer.render(template, message_locale(renderer.locales_of(template), locale), context)


def visible(rendered: Rendered) -> str:
    """The HTML part with entities decoded (tags kept), for presence checks."""
    return html.unescape(rendered.html)


def make_templates(root: Path, files: dict[str, str], *, shared: bool = False) -> Renderer:
    if shared:
        for name in SHARED:
            shutil.copy(TEMPLATES / name, root / name)
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return Renderer(root)


# -- every shipped message -----------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("template", SHIPPED)
def test_every_shipped_template_renders_all_three_parts(
    renderer: Renderer, template: str, locale: str
) -> None:
    rendered = render(renderer, template, locale)
    context = sample_context(SAMPLE_TRIGGER_OF_TEMPLATE[template], locale)

    assert rendered.subject and "\n" not in rendered.subject and len(rendered.subject) < 80
    assert f'<html lang="{locale}">' in rendered.html
    assert "Blossom &amp; Co" in rendered.html
    assert rendered.text.endswith("\n") and "<" not in rendered.text
    assert context["customer"]["name"] in rendered.text
    for part in (rendered.subject, rendered.html, rendered.text):
        assert "None" not in part and "{{" not in part and "{%" not in part


NUMBERED = [t for t in SHIPPED if SAMPLE_TRIGGER_OF_TEMPLATE[t].startswith(("order.", "case."))]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("template", NUMBERED)
def test_order_and_case_numbers_are_in_subject_and_body(
    renderer: Renderer, template: str, locale: str
) -> None:
    rendered = render(renderer, template, locale)
    number = "1042" if SAMPLE_TRIGGER_OF_TEMPLATE[template].startswith("order.") else "2087"
    assert number in rendered.subject
    assert f"<strong>{number}</strong>" in rendered.html
    assert number in rendered.text


@pytest.mark.parametrize("template", SHIPPED)
def test_traditional_and_simplified_characters_are_not_mixed(renderer: Renderer, template: str) -> None:
    simplified = render(renderer, template, "zh-CN")
    traditional = render(renderer, template, "zh-TW")
    cn = simplified.subject + simplified.html + simplified.text
    tw = traditional.subject + traditional.html + traditional.text

    assert [t for s, t in SCRIPT_PAIRS if t in cn] == []
    assert [s for s, t in SCRIPT_PAIRS if s in tw] == []
    assert sum(s in cn for s, _ in SCRIPT_PAIRS) >= 5
    assert sum(t in tw for _, t in SCRIPT_PAIRS) >= 5


def test_order_words_differ_between_zh_tw_and_zh_cn(renderer: Renderer) -> None:
    cn = render(renderer, "order_confirmation", "zh-CN")
    tw = render(renderer, "order_confirmation", "zh-TW")
    assert "订单" in cn.subject and "订单" in cn.text and "訂單" not in cn.html
    assert "訂單" in tw.subject and "訂單" in tw.text and "订单" not in tw.html


@pytest.mark.parametrize("template", SHIPPED)
def test_shipped_templates_render_with_every_optional_value_missing(
    renderer: Renderer, template: str
) -> None:
    trigger = SAMPLE_TRIGGER_OF_TEMPLATE[template]
    context = sample_context(trigger, "en")
    optional = ["tracking_url", "eta", "signed_by", "reason", "agent", "resolution"]
    for key in optional:
        if key in context["event"]:
            context["event"][key] = None
    if context["order"] is not None:
        context["order"]["promised_date"] = None
    context["reply_by"] = None

    rendered = renderer.render(template, "en", context)

    assert "None" not in rendered.html + rendered.text + rendered.subject
    assert rendered.subject


def test_shipped_template_files_pass_the_syntax_check(renderer: Renderer) -> None:
    assert renderer.check_syntax() == []
    for template in SHIPPED:
        assert renderer.locales_of(template) == list(LOCALES)
        for locale in LOCALES:
            assert (TEMPLATES / template / f"{locale}.txt").is_file()


# -- what each message must state (SPEC §3) ------------------------------------------

CONFIRMATION = {
    "en": ("£70.00", "£7.00", "Friday 13 February 2026", "on the truck"),
    "zh-CN": ("¥387.00", "¥30.00", "2026年2月13日星期五", "装车"),
    "zh-TW": ("NT$1,850", "NT$120", "2026年2月13日 星期五", "上車"),
}


@pytest.mark.parametrize("locale", LOCALES)
def test_order_confirmation_lists_items_total_address_and_date(renderer: Renderer, locale: str) -> None:
    rendered = render(renderer, "order_confirmation", locale)
    context = sample_context("order.placed", locale)
    total, card_line, promised, next_step = CONFIRMATION[locale]
    page = visible(rendered)

    for part in (page, rendered.text):
        for item in context["items"]:
            assert name_in(item, locale) in part
        assert total in part and card_line in part
        assert context["order"]["ship_to_name"] in part
        for line in context["order"]["ship_to_address"].splitlines():
            assert line in part
        assert promised in part
        assert next_step in part


def test_order_confirmation_without_a_promised_date_says_when_it_will_be_known(
    renderer: Renderer,
) -> None:
    rendered = render(renderer, "order_confirmation", "en", order__promised_date=None)
    assert "Delivery date:" not in rendered.text
    assert "That email will also tell you the delivery date." in rendered.text


def test_order_address_lines_become_line_breaks_in_html(renderer: Renderer) -> None:
    rendered = render(renderer, "order_confirmation", "en")
    assert "Flat 3, 12 Rose Lane<br" in rendered.html


DISPATCHED = {
    "en": "Friday 13 February 2026",
    "zh-CN": "2026年2月13日星期五",
    "zh-TW": "2026年2月13日 星期五",
}


@pytest.mark.parametrize("locale", LOCALES)
def test_order_dispatched_names_carrier_tracking_and_expected_date(renderer: Renderer, locale: str) -> None:
    rendered = render(renderer, "order_dispatched", locale)
    event = sample_context("order.dispatched", locale)["event"]
    page = visible(rendered)

    for part in (page, rendered.text):
        assert event["carrier"] in part
        assert event["tracking_number"] in part
        assert event["tracking_url"] in part
        assert DISPATCHED[locale] in part
    assert f'href="{event["tracking_url"]}"' in rendered.html


def test_order_dispatched_expects_the_promised_date_when_there_is_no_eta(
    renderer: Renderer,
) -> None:
    rendered = render(
        renderer,
        "order_dispatched",
        "en",
        event__eta=None,
        order__promised_date=date(2026, 2, 14),
        event__tracking_url=None,
    )
    assert "Expected delivery: Saturday 14 February 2026" in rendered.text
    assert "Track your flowers" not in rendered.html
    assert "15501234567890" in rendered.text


def test_order_dispatched_without_any_date_leaves_the_line_out(renderer: Renderer) -> None:
    rendered = render(renderer, "order_dispatched", "en", event__eta=None, order__promised_date=None)
    assert "Expected delivery" not in rendered.html + rendered.text


@pytest.mark.parametrize(("locale", "shown"), [("en", "11:02"), ("zh-CN", "11:02"), ("zh-TW", "上午11:02")])
def test_order_delivered_states_local_time_and_signer(renderer: Renderer, locale: str, shown: str) -> None:
    rendered = render(renderer, "order_delivered", locale)
    signer = sample_context("order.delivered", locale)["event"]["signed_by"]
    for part in (visible(rendered), rendered.text):
        assert shown in part
        assert signer in part
    assert signer in rendered.subject


def test_delivery_time_is_converted_to_the_customers_timezone(renderer: Renderer) -> None:
    delivered_at = datetime(2026, 2, 13, 3, 2, tzinfo=UTC)
    for locale, shown in [("en", "11:02"), ("zh-TW", "上午11:02")]:
        rendered = render(
            renderer,
            "order_delivered",
            locale,
            event__delivered_at=delivered_at,
            customer__timezone="Asia/Taipei",
            timezone="Asia/Taipei",
        )
        assert shown in rendered.text and shown in rendered.html
        assert "03:02" not in rendered.text and "3:02" not in rendered.text.replace("13:02", "")


def test_order_delivered_asks_the_customer_to_reply_if_something_is_wrong(
    renderer: Renderer,
) -> None:
    rendered = render(renderer, "order_delivered", "en")
    assert "reply to this email and we will make it right" in rendered.text


@pytest.mark.parametrize(
    ("locale", "apology", "next_step"),
    [
        ("en", "we are sorry", "as soon as your flowers leave us"),
        ("zh-CN", "非常抱歉", "鲜花一发出"),
        ("zh-TW", "非常抱歉", "鮮花一出貨"),
    ],
)
def test_dispatch_delayed_apologises_and_says_what_happens_next(
    renderer: Renderer, locale: str, apology: str, next_step: str
) -> None:
    rendered = render(renderer, "dispatch_delayed", locale)
    for part in (visible(rendered), rendered.text):
        assert apology in part and next_step in part
    assert "beyond our control" not in rendered.text


def test_dispatch_delayed_offers_to_change_or_cancel(renderer: Renderer) -> None:
    rendered = render(renderer, "dispatch_delayed", "en")
    assert "change the delivery date, or cancel the order, reply to this email" in rendered.text


PRICES = {
    "en": ("£45.00", "£59.00", "Sunday 1 February 2026"),
    "zh-CN": ("¥268.00", "¥328.00", "2026年2月1日星期日"),
    "zh-TW": ("NT$1,280", "NT$1,580", "2026年2月1日 星期日"),
}


@pytest.mark.parametrize("locale", LOCALES)
def test_price_change_warning_states_prices_date_and_unsubscribe_link(
    renderer: Renderer, locale: str
) -> None:
    rendered = render(renderer, "price_change_warning", locale)
    context = sample_context("product.price_change", locale)
    old, new, effective = PRICES[locale]
    for part in (visible(rendered), rendered.text):
        assert name_in(context["product"], locale) in part
        assert old in part and new in part and effective in part
        assert context["links"]["unsubscribe"] in part
    assert f'href="{context["links"]["unsubscribe"]}"' in rendered.html
    assert name_in(context["product"], locale) in rendered.subject


def test_price_change_effective_date_is_the_customers_local_date(renderer: Renderer) -> None:
    rendered = render(
        renderer,
        "price_change_warning",
        "en",
        event__effective_at=datetime(2026, 2, 1, 0, 0, tzinfo=UTC),
        customer__timezone="America/New_York",
        timezone="America/New_York",
    )
    assert "Saturday 31 January 2026" in rendered.text
    assert "31 January" in rendered.subject


def test_price_change_invites_to_order_before_the_date(renderer: Renderer) -> None:
    rendered = render(renderer, "price_change_warning", "en")
    assert "Order before Sunday 1 February and you still pay today's price" in rendered.text
    assert 'href="mailto:care@blossom.example?subject=Pre-order' in rendered.html


@pytest.mark.parametrize(
    ("locale", "reply_by"),
    [
        ("en", "Tuesday 17 February, 10:00"),
        ("zh-CN", "2月17日星期二 10:00"),
        ("zh-TW", "2月17日(星期二)上午10:00".replace("(", "\uff08").replace(")", "\uff09")),
    ],
)
def test_case_received_says_when_a_person_will_answer(renderer: Renderer, locale: str, reply_by: str) -> None:
    rendered = render(renderer, "case_received", locale)
    subject = sample_context("case.opened", locale)["case"]["subject"]
    for part in (visible(rendered), rendered.text):
        assert reply_by in part
        assert subject in part
    assert "call us" not in rendered.text.lower()


def test_case_received_shows_the_reply_time_in_the_customers_timezone(
    renderer: Renderer,
) -> None:
    rendered = render(
        renderer,
        "case_received",
        "en",
        reply_by=datetime(2026, 2, 17, 2, 0, tzinfo=UTC),
        customer__timezone="Asia/Taipei",
        timezone="Asia/Taipei",
    )
    assert "get back to you by Tuesday 17 February, 10:00" in rendered.text


@pytest.mark.parametrize(("locale", "label"), [("en", "It is not solved"), ("zh-TW", "問題還沒解決")])
def test_case_follow_up_has_a_one_click_not_solved_link(renderer: Renderer, locale: str, label: str) -> None:
    rendered = render(renderer, "case_follow_up", locale)
    link = sample_context("case.resolved", locale)["links"]["not_solved"]
    assert re.search(rf'<a [^>]*href="{re.escape(link)}"[^>]*>{label}</a>', rendered.html)
    assert link in rendered.text


def test_case_follow_up_without_a_link_asks_for_a_reply_instead(renderer: Renderer) -> None:
    rendered = render(renderer, "case_follow_up", "en", links__not_solved=None)
    assert 'href=""' not in rendered.html
    assert "It is not solved" not in rendered.html + rendered.text
    assert "If it is not, reply to this email" in rendered.text


# -- locales -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("zh_TW", "zh-TW"),
        ("zh-tw", "zh-TW"),
        ("zh-Hant-TW", "zh-TW"),
        ("zh-Hant", "zh-TW"),
        ("zh-HK", "zh-TW"),
        ("zh_MO", "zh-TW"),
        ("zh-Hans", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("zh-SG", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh_CN.UTF-8", "zh-CN"),
        ("en-GB", "en"),
        ("EN", "en"),
        ("fr_FR", "fr"),
        ("", "en"),
        (None, "en"),
        ("../../etc", "en"),
        ("12", "en"),
    ],
)
def test_normalize_locale(value: str | None, expected: str) -> None:
    assert normalize_locale(value) == expected


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [("zh-Hant-TW", "zh-TW"), ("zh_CN", "zh-CN"), ("fr", "en"), ("de-DE", "en"), (None, "en")],
)
def test_choose_locale_falls_back_to_english(renderer: Renderer, wanted: str, chosen: str) -> None:
    assert renderer.choose_locale("order_confirmation", wanted) == chosen


def test_unknown_locale_renders_the_english_message(renderer: Renderer) -> None:
    rendered = render(renderer, "order_confirmation", "fr")
    assert rendered.subject == "Order 1042 confirmed"
    assert '<html lang="en">' in rendered.html


def test_a_template_missing_the_locale_falls_back_to_english(tmp_path: Path) -> None:
    renderer = make_templates(
        tmp_path,
        {
            "note/en.subject.txt": "Order {{ order.number }}",
            "note/en.html": '{% extends "_layout.html" %}{% block content %}<p>Hi</p>{% endblock %}',
            "note/zh-TW.html": "<p>only half a translation</p>",
        },
        shared=True,
    )
    assert renderer.locales_of("note") == ["en"]
    assert renderer.choose_locale("note", "zh-TW") == "en"
    rendered = renderer.render("note", "en", sample_context("order.placed", "zh-TW"))
    assert rendered.subject == "Order 1042"
    # The layout speaks the language of the template it wraps, not the customer's.
    assert "Questions? Reply to this email" in rendered.html
    assert "有任何問題" not in rendered.html
    assert [str(e) for e in renderer.check_syntax()] == [
        f"{tmp_path.as_posix()}/note/zh-TW.subject.txt: file is missing"
    ]


def test_a_locale_added_by_marketing_is_used(tmp_path: Path) -> None:
    renderer = make_templates(
        tmp_path,
        {
            "note/en.subject.txt": "Hello",
            "note/en.html": "<p>Hello</p>",
            "note/fr.subject.txt": "Bonjour",
            "note/fr.html": "<p>Bonjour</p>",
        },
    )
    assert renderer.locales_of("note") == ["en", "fr"]
    assert message_locale(renderer.locales_of("note"), "fr-CA") == "fr"
    rendered = renderer.render("note", "fr", sample_context("order.placed"))
    assert rendered.subject == "Bonjour"


def test_template_names_lists_messages_only(tmp_path: Path) -> None:
    renderer = make_templates(
        tmp_path,
        {"b/en.subject.txt": "x", "b/en.html": "x", "a/en.html": "x", "_parts/x.html": "x"},
    )
    (tmp_path / ".git").mkdir()
    assert renderer.template_names() == ["a", "b"]
    assert renderer.has_template("b")
    assert not renderer.has_template("a")  # no subject
    assert not renderer.has_template("_parts")
    assert not renderer.has_template("../b")
    with pytest.raises(TemplateError, match="no message template 'missing'"):
        renderer.render("missing", "en", sample_context("order.placed"))


# -- safety --------------------------------------------------------------------------


def test_html_is_autoescaped_and_text_is_not(renderer: Renderer) -> None:
    name = "<script>alert(1)</script>"
    rendered = render(renderer, "order_confirmation", "en", customer__name=name)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script>" not in rendered.html
    assert f"Hello {name}," in rendered.text


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


def test_values_cannot_break_out_of_attributes(renderer: Renderer) -> None:
    url = 'https://track.example.com/x" onclick="steal()'
    rendered = render(renderer, "order_dispatched", "en", event__tracking_url=url)
    parser = _Links()
    parser.feed(rendered.html)
    assert url in [link.get("href") for link in parser.links]
    assert not any("onclick" in link for link in parser.links)


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ customer.__class__ }}",
        "{{ ''.__class__.mro() }}",
        "{{ customer.mro() }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ '{0.__class__.__base__}'.format(customer) }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ items.append(1) }}",
        "{{ customer.update({'email': 'x@evil.example'}) }}",
    ],
)
def test_sandbox_escapes_fail_with_template_error(tmp_path: Path, payload: str) -> None:
    renderer = make_templates(
        tmp_path, {"evil/en.subject.txt": "Hi", "evil/en.html": f"<p>start</p>\n{payload}\n"}
    )
    context = sample_context("order.placed")
    with pytest.raises(TemplateError) as caught:
        renderer.render("evil", "en", context)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path.as_posix()}/evil/en.html:2: ")
    assert "<class" not in message and "<function" not in message and "built-in" not in message
    assert context["customer"]["email"] == "mei.lin@example.com"
    assert len(context["items"]) == 3


# -- errors name the file and line ---------------------------------------------------


def test_undefined_variable_names_file_line_and_owner(tmp_path: Path) -> None:
    renderer = make_templates(
        tmp_path,
        {
            "order_dispatched/en.subject.txt": "Order {{ order.number }}",
            "order_dispatched/en.html": "<p>Hello</p>\n<p>\n{{ event.tracking_nr }}</p>\n",
        },
    )
    with pytest.raises(TemplateError) as caught:
        renderer.render("order_dispatched", "en", sample_context("order.dispatched"))
    error = caught.value
    assert error.line == 3
    assert error.file == f"{tmp_path.as_posix()}/order_dispatched/en.html"
    assert str(error).endswith("order_dispatched/en.html:3: 'event' has no attribute 'tracking_nr'")


def test_a_missing_context_key_fails_the_shipped_template(renderer: Renderer) -> None:
    context = sample_context("order.dispatched")
    del context["event"]["tracking_url"]
    with pytest.raises(TemplateError) as caught:
        renderer.render("order_dispatched", "en", context)
    assert re.search(r"templates/order_dispatched/en\.html:\d+: 'event' has no attribute", str(caught.value))


def test_an_unknown_name_is_reported(tmp_path: Path) -> None:
    renderer = make_templates(tmp_path, {"t/en.subject.txt": "x", "t/en.html": "a\n\n{{ coupon }}"})
    with pytest.raises(TemplateError, match=r"t/en\.html:3: 'coupon' is undefined$"):
        renderer.render("t", "en", sample_context("order.placed"))


def test_syntax_error_names_file_and_line_at_render_and_at_check(tmp_path: Path) -> None:
    renderer = make_templates(
        tmp_path,
        {"t/en.subject.txt": "x", "t/en.html": "<p>ok</p>\n{% if order %}\n<p>{{ order.number }</p>\n"},
    )
    with pytest.raises(TemplateError) as caught:
        renderer.render("t", "en", sample_context("order.placed"))
    where = re.escape(tmp_path.as_posix())
    assert re.fullmatch(rf"{where}/t/en\.html:3: syntax error: .+", str(caught.value))
    problems = renderer.check_syntax()
    assert [(p.file, p.line) for p in problems] == [(f"{tmp_path.as_posix()}/t/en.html", 3)]


def test_check_syntax_reports_unknown_filters_and_a_missing_english_version(tmp_path: Path) -> None:
    renderer = make_templates(
        tmp_path,
        {
            "a/en.subject.txt": "{{ order.number|shout }}",
            "a/en.html": "<p>x</p>",
            "b/zh-TW.subject.txt": "x",
            "b/zh-TW.html": "<p>x</p>",
        },
    )
    problems = [str(p) for p in renderer.check_syntax()]
    assert len(problems) == 2
    assert problems[0].startswith(f"{tmp_path.as_posix()}/a/en.subject.txt:1: syntax error:")
    assert "shout" in problems[0]
    assert problems[1] == (
        f"{tmp_path.as_posix()}/b: no 'en' version (en.subject.txt and en.html),"
        " which every other locale falls back to"
    )


def test_an_error_in_a_shared_piece_names_that_piece(tmp_path: Path) -> None:
    renderer = make_templates(
        tmp_path,
        {
            "_layout.html": "<html>\n<body>\n{{ brand.slogan }}\n"
            "{% block content %}{% endblock %}</body></html>",
            "t/en.subject.txt": "x",
            "t/en.html": '{% extends "_layout.html" %}{% block content %}hi{% endblock %}',
        },
    )
    with pytest.raises(TemplateError) as caught:
        renderer.render("t", "en", sample_context("order.placed"))
    expected = f"{tmp_path.as_posix()}/_layout.html:3: 'brand' has no attribute 'slogan'"
    assert str(caught.value).startswith(expected)
    assert "(while rendering t/en.html)" in str(caught.value)


@pytest.mark.parametrize("how", ["", " with context"])
def test_macros_format_money_and_dates_in_the_message_locale_however_imported(
    tmp_path: Path, how: str
) -> None:
    """Jinja builds a module imported without context once and reuses it for every message;
    its filters must still follow each message's locale and timezone, not the first one's."""
    macro = (
        "{% macro paid(order) %}{{ order.total|money }} {{ order.placed_at|datetime('d MMM HH:mm') }}"
        "{% endmacro %}"
    )
    renderer = make_templates(
        tmp_path,
        {
            "_m.html": macro,
            "t/en.subject.txt": "x",
            "t/en.html": f'{{% import "_m.html" as m{how} %}}<p>{{{{ m.paid(order) }}}}</p>',
        },
    )
    for locale, currency, zone, expected in [
        ("en", "USD", "America/New_York", "$1,234.50 9 Feb 04:15"),
        ("zh-TW", "TWD", "Asia/Taipei", "NT$1,234.50 9 Feb 17:15"),
        ("en", "EUR", "UTC", "€1,234.50 9 Feb 09:15"),
    ]:
        context = sample_context("order.placed")
        context["order"].update(total=Decimal("1234.50"), currency=currency,
                                placed_at=datetime(2026, 2, 9, 9, 15, tzinfo=UTC))
        context["customer"].update(locale=locale, timezone=zone)
        context["timezone"] = zone
        assert f"<p>{expected}</p>" in renderer.render("t", renderer.choose_locale("t", locale), context).html


def test_an_empty_subject_is_an_error(tmp_path: Path) -> None:
    renderer = make_templates(tmp_path, {"t/en.subject.txt": "{{ '' }}\n", "t/en.html": "<p>x</p>"})
    with pytest.raises(TemplateError, match=r"t/en\.subject\.txt: the subject is empty"):
        renderer.render("t", "en", sample_context("order.placed"))


# -- parts: subject, CSS, text -------------------------------------------------------


def test_subject_whitespace_is_collapsed_to_one_line(tmp_path: Path) -> None:
    renderer = make_templates(
        tmp_path,
        {
            "t/en.subject.txt": "Order {{ order.number }}\n   for\t{{ customer.name }}\n\n",
            "t/en.html": "<p>x</p>",
        },
    )
    context = sample_context("order.placed")
    context["customer"]["name"] = "Ms\r\nLin\x0bBcc: x@evil.example"
    rendered = renderer.render("t", "en", context)
    assert rendered.subject == "Order 1042 for Ms Lin Bcc: x@evil.example"
    assert not re.search(r"[\r\n\t\x0b]", rendered.subject)


def test_every_control_character_in_a_subject_becomes_a_space() -> None:
    # Unicode category Cc, whatever else is whitespace, and nothing more.
    every = "".join(chr(code) for code in range(0x3000) if not 0xD800 <= code < 0xE000)
    expected = " ".join(
        "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in f"a{every}b").split()
    )

    assert _one_line(f"a{every}b") == expected


def test_shipped_subject_stays_one_line_when_a_value_has_a_newline(renderer: Renderer) -> None:
    rendered = render(renderer, "order_delivered", "en", event__signed_by="A.\r\nMorgan")
    assert rendered.subject == "Order 1042 delivered, signed for by A. Morgan"


def test_css_is_inlined_into_style_attributes(renderer: Renderer) -> None:
    rendered = render(renderer, "order_confirmation", "en")
    assert re.search(r'<h1 style="[^"]*color:#8c2f45', rendered.html)
    assert re.search(r'<table class="container"[^>]*style="[^"]*max-width:600px', rendered.html)
    styles = re.findall(r"<style>(.*?)</style>", rendered.html, re.S)
    assert all(block.strip().startswith("@media") for block in styles)


def test_css_without_at_rules_leaves_no_style_block(tmp_path: Path) -> None:
    renderer = make_templates(
        tmp_path,
        {
            "_style.css": "p.hello { color: red; }",
            "t/en.subject.txt": "x",
            "t/en.html": '<html><head><style>{% include "_style.css" %}</style></head>'
            '<body><p class="hello">Hi</p></body></html>',
        },
    )
    rendered = renderer.render("t", "en", sample_context("order.placed"))
    assert '<p class="hello" style="color:red">Hi</p>' in rendered.html
    assert "<style" not in rendered.html


def test_text_is_derived_from_html_when_there_is_no_text_template(tmp_path: Path) -> None:
    renderer = make_templates(
        tmp_path,
        {
            "t/en.subject.txt": "x",
            "t/en.html": """{% extends "_layout.html" %}
{% block preheader %}Secret preview line{% endblock %}
{% block content %}
<h1>Hello {{ customer.name }}</h1>
<p>Your order<br>is on its way.</p>
<table><tr><td>Roses</td><td>2</td><td>£90.00</td></tr><tr><td>Card</td><td>1</td><td>£3.50</td></tr></table>
<ul><li>First</li><li>Second</li></ul>
<p><a href="{{ event.tracking_url }}">Track it</a> or <a href="https://x.example/same">https://x.example/same</a></p>
{% endblock %}""",
        },
        shared=True,
    )
    rendered = renderer.render("t", "en", sample_context("order.dispatched"))
    text = rendered.text
    assert "<" not in text and ">" not in text
    assert "Secret preview line" not in text and "@media" not in text
    assert "Hello Ms Lin\n\nYour order\nis on its way." in text
    assert "Roses  2  £90.00\nCard  1  £3.50" in text
    assert "- First\n- Second" in text
    assert "Track it (https://track.example.com/15501234567890)" in text
    assert "https://x.example/same (https://x.example/same)" not in text
    assert "Blossom & Co · care@blossom.example" in text


def test_html_to_text_handles_entities_and_ordered_lists() -> None:
    text = html_to_text(
        "<p>Fish &amp; chips&nbsp;today</p><ol><li>one</li><li>two</li></ol>"
        '<p style="display: none">hidden</p><script>var x = 1;</script><p>end</p>'
    )
    assert text == "Fish & chips\xa0today\n\n1. one\n2. two\n\nend\n".replace("\xa0", " ")


# -- filters -------------------------------------------------------------------------


def filter_renderer(tmp_path: Path, body: str) -> Renderer:
    return make_templates(tmp_path, {"f/en.subject.txt": "x", "f/en.txt": body, "f/en.html": "<p>x</p>"})


@pytest.mark.parametrize(
    ("locale", "currency", "amount", "shown"),
    [
        ("en", "USD", "1234.5", "$1,234.50"),
        ("en", "TWD", "1850", "NT$1,850"),
        ("zh-CN", "CNY", "387", "¥387.00"),
        ("zh-CN", "USD", "12", "US$12.00"),
        ("zh-TW", "TWD", "1850", "NT$1,850"),
        ("zh-TW", "TWD", "99.5", "NT$99.50"),
        ("zh-TW", "USD", "12", "US$12.00"),
    ],
)
def test_money_is_formatted_in_the_customers_locale(
    tmp_path: Path, locale: str, currency: str, amount: str, shown: str
) -> None:
    for code in ("en", "zh-CN", "zh-TW"):
        (tmp_path / "f").mkdir(exist_ok=True)
        (tmp_path / "f" / f"{code}.subject.txt").write_text("x")
        (tmp_path / "f" / f"{code}.html").write_text("<p>x</p>")
        (tmp_path / "f" / f"{code}.txt").write_text("{{ amount|money(currency) }}")
    context = sample_context("order.placed", locale) | {
        "amount": Decimal(amount),
        "currency": currency,
    }
    assert Renderer(tmp_path).render("f", locale, context).text == shown + "\n"


def test_money_takes_the_currency_from_the_context(tmp_path: Path) -> None:
    renderer = filter_renderer(tmp_path, "{{ 5|money }}|{{ none|money }}")
    order_context = sample_context("order.placed") | {"none": None}
    assert renderer.render("f", "en", order_context).text == "£5.00|\n"
    product_context = sample_context("product.price_change", "zh-TW") | {"none": None}
    product_context["event"]["currency"] = "USD"
    assert renderer.render("f", "en", product_context).text == "$5.00|\n"
    bare = sample_context("case.opened") | {"order": None, "none": None}
    with pytest.raises(TemplateError, match=r"money needs a currency here"):
        renderer.render("f", "en", bare)


def test_date_and_time_filters_use_the_customers_timezone(tmp_path: Path) -> None:
    renderer = filter_renderer(
        tmp_path,
        "{{ moment|datetime('yyyy-MM-dd HH:mm') }}|{{ moment|date('yyyy-MM-dd') }}|"
        "{{ moment|time('HH:mm') }}|{{ day|date('d MMM') }}|{{ naive|time('HH:mm') }}|{{ none|date }}",
    )
    context = sample_context("order.placed") | {
        "moment": datetime(2026, 2, 13, 17, 30, tzinfo=UTC),
        "day": date(2026, 2, 13),
        "naive": datetime(2026, 2, 13, 17, 30),
        "none": None,
        "timezone": "Asia/Taipei",
    }
    text = renderer.render("f", "en", context).text
    assert text == "2026-02-14 01:30|2026-02-14|01:30|13 Feb|01:30|\n"


def test_an_unknown_timezone_shows_utc_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    renderer = filter_renderer(tmp_path, "{{ now|time('HH:mm') }}")
    context = sample_context("order.placed") | {
        "now": datetime(2026, 2, 13, 17, 30, tzinfo=UTC),
        "timezone": "Mars/Olympus_Mons",
    }
    with caplog.at_level(logging.WARNING, logger="notifier.compose.rendering"):
        assert renderer.render("f", "en", context).text == "17:30\n"
    assert "Mars/Olympus_Mons" in caplog.text


def test_a_filter_given_the_wrong_kind_of_value_names_the_problem(tmp_path: Path) -> None:
    renderer = filter_renderer(tmp_path, "line one\n{{ order.number|datetime }}")
    with pytest.raises(TemplateError, match=r"f/en\.txt:2: datetime: '1042' is not a date and time"):
        renderer.render("f", "en", sample_context("order.placed"))


# -- edits are picked up -------------------------------------------------------------


def test_edited_templates_are_picked_up_without_a_new_renderer(tmp_path: Path) -> None:
    renderer = make_templates(tmp_path, {"t/en.subject.txt": "First", "t/en.html": "<p>a</p>"})
    context = sample_context("order.placed")
    assert renderer.render("t", "en", context).subject == "First"

    subject = tmp_path / "t" / "en.subject.txt"
    subject.write_text("Second")
    later = subject.stat().st_mtime + 5
    os.utime(subject, (later, later))
    (tmp_path / "t" / "en.txt").write_text("hand-written")

    rendered = renderer.render("t", "en", context)
    assert rendered.subject == "Second"
    assert rendered.text == "hand-written\n"


def _age(folder: Path, seconds: float = 60) -> None:
    """Make the folder look last changed `seconds` ago, so its listing may be reused."""
    then = folder.stat().st_mtime - seconds
    os.utime(folder, (then, then))


def test_the_template_folder_is_listed_again_only_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renderer = make_templates(tmp_path, {"t/en.subject.txt": "Hi", "t/en.html": "<p>en</p>"})
    _age(tmp_path / "t")
    listed: list[str] = []
    scandir = os.scandir

    def counting_scandir(path: Any) -> Any:
        listed.append(str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    context = sample_context("order.placed", "zh-TW")
    for _ in range(3):
        assert renderer.choose_locale("t", "zh-TW") == "en"
        assert "<p>en</p>" in renderer.render("t", "en", context).html
    assert len(listed) == 1

    # A new locale shows at the next render, and a removed one is gone as soon.
    (tmp_path / "t" / "zh-TW.subject.txt").write_text("嗨")
    (tmp_path / "t" / "zh-TW.html").write_text("<p>tw</p>")
    assert renderer.locales_of("t") == ["en", "zh-TW"]
    assert renderer.render("t", "zh-TW", context).subject == "嗨"
    (tmp_path / "t" / "zh-TW.html").unlink()
    assert renderer.choose_locale("t", "zh-TW") == "en"
    assert renderer.render("t", "en", context).subject == "Hi"
    shutil.rmtree(tmp_path / "t")
    assert not renderer.has_template("t")
    with pytest.raises(TemplateError, match="there is no message template 't'"):
        renderer.render("t", "en", context)


def test_a_change_the_folder_mtime_does_not_show_is_still_seen(tmp_path: Path) -> None:
    # On a filesystem with coarse timestamps, a file added just after the folder was
    # listed can leave the folder's mtime as it was: a listing taken that soon after the
    # folder's last change is not reused.
    renderer = make_templates(tmp_path, {"t/en.subject.txt": "Hi", "t/en.html": "<p>en</p>"})
    folder = tmp_path / "t"
    assert renderer.locales_of("t") == ["en"]
    before = folder.stat()

    (folder / "zh-CN.subject.txt").write_text("嗨")
    (folder / "zh-CN.html").write_text("<p>cn</p>")
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert renderer.locales_of("t") == ["en", "zh-CN"]


def test_locale_filters_format_like_babel_for_every_locale_and_format(tmp_path: Path) -> None:
    renderer = filter_renderer(
        tmp_path, "{{ day|date }}|{{ day|date('EEEE d MMMM y') }}|{{ day|date('short') }}|{{ 1234.5|money }}"
    )
    day = date(2026, 2, 13)
    for locale, babel_name in [("en", "en"), ("zh-CN", "zh_Hans_CN"), ("zh-TW", "zh_Hant_TW")]:
        for code in ("en", "zh-CN", "zh-TW"):
            for part in ("subject.txt", "html", "txt"):
                source = (tmp_path / "f" / f"en.{part}").read_text()
                (tmp_path / "f" / f"{code}.{part}").write_text(source)
        context = sample_context("order.placed", locale) | {"day": day}
        babel_locale = Locale.parse(babel_name)
        expected = "|".join(
            [
                format_date(day, "long", locale=babel_locale),
                format_date(day, "EEEE d MMMM y", locale=babel_locale),
                format_date(day, "short", locale=babel_locale),
                format_currency(Decimal("1234.5"), context["order"]["currency"], locale=babel_locale),
            ]
        )
        if locale == "zh-TW":
            expected = expected.replace("$", "NT$")  # Taiwan writes NT$ (see _SYMBOLS)
        for _ in range(2):  # the second time from the caches
            assert renderer.render("f", locale, context).text == expected + "\n"


# -- samples -------------------------------------------------------------------------

CONTRACT_KEYS = {
    "customer", "order", "items", "event", "case", "product", "reply_by", "links", "brand",
    "locale", "timezone", "now",
}  # fmt: skip
EVENT_KEYS = {
    "order.dispatched": {"carrier", "tracking_number", "tracking_url", "eta"},
    "order.delivered": {"delivered_at", "signed_by"},
    "order.cancelled": {"reason", "refund_amount", "currency"},
    "order.refunded": {"amount", "currency", "reason"},
    "order.out_for_delivery": {"carrier", "window_start", "window_end"},
    "order.delivery_failed": {"reason", "next_attempt_at"},
    "product.price_change": {"old_price", "new_price", "currency", "effective_at"},
    "case.agent_replied": {"agent"},
    "case.resolved": {"resolution"},
    "case.not_solved": {"comment"},
}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_sample_contexts_follow_the_contract(trigger: str, locale: str) -> None:
    context = sample_context(trigger, locale)
    assert set(context) == CONTRACT_KEYS
    assert context["locale"] == locale
    event = context["event"]
    assert event["type"] == trigger
    assert {"id", "type", "occurred_at", "data"} | EVENT_KEYS.get(trigger, set()) == set(event)
    assert event["occurred_at"].tzinfo is not None and context["now"] > event["occurred_at"]
    assert set(context["links"]) == {"unsubscribe", "not_solved"}
    assert set(context["customer"]) == {"id", "name", "email", "locale", "timezone", "marketing_opt_in"}
    source = trigger.split(".")[0]
    assert (context["product"] is not None) == (source == "product")
    assert (context["case"] is not None) == (source == "case")
    if context["order"] is not None:
        order = context["order"]
        assert order["total"] == sum(item["line_total"] for item in context["items"])
        assert len(context["items"]) == 3 and isinstance(order["number"], str)


def test_sample_names_and_timezones_fit_the_locale() -> None:
    assert sample_context("order.placed", "en")["customer"]["name"] == "Ms Lin"
    assert sample_context("order.placed", "zh-TW")["customer"]["name"] == "林美玲"
    assert sample_context("order.placed", "zh-CN")["customer"]["name"] == "王芳"
    assert sample_context("order.placed", "zh-TW")["timezone"] == "Asia/Taipei"
    assert sample_context("order.placed", "zh-CN")["timezone"] == "Asia/Shanghai"
    assert sample_context("order.placed", "en")["timezone"] == "Europe/London"


def test_sample_contexts_are_independent_copies() -> None:
    first = sample_context("order.placed")
    first["items"].clear()
    first["links"]["unsubscribe"] = None
    second = sample_context("order.placed")
    assert len(second["items"]) == 3 and second["links"]["unsubscribe"]


def test_a_trigger_of_no_source_has_no_sample() -> None:
    with pytest.raises(ValueError, match=r"parcel\.shipped"):
        sample_context("parcel.shipped")


def test_a_shops_own_event_gets_its_sources_sample() -> None:
    """A type the capture mapping declares (order.gift_wrapped) is checked on an order's story."""
    context = sample_context("order.gift_wrapped")
    assert context["order"]["id"] == 1042
    assert context["event"]["type"] == "order.gift_wrapped"


def test_every_shipped_template_has_a_sample_trigger(renderer: Renderer) -> None:
    assert set(SAMPLE_TRIGGER_OF_TEMPLATE) <= set(renderer.template_names())
    assert set(SAMPLE_TRIGGER_OF_TEMPLATE.values()) <= set(TRIGGERS)


@pytest.mark.parametrize(
    "source",
    [
        "{{ d.name }}",
        "{{ d.items is callable }} {{ d.keys() | list | sort | join(',') }}",  # methods stay methods
        "{{ d.get('name') }} {{ d.missing is defined }} {{ d['items'] }}",
        "{{ d.nested.total }} {{ d.__class__ is defined }} {{ d.update is defined }}",
        "{% for line in d.lines %}{{ line.sku }}:{{ line.qty }};{% endfor %}",
    ],
)
def test_templates_read_dicts_exactly_as_jinjas_own_sandbox_does(source: str) -> None:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from notifier.compose.sandbox import Sandbox

    data = {
        "d": {
            "name": "Lin",
            "items": "the key, not the method",
            "nested": {"total": Decimal("12.50")},
            "lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}],
        }
    }

    def render(environment: ImmutableSandboxedEnvironment) -> str:
        try:
            return environment.from_string(source).render(data)
        except Exception as exc:  # the same failure counts as the same answer
            return f"{type(exc).__name__}: {exc}"

    ours = render(Sandbox(undefined=StrictUndefined))
    assert ours == render(ImmutableSandboxedEnvironment(undefined=StrictUndefined))
    assert "Traceback" not in ours


@pytest.mark.parametrize(
    ("year", "weekday", "zh"), [(2026, "Saturday", "星期六"), (2027, "Sunday", "星期日")]
)
def test_the_valentines_invitation_names_the_weekday_of_the_year_it_goes_out(
    renderer: Renderer, year: int, weekday: str, zh: str
) -> None:
    for locale in LOCALES:
        context = sample_context("schedule.tick", locale)
        context["now"] = datetime(year, 1, 20, 2, 0, tzinfo=UTC)
        context["timezone"] = context["customer"]["timezone"] = "America/Los_Angeles"  # still 19 January
        rendered = renderer.render("valentines_invitation", locale, context)
        expected = weekday if locale == "en" else zh
        assert expected in rendered.subject and expected in rendered.text and expected in rendered.html
        if locale == "en":
            assert f"{weekday} 14 February" in rendered.text
