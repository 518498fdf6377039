"""`notifier demo`: the embedded default runs, in three languages, and saves what it sent — every
message kind in every language its templates have, with times that agree with the timeline."""

from __future__ import annotations

import email
import re
import sqlite3
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from notifier.cli import app
from notifier.tools.demo_data import CASES, CUSTOMERS, ORDERS, RESOLUTIONS

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
Sent = list[tuple[str, str, EmailMessage]]  # (template, locale, the message as saved)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Sent]:
    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(out / "demo.db") as db:
        kinds = dict(
            ((mid, (template, locale)) for mid, template, locale in db.execute(
                "SELECT message_id, template, locale FROM notifier_notifications WHERE state = 'sent'"
            ))
        )  # fmt: skip
    sent: Sent = []
    for file in sorted((out / "mail").glob("*.eml")):
        message = email.message_from_bytes(file.read_bytes(), policy=default_policy)
        template, locale = kinds[message["Message-ID"]]
        sent.append((template, locale, message))  # type: ignore[arg-type]
    return out, result.output, sent


def _text(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def test_demo_sends_three_emails_per_order_in_three_languages(demo: tuple[Path, str, Sent]) -> None:
    out, output, sent = demo
    subjects = [message["Subject"] for _, _, message in sent]
    for order, words in (
        ("1042", ("confirmed", "on its way", "delivered")),
        ("1043", ("已确认", "已发货", "已送达")),
        ("1044", ("已確認", "已出貨", "已送達")),
    ):
        mine = [s for s in subjects if order in s]
        assert [any(w in s for s in mine) for w in words] == [True, True, True], (order, mine)
    assert any("1045" in s and "sorry" in s for s in subjects), "the late order got an apology"
    assert any("Case 501" in s and "solved" in s for s in subjects), "the follow-up went"
    assert f"{len(sent)} emails caught" in output
    assert (out / "demo.db").exists()


def _words(subject_template: Path) -> list[str]:
    """The fixed words of a subject template (what every rendering of it contains)."""
    text = subject_template.read_text(encoding="utf-8")
    text = re.sub(r"\{%.*?%\}.*?\{%\s*end\w+\s*%\}|\{%.*?%\}|\{#.*?#\}", "\0", text, flags=re.DOTALL)
    return [w.strip() for w in re.split(r"\{\{.*?\}\}|\0", text) if len(w.strip()) >= 2]


def test_every_message_kind_goes_in_every_language_it_has(demo: tuple[Path, str, Sent]) -> None:
    _, output, sent = demo
    shipped = {(f.parent.name, f.name.split(".")[0]) for f in TEMPLATES.glob("*/*.subject.txt")}
    missing = shipped - {(template, locale) for template, locale, _ in sent}
    assert not missing, f"never shown in the demo: {sorted(missing)}"
    for template, locale, message in sent:
        words = _words(TEMPLATES / template / f"{locale}.subject.txt")
        assert all(w in message["Subject"] for w in words), (template, locale, message["Subject"], words)
    # The zh-TW marketing mail: the rise in Taiwan dollars, to a customer who opted in.
    rise = [_text(m) for t, loc, m in sent if (t, loc) == ("price_change_warning", "zh-TW")]
    assert rise and "NT$1,680" in rise[0] and "NT$1,880" in rise[0], rise
    # The summary's table says which kind went in which language.
    matrix = output[output.index("by message kind and language") :]
    row = next(line for line in matrix.splitlines() if "case_received" in line)
    assert re.search(r"case_received\W+1\W+1\W+1\W", row), row


def _placed_line(locale: str, order: dict[str, object], zone: str) -> str:
    local = order["placed_at"].astimezone(ZoneInfo(zone))  # type: ignore[attr-defined]
    if locale == "en":
        return f"Placed: {local:%A} {local.day} {local:%B}, {local:%H:%M}"
    if locale == "zh-CN":
        return f"下单时间：{local.month}月{local.day}日 {local:%H:%M}"  # noqa: RUF001
    half = "上午" if local.hour < 12 else "下午"
    return f"訂購時間：{local.month}月{local.day}日 {half}{(local.hour - 1) % 12 + 1}:{local:%M}"  # noqa: RUF001


def test_the_delay_apology_quotes_the_local_time_the_order_was_placed(demo: tuple[Path, str, Sent]) -> None:
    _, _, sent = demo
    customers = {c["id"]: c for c in CUSTOMERS}
    apologies = [(loc, m) for t, loc, m in sent if t == "dispatch_delayed"]
    assert len(apologies) == 3, apologies
    for locale, message in apologies:
        number = int(re.findall(r"\d{4}", message["Subject"])[0])
        order = next(o for o in ORDERS if o["id"] == number)
        customer = customers[order["customer_id"]]
        assert customer["locale"] == locale
        line = _placed_line(locale, order, str(customer["timezone"]))
        assert line in _text(message), (line, _text(message))


def test_the_follow_up_quotes_a_resolution_that_reads_true_days_later(demo: tuple[Path, str, Sent]) -> None:
    _, _, sent = demo
    follow_ups = [m for t, _, m in sent if t == "case_follow_up"]
    assert len(follow_ups) == len(CASES), follow_ups
    for message in follow_ups:
        body = _text(message)
        case = int(re.findall(r"\d{3}", message["Subject"])[0])
        assert RESOLUTIONS[case] in body, body
        assert not re.search(r"\btoday\b|今天|今日", body), body
        # The resolution names the day it was done, which is three days before the follow-up.
        sent_at = email.utils.parsedate_to_datetime(message["Date"])
        assert f"{sent_at.day - 3}" in RESOLUTIONS[case], (RESOLUTIONS[case], message["Date"])
