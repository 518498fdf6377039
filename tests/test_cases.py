"""Customer-service cases: acknowledge at once, keep the promise, follow up — with backdated
case events, `run --once`, a real SMTP server and freezegun at each timing boundary."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from freezegun import freeze_time
from starlette.applications import Starlette
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.settings import Settings
from notifier.tools.web import create_app
from tests.journey import body, notifications, parse, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

TEAM = "care-team@blossom.example"


@contextmanager
def at(moment: str) -> Iterator[None]:
    with freeze_time(moment, real_asyncio=True):
        yield


def _case(
    shop: Shop, *, priority: str = "high", locale: str = "zh-TW", opened: str = "2026-03-02 01:00"
) -> int:
    """A case opened (and its event) for a zh-TW customer in Taipei."""
    customer = shop.customer(name="林美玲", email="meiling@example.tw", locale=locale, timezone="Asia/Taipei")
    order = shop.order(customer)
    case = shop.case(customer, order_id=order, subject="玫瑰花瓣枯萎", priority=priority, opened_at=opened)
    shop.event("case", case, "opened", opened)
    return case


def _subjects(server: FaultySmtpServer) -> list[tuple[str, str]]:
    return [(m.rcpt_tos[0], parse(m)["Subject"]) for m in server.messages]


def test_acknowledged_at_once_with_the_promised_reply_time(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    case = _case(shop, priority="high")  # high: a person answers within 4 hours
    with at("2026-03-02 01:01"):
        run(settings)
    [(to, subject)] = _subjects(smtp_server)
    assert to == "meiling@example.tw" and str(case) in subject
    text = body(parse(smtp_server.messages[0]))
    assert "玫瑰花瓣枯萎" in text
    assert "下午1:00" in text, "01:00 UTC + 4 h = 05:00 UTC = 1 p.m. in Taipei"
    assert "我們會主動與您聯絡" in text, "we will get back to you"
    assert not re.search(r"call us|請(致電|來電|打電話|回電)", text, re.IGNORECASE), "never 'call us back'"


def test_promise_watch_fires_exactly_when_the_promise_is_broken(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    case = _case(shop, priority="high")
    with at("2026-03-02 01:01"):
        run(settings)
    with at("2026-03-02 04:59:59"):  # one second before the promised reply time
        run(settings)
    # Only the team's warning, half an hour before (case-reply-due-team): no one is told it is late.
    assert [to for to, _ in _subjects(smtp_server)] == ["meiling@example.tw", TEAM]
    with at("2026-03-02 05:00:30"):
        run(settings)
    sent = _subjects(smtp_server)[2:]
    assert {to for to, _ in sent} == {TEAM, "meiling@example.tw"}
    team = next(parse(m) for m in smtp_server.messages[2:] if m.rcpt_tos[0] == TEAM)
    team_text = body(team)
    assert str(case) in team["Subject"] and "high" in team_text.lower()
    assert "4.0" in team_text or "4 h" in team_text, "the case's age in hours"
    customer = next(parse(m) for m in smtp_server.messages[1:] if m.rcpt_tos[0] != TEAM)
    assert str(case) in customer["Subject"] and "案件" in customer["Subject"] + body(customer)


def test_no_promise_watch_when_answered_or_resolved_in_time(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    answered = _case(shop, priority="high")
    resolved = _case(shop, priority="urgent")
    shop.event("case", answered, "agent_replied", "2026-03-02 03:00", {"agent": "Amy"})
    shop.event("case", resolved, "resolved", "2026-03-02 01:30")
    with at("2026-03-02 05:01"):
        run(settings)
    assert all(to != TEAM for to, _ in _subjects(smtp_server))
    watch = notifications(engine, rule="case-overdue-team")
    assert {row["reason"] for row in watch} == {"unless_happened"}
    result = CliRunner().invoke(
        app, ["--database-url", settings.database_url.reveal(), "history", "--case", str(answered)]
    )
    assert result.exit_code == 0
    assert "case-received" in result.output and "sent" in result.output
    assert "unless_happened" in result.output and "case.agent_replied" in result.output


def test_follow_up_three_days_after_resolution_unless_reopened(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    solved = _case(shop, priority="low", opened="2026-03-02 01:00")
    reopened = _case(shop, priority="low", opened="2026-03-02 01:00")
    shop.event("case", solved, "agent_replied", "2026-03-02 02:00")
    shop.event("case", reopened, "agent_replied", "2026-03-02 02:00")
    shop.event("case", solved, "resolved", "2026-03-03 02:00", {"resolution": "Replacement sent"})
    shop.event("case", reopened, "resolved", "2026-03-03 02:00")
    shop.event("case", reopened, "reopened", "2026-03-04 02:00")
    with at("2026-03-06 01:59"):  # 2 minutes short of 3 days
        run(settings)
    before = len(smtp_server.messages)
    with at("2026-03-06 02:00:30"):
        run(settings)
    new = smtp_server.messages[before:]
    assert len(new) == 1, [parse(m)["Subject"] for m in new]
    follow_up = parse(new[0])
    assert str(solved) in follow_up["Subject"]
    assert "/not-solved/" in body(follow_up, "html")


def test_not_solved_link_reaches_the_team(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    serve: Callable[[Starlette], str],
) -> None:
    """The follow-up's link, clicked through a real HTTP client, becomes a notice to the team."""
    case = _case(shop, priority="normal", opened="2026-03-02 01:00")
    shop.event("case", case, "agent_replied", "2026-03-02 02:00")
    shop.event("case", case, "resolved", "2026-03-02 03:00")
    with at("2026-03-05 03:01"):
        run(settings)
    follow_up = parse(smtp_server.messages[-1])
    link = re.search(r'href="([^"]*/not-solved/[^"]+)"', body(follow_up, "html"))
    assert link is not None
    path = urlsplit(html.unescape(link.group(1))).path
    base = serve(create_app(settings, engine=engine))
    with httpx.Client(base_url=base, timeout=10) as client:  # clicked today, for real
        answer = client.post(path, data={"comment": "Still wilted <b>today</b>"})
    assert answer.status_code == 200
    run(settings)
    notice = parse(smtp_server.messages[-1])
    assert smtp_server.messages[-1].rcpt_tos == (TEAM,)
    assert str(case) in notice["Subject"]
    assert "Still wilted <b>today</b>" in body(notice)
    [row] = notifications(engine, rule="case-not-solved")
    assert row["state"] == "sent" and row["thread"] == f"case:{case}"
