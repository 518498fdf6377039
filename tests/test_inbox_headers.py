"""Headers and bodies inboxes expect, as a real SMTP server received them from `run --once`:
Auto-Submitted, team notices without the customer's footer, a preheader hidden without a
low-contrast colour, an IDN recipient's name, bodies without control characters, the Date of
the attempt; and `check`'s warning about a public URL that is not HTTPS."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

from freezegun import freeze_time
from typer.testing import CliRunner

from notifier.cli import app
from notifier.compose.samples import sample_context, trigger_of
from notifier.config.settings import Settings
from notifier.config.validate import load_checked
from notifier.core.context import brand_of
from notifier.run.daemon import EXIT_OK
from tests.journey import body, notifications, parse, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

SHIPPED = Path(__file__).resolve().parent.parent
TEAM = "care-team@blossom.example"
CUSTOMER_FOOTER = "a person reads every reply"


def _sent(settings: Settings, moment: str) -> None:
    with freeze_time(ts(moment), real_asyncio=True):
        assert run(settings)[0] == EXIT_OK


def _placed(shop: Shop, *, name: str = "Ms Lin", email: str = "lin@example.com") -> int:
    customer = shop.customer(name=name, email=email, timezone="UTC")
    order = shop.order(customer, ship_to_name=name)
    shop.event("order", order, "placed", "2026-02-10 09:00")
    return order


def _only(server: FaultySmtpServer) -> EmailMessage:
    [message] = server.messages
    return parse(message)


def test_every_message_says_it_was_generated_automatically(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    _placed(shop)
    _sent(settings, "2026-02-10 09:01")
    # RFC 3834 5: a vacation responder does not answer this.
    assert _only(smtp_server).get_all("Auto-Submitted") == ["auto-generated"]


def test_team_notices_end_without_the_customers_footer(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    customer = shop.customer(name="Ms Lin", email="lin@example.com", timezone="UTC")
    case = shop.case(customer, subject="Wilted roses", priority="high", opened_at="2026-03-02 01:00")
    shop.event("case", case, "opened", "2026-03-02 01:00")
    _sent(settings, "2026-03-02 01:01")  # the acknowledgement
    _sent(settings, "2026-03-02 05:00:30")  # the promise is broken: team and customer told

    by_recipient = {m.rcpt_tos[0]: parse(m) for m in smtp_server.messages[1:]}
    team, customer_copy = by_recipient[TEAM], by_recipient["lin@example.com"]
    for kind in ("plain", "html"):
        assert CUSTOMER_FOOTER not in body(team, kind), f"the team's {kind} part has the customer footer"
        assert "internal notice" in body(team, kind)
        assert CUSTOMER_FOOTER in body(customer_copy, kind)


def test_the_preheader_is_hidden_without_a_colour_like_the_background(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    _placed(shop)
    _sent(settings, "2026-02-10 09:01")
    html = body(_only(smtp_server), "html")

    [style] = re.findall(r'<div class="preheader" style="([^"]*)"', html)
    properties = dict(item.split(":", 1) for item in style.replace(" ", "").split(";") if item)
    assert properties["display"] == "none" and properties["opacity"] == "0"
    assert properties["mso-hide"] == "all"
    assert "color" not in properties, "text coloured like the background is HTML_FONT_LOW_CONTRAST"


def test_an_international_domain_keeps_the_recipients_name(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    _placed(shop, name="王芳", email="user@bücher.example")
    _sent(settings, "2026-02-10 09:01")

    [received] = smtp_server.messages
    assert received.rcpt_tos == ("user@xn--bcher-kva.example",)
    [to] = parse(received)["To"].addresses
    assert (to.display_name, to.addr_spec) == ("王芳", "user@xn--bcher-kva.example")


def test_control_and_separator_characters_never_reach_the_bodies(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    _placed(shop, name="Lin\u2028Mei\u0085Ling\u2029\x07\x1b[31m\x9b")
    _sent(settings, "2026-02-10 09:01")
    message = _only(smtp_server)

    for kind in ("plain", "html"):
        text = body(message, kind)
        assert "Lin" in text and "Mei" in text
        unwanted = re.findall("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]", text)
        assert unwanted == [], f"the {kind} part carries {unwanted!r}"
    assert "\u2028" not in str(message["To"])


def test_a_retried_message_is_dated_when_it_goes_and_keeps_its_message_id(
    settings: Settings, shop: Shop, engine: object, smtp_server: FaultySmtpServer
) -> None:
    _placed(shop)
    smtp_server.fail(451, on="DATA", times=1)
    _sent(settings, "2026-02-10 09:01")  # rendered, refused after the message: retried later
    [row] = notifications(engine, rule="order-confirmation")  # type: ignore[arg-type]
    assert row["message_id"]
    _sent(settings, "2026-02-10 21:30")  # twelve and a half hours later

    message = _only(smtp_server)
    assert message["Date"].datetime == ts("2026-02-10 21:30"), "a DATE_IN_PAST_12_24 Date otherwise"
    assert message["Message-ID"] == row["message_id"], "the same notification, the same id"


def test_check_warns_when_the_public_url_is_not_https(settings: Settings) -> None:
    files = ["--rules", str(settings.rules), "--templates", str(settings.templates), "check"]
    # The shipped marketing rule needs the secret key, or check refuses it.
    database = {"NOTIFIER_DATABASE_URL": settings.database_url.reveal(), "NOTIFIER_SECRET_KEY": "k" * 32}

    plain = CliRunner().invoke(app, files, env={**database, "NOTIFIER_PUBLIC_URL": "http://shop.example"})
    secure = CliRunner().invoke(app, files, env={**database, "NOTIFIER_PUBLIC_URL": "https://shop.example"})

    assert plain.exit_code == 0, "a warning, not a refusal"
    output = " ".join(plain.output.split())
    assert "warning: NOTIFIER_PUBLIC_URL is 'http://shop.example', not an https:// address" in output
    assert "RFC 8058" in output
    assert secure.exit_code == 0 and "NOTIFIER_PUBLIC_URL" not in secure.output


def test_no_shipped_notice_to_the_team_ends_with_the_customers_footer() -> None:
    rules, renderer = load_checked(SHIPPED / "rules.yaml", SHIPPED / "templates")
    team = [rule for rule in rules.rules if rule.to is not None]
    assert {rule.template for rule in team} >= {"case_overdue_team", "case_not_solved_team"}
    for rule in team:
        context = {**sample_context(trigger_of(rule.template, rules), "en"), "brand": brand_of(rules)}
        rendered = renderer.render(rule.template, "en", context)
        for part in (rendered.text, rendered.html):
            assert CUSTOMER_FOOTER not in part and "internal notice" in part, rule.name
