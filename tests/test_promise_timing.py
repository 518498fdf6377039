"""Time from a promise: the promise-day apology at 14:00 on the customer's clock (across a DST
change), "the carrier has gone quiet" after two business days (across the shop's holidays), the
team warned 30 minutes before a promised reply time, and a reopened case promised afresh.
Event rows, `run --once`, a real SMTP server, freezegun at each boundary; `history` and
`simulate` explain the same times; `check` refuses bad values of the new keys with file:line."""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner

from notifier.cli import app
from notifier.compose.rendering import Renderer
from notifier.compose.samples import SAMPLE_TRIGGER_OF_TEMPLATE, sample_context
from notifier.config.live import load_checked
from notifier.config.settings import Settings
from notifier.tools.replay import read_only
from notifier.tools.replay import simulate as replay_simulate
from tests.journey import body, notifications, parse, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

TEAM = "care-team@blossom.example"
SECRET = {"NOTIFIER_SECRET_KEY": "k" * 32}  # check asks for it: the shipped rules have marketing mail
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@contextmanager
def at(moment: str) -> Iterator[None]:
    with freeze_time(moment, real_asyncio=True):
        yield


def _utc(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _history(settings: Settings, *args: str) -> str:
    result = CliRunner().invoke(app, ["--database-url", settings.database_url.reveal(), "history", *args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # history wraps its lines to the terminal


def _sent_to(server: FaultySmtpServer, start: int = 0) -> list[tuple[str, str]]:
    return [(m.rcpt_tos[0], parse(m)["Subject"]) for m in server.messages[start:]]


# -- the promise-day apology -----------------------------------------------------------------


def _london_order(shop: Shop, promised: date | None) -> int:
    customer = shop.customer(name="Emma Lin", email="emma@example.com", locale="en", timezone="Europe/London")
    roses = shop.product(name="Twelve red roses", price="59.00", currency="GBP")
    return shop.order(
        customer, items=[(roses, 1)], placed_at="2026-03-27 10:00", currency="GBP", promised_date=promised
    )


def test_promise_day_apology_at_14_00_the_customers_time_after_the_clocks_go_forward(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    # Placed on Friday in GMT, promised for Monday 30 March: London's clocks go forward on
    # Sunday 29 March, so 14:00 that Monday is 13:00 UTC, not 14:00.
    order = _london_order(shop, date(2026, 3, 30))
    shop.event("order", order, "placed", "2026-03-27 10:00")
    shop.event("order", order, "dispatched", "2026-03-27 12:00", {"carrier": "DPD", "tracking_number": "D1"})
    with at("2026-03-27 12:01"):
        run(settings)
    [plan] = notifications(engine, rule="promise-day-apology")
    assert _utc(plan["due_at"]) == datetime(2026, 3, 30, 13, 0, tzinfo=UTC)

    # history and simulate explain the same moment, on the customer's clock.
    with at("2026-03-30 12:00"):
        words = _history(settings, "--order", str(order))
        rules, _ = load_checked(settings.rules, settings.templates)
        with read_only(settings.database_url.reveal()) as conn:
            replay = replay_simulate(conn, rules, since=ts("2026-03-27 00:00"), now=ts("2026-03-30 12:00"))
    assert "at: order.promised_date 14:00 = 2026-03-30 14:00 Europe/London" in words, words
    assert "2026-03-30 13:00 UTC" in words, words
    assert replay.rules["promise-day-apology"].not_due_yet == 1

    before = len(smtp_server.messages)
    with at("2026-03-30 12:59:30"):
        run(settings)
    assert _sent_to(smtp_server, before) == []
    with at("2026-03-30 13:00:30"):
        run(settings)
    [(to, subject)] = _sent_to(smtp_server, before)
    assert to == "emma@example.com" and str(order) in subject and "sorry" in subject.lower()
    text = body(parse(smtp_server.messages[-1]))
    assert "Monday 30 March" in text and "sorry" in text and "WHAT HAPPENS NEXT" in text


def test_no_apology_once_delivered_nor_for_an_order_without_a_promised_date(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    delivered = _london_order(shop, date(2026, 3, 30))
    unpromised = _london_order(shop, None)
    for order in (delivered, unpromised):
        shop.event("order", order, "placed", "2026-03-27 10:00")
        shop.event("order", order, "dispatched", "2026-03-27 12:00", {"carrier": "DPD"})
    shop.event("order", delivered, "delivered", "2026-03-30 09:15", {"signed_by": "E. Lin"})
    with at("2026-03-30 13:00:30"):
        run(settings)
    assert all("sorry" not in subject.lower() for _, subject in _sent_to(smtp_server))
    reasons = {row["subject_id"]: row["reason"] for row in notifications(engine, rule="promise-day-apology")}
    assert reasons == {delivered: "unless_happened", unpromised: "no_due_time"}
    assert "order.promised_date is empty" in _history(settings, "--order", str(unpromised))


def test_an_order_placed_after_the_promised_afternoon_gets_no_apology(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    customer = shop.customer(email="late@example.com", timezone="Europe/London")
    order = shop.order(customer, placed_at="2026-03-30 15:00", promised_date=date(2026, 3, 30))
    shop.event("order", order, "placed", "2026-03-30 15:00")
    with at("2026-03-30 15:01"):
        run(settings)
    [plan] = notifications(engine, rule="promise-day-apology")
    assert plan["reason"] == "no_due_time" and "already past" in plan["detail"]


# -- the carrier has gone quiet -------------------------------------------------------------


def test_carrier_quiet_after_two_business_days_skipping_the_shops_holidays(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    # The shipped calendar (Asia/Taipei) closes 16-20 February 2026 for the New Year: dispatched
    # on Friday 13 February at 10:00, two business days on is Tuesday 24 February at 10:00
    # (02:00 UTC), not Tuesday the 17th.
    customer = shop.customer(name="王芳", email="wang@example.cn", locale="zh-CN", timezone="Asia/Shanghai")
    quiet = shop.order(customer, promised_date=date(2026, 2, 14))
    delivered = shop.order(customer, promised_date=date(2026, 2, 14))
    data = {"carrier": "顺丰速运", "tracking_number": "SF123", "tracking_url": "https://t.example/SF123"}
    for order in (quiet, delivered):
        shop.event("order", order, "dispatched", "2026-02-13 02:00", data)
    shop.event("order", delivered, "delivered", "2026-02-23 03:00", {"signed_by": "王芳"})
    with at("2026-02-13 02:01"):
        run(settings)
    plans = {row["subject_id"]: row for row in notifications(engine, rule="carrier-quiet")}
    assert {_utc(row["due_at"]) for row in plans.values()} == {datetime(2026, 2, 24, 2, 0, tzinfo=UTC)}
    with at("2026-02-13 02:05"):
        words = _history(settings, "--order", str(quiet))
    assert "2 business days after order.dispatched" in words, words

    before = len(smtp_server.messages)
    with at("2026-02-17 02:01"):  # two business days without the holidays: nothing yet
        run(settings)
    with at("2026-02-24 01:59:30"):
        run(settings)
    delivered_mail = f"订单 {delivered} 已送达，签收人：王芳"  # noqa: RUF001
    assert [subject for _, subject in _sent_to(smtp_server, before)] == [delivered_mail]
    with at("2026-02-24 02:00:30"):
        run(settings)
    [(to, subject)] = _sent_to(smtp_server, before + 1)
    assert to == "wang@example.cn" and str(quiet) in subject and "快递暂无新消息" in subject
    text = body(parse(smtp_server.messages[-1]))
    assert "顺丰速运" in text and "SF123" in text and "【接下来】" in text
    reasons = {row["subject_id"]: row["reason"] for row in notifications(engine, rule="carrier-quiet")}
    assert reasons[delivered] == "unless_happened"


# -- the promise watch: the team before the breach, a reopened case afresh -------------------


def _case(shop: Shop, *, priority: str, opened: str, locale: str = "en") -> int:
    customer = shop.customer(name="Mei Lin", email="mei@example.tw", locale=locale, timezone="Asia/Taipei")
    order = shop.order(customer, promised_date=None)
    case = shop.case(customer, order_id=order, subject="Wilted roses", priority=priority, opened_at=opened)
    shop.event("case", case, "opened", opened)
    return case


def test_the_team_hears_30_minutes_before_the_promised_reply_time(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    case = _case(shop, priority="high", opened="2026-03-02 01:00")  # high: 4 h, by 05:00 UTC
    with at("2026-03-02 01:01"):
        run(settings)
        words = _history(settings, "--case", str(case))
    assert "30m before 4h after case.opened #1 at 2026-03-02 01:00 UTC" in words, words
    assert "= 2026-03-02 04:30 UTC" in words, words
    before = len(smtp_server.messages)
    with at("2026-03-02 04:29:30"):
        run(settings)
    assert _sent_to(smtp_server, before) == []
    with at("2026-03-02 04:30:30"):
        run(settings)
    [(to, subject)] = _sent_to(smtp_server, before)
    assert to == TEAM and str(case) in subject
    assert "reply due in 30 min, by 13:00 (high)" in subject, subject  # 05:00 UTC is 13:00 in Taipei
    assert "Reply promised by: Mon 2 Mar, 13:00" in body(parse(smtp_server.messages[-1]))


def test_the_warning_counts_the_promise_in_business_time_over_a_holiday(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    # Normal priority: 1 business day. Opened Friday 13 February 17:00 Taipei; the shop is closed
    # 16-20 February, so the promise is Monday 23 February 17:00 (09:00 UTC), the warning 08:30.
    case = _case(shop, priority="normal", opened="2026-02-13 09:00")
    with at("2026-02-13 09:01"):
        run(settings)
    [plan] = notifications(engine, rule="case-reply-due-team")
    assert _utc(plan["due_at"]) == datetime(2026, 2, 23, 8, 30, tzinfo=UTC)
    assert "Monday 23 February, 17:00" in body(parse(smtp_server.messages[0]))  # the acknowledgement
    with at("2026-02-23 08:30:30"):
        run(settings)
    assert [to for to, _ in _sent_to(smtp_server, 1)] == [TEAM]
    assert str(case) in parse(smtp_server.messages[-1])["Subject"]


def test_a_reopened_case_is_promised_afresh_and_that_promise_is_watched(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    case = _case(shop, priority="high", opened="2026-03-02 01:00")
    shop.event("case", case, "agent_replied", "2026-03-02 02:00", {"agent": "Sam"})
    shop.event("case", case, "resolved", "2026-03-02 03:00")
    with at("2026-03-02 04:31"):  # the first promise was kept: its watch is skipped
        run(settings)
    shop.event("case", case, "reopened", "2026-03-05 02:00")  # Thursday 10:00 Taipei: by 14:00
    with at("2026-03-05 02:01"):
        run(settings)
    reopened = next(parse(m) for m in smtp_server.messages if "reopened" in parse(m)["Subject"])
    assert str(case) in reopened["Subject"]
    assert "get back to you by Thursday 5 March, 14:00" in body(reopened)

    before = len(smtp_server.messages)
    with at("2026-03-05 05:29:30"):
        run(settings)
    assert _sent_to(smtp_server, before) == []
    with at("2026-03-05 05:30:30"):
        run(settings)
    [(to, subject)] = _sent_to(smtp_server, before)
    assert to == TEAM and "by 14:00" in subject
    assert "The customer reopened it" in body(parse(smtp_server.messages[-1]))
    with at("2026-03-05 06:00:30"):
        run(settings)
    [(to, _)] = _sent_to(smtp_server, before + 1)
    assert to == "mei@example.tw"
    assert "by Thursday 5 March, 14:00, and we have not yet" in body(parse(smtp_server.messages[-1]))
    [first] = notifications(engine, rule="case-reply-due-team")
    assert first["reason"] == "unless_happened"


def test_a_reply_after_the_reopening_stops_the_fresh_watch(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    case = _case(shop, priority="high", opened="2026-03-02 01:00")
    shop.event("case", case, "agent_replied", "2026-03-02 02:00")
    shop.event("case", case, "reopened", "2026-03-05 02:00")
    shop.event("case", case, "agent_replied", "2026-03-05 03:00")
    with at("2026-03-05 06:00:30"):
        run(settings)
    assert all(to != TEAM for to, _ in _sent_to(smtp_server))
    for rule in ("case-reopened-reply-due-team", "case-reopened-overdue-customer"):
        [row] = notifications(engine, rule=rule)
        assert row["reason"] == "unless_happened", rule


def test_preview_of_a_real_reopened_case_states_the_fresh_promise(settings: Settings, shop: Shop) -> None:
    case = _case(shop, priority="high", opened="2026-03-02 01:00")
    shop.event("case", case, "reopened", "2026-03-05 02:00")
    result = CliRunner().invoke(
        app,
        [
            *("--database-url", settings.database_url.reveal(), "--rules", str(settings.rules)),
            *("--templates", str(settings.templates), "preview", "case_reopened", "--case", str(case)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "get back to you by Thursday 5 March, 14:00" in result.output, result.output


# -- every new message, every locale ----------------------------------------------------------

# What SPEC §3 asks each to state, per locale: (apology, what happens next).
WORDS = {
    "promise_day_apology": {
        "en": ("sorry", "What happens next"),
        "zh-CN": ("抱歉", "接下来"),
        "zh-TW": ("抱歉", "接下來"),
    },
    "carrier_quiet": {
        "en": ("sorry", "What happens next"),
        "zh-CN": ("抱歉", "接下来"),
        "zh-TW": ("抱歉", "接下來"),
    },
    "case_reopened": {
        "en": ("reopened", "What happens next"),
        "zh-CN": ("重新打开", "接下来"),
        "zh-TW": ("重新開啟", "接下來"),
    },
}
PROMISED = {"en": "Friday 13 February", "zh-CN": "2月13日", "zh-TW": "2月13日"}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


@pytest.mark.parametrize("locale", ["en", "zh-CN", "zh-TW"])
@pytest.mark.parametrize("template", sorted(WORDS))
def test_each_new_message_states_what_the_spec_asks_in_each_locale(
    renderer: Renderer, template: str, locale: str
) -> None:
    context = sample_context(SAMPLE_TRIGGER_OF_TEMPLATE[template], locale)
    rendered = renderer.render(template, locale, context)
    number = context["case"]["number"] if template.startswith("case") else context["order"]["number"]
    assert number in rendered.subject
    for part in (html.unescape(rendered.html), rendered.text):
        for words in (number, *WORDS[template][locale]):
            assert words.lower() in part.lower(), (template, locale, words)
        if template == "case_reopened":
            assert "09:00" in part or "上午9:00" in part, "the fresh promise: Tuesday 24th, 09:00"
            assert "24" in part
        else:
            assert PROMISED[locale] in part, "the promised date"
        if template == "carrier_quiet":
            assert context["event"]["carrier"] in part and context["event"]["tracking_number"] in part
    assert "None" not in rendered.subject + rendered.text


def test_the_team_warning_says_how_long_is_left(renderer: Renderer) -> None:
    context = sample_context("case.opened", "en")
    context["now"] = context["reply_by"] - timedelta(minutes=30)
    rendered = renderer.render("case_reply_due_team", "en", context)
    assert rendered.subject == "Case 2087: reply due in 30 min, by 10:00 (normal)"
    assert "Reply promised by: Tue 17 Feb, 10:00" in rendered.text


# -- check refuses bad values of the new keys, with file and line ------------------------------

BAD = [
    ("at", "order.placed", 'at: "order.promised_date"', "is not a date and a time of day"),
    (
        "at",
        "order.placed",
        'at: "order.promised_date 25:00"',
        "'25:00' in 'order.promised_date 25:00' is not a time",
    ),
    ("at", "order.placed", 'at: "order.promised_date 14:00 moon"', "'moon' in"),
    ("at", "order.placed", 'at: "order.promised_dat 14:00"', "promised_dat"),
    ("at", "order.placed", 'at: "order.total 14:00"', "not a date"),
    ("at", "product.price_change", 'at: "event.effective_at 14:00"', "a date of an order or case"),
    ("after", "case.opened", 'after: "response_time - 30x"', "the offset '30x' is not a duration"),
    (
        "after",
        "order.placed",
        'after: "response_time - 30m"',
        "after: response_time only applies to case events",
    ),
]


@pytest.mark.parametrize(("key", "on", "line_text", "words"), BAD, ids=[b[2] for b in BAD])
def test_check_refuses_a_bad_value_of_the_new_keys_with_file_and_line(
    project: Path, key: str, on: str, line_text: str, words: str
) -> None:
    rules = project / "rules.yaml"
    before = rules.read_text(encoding="utf-8").rstrip("\n").splitlines()
    rule = [
        "  - name: broken-promise",
        f"    on: {on}",
        "    unless: [order.delivered]" if on.startswith("order.") else "    unless: [case.resolved]",
        f"    {line_text}",
        "    template: dispatch_delayed",
    ]
    if on.startswith("product."):
        rule[2] = "    to: team@blossom.example"
    rules.write_text("\n".join([*before, *rule]) + "\n", encoding="utf-8")
    key_line = len(before) + 4
    result = CliRunner().invoke(
        app, ["--rules", str(rules), "--templates", str(project / "templates"), "check"], env=SECRET
    )
    assert result.exit_code == 1, result.output
    assert f"{rules}:{key_line}" in result.output, result.output
    assert words in result.output, result.output
    assert "Traceback" not in result.output


def test_at_with_after_is_refused_and_at_alone_is_accepted(project: Path) -> None:
    rules = project / "rules.yaml"
    text = rules.read_text(encoding="utf-8").rstrip("\n")
    both = text + (
        "\n  - name: both\n    on: order.placed\n    unless: [order.delivered]\n    after: 1h\n"
        '    at: "order.promised_date 14:00"\n    template: dispatch_delayed\n'
    )
    rules.write_text(both, encoding="utf-8")
    result = CliRunner().invoke(
        app, ["--rules", str(rules), "--templates", str(project / "templates"), "check"], env=SECRET
    )
    assert result.exit_code == 1 and "use only one of delay, after, send_at and at" in result.output
    alone = text + (
        '\n  - name: day-before\n    on: order.placed\n    at: "order.promised_date - 1d 17:00 shop"\n'
        "    template: dispatch_delayed\n"
    )
    rules.write_text(alone, encoding="utf-8")
    result = CliRunner().invoke(
        app, ["--rules", str(rules), "--templates", str(project / "templates"), "check"], env=SECRET
    )
    assert result.exit_code == 0, result.output
