"""Safe edits while the daemon runs: a good edit of rules.yaml or a template takes effect
within seconds, without a restart; a bad one is refused, logged with file:line and the
reason, shown by `notifier status`, and the last good rules and templates stay in force
until the file is fixed.

(A bad file at start-up is covered in test_daemon.py.)
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.settings import Settings
from notifier.db.store import STATE
from tests.daemons import start_daemon, stop, wait_for
from tests.journey import notifications, parse
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

LIMIT = 30.0  # seconds; with a 1 s poll interval an edit is seen within about one


def _published(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {row.key: row.value for row in conn.execute(sa.select(STATE.c.key, STATE.c.value))}


def _status(settings: Settings) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["--database-url", settings.database_url.reveal(), "status", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def _placed(shop: Shop, email: str, kind: str = "placed", order: int | None = None) -> int:
    if order is None:
        order = shop.order(shop.customer(email=email, timezone="UTC"))
    data = {"carrier": "DHL", "tracking_number": "TN1"} if kind == "dispatched" else None
    shop.event("order", order, kind, f"{datetime.now(UTC):%Y-%m-%d %H:%M}", data)
    return order


def _settled(engine: sa.Engine, rule: str, order: int) -> Any:
    """The notification once it has left the queue (sent, failed or skipped)."""
    found: list[Any] = []

    def settled() -> bool:
        rows = notifications(engine, rule=rule, subject_id=order)
        found[:] = rows
        return bool(rows) and rows[0]["state"] not in ("queued", "sending")

    wait_for(settled, LIMIT, f"{rule} for order {order}")
    return found[0]


def _first_sent(shop: Shop, engine: sa.Engine) -> int:
    """An order confirmation, sent: the daemon is up and sending. Returns the order."""
    first = _placed(shop, "first@example.com")
    assert _settled(engine, "order-confirmation", first)["state"] == "sent"
    return first


def _subject_to(smtp_server: FaultySmtpServer, email: str) -> str:
    [message] = [m for m in smtp_server.messages if m.rcpt_tos == (email,)]
    return str(parse(message)["Subject"])


def _line_after(path: Path, anchor: str, new: str) -> int:
    """Insert `new` after the line `anchor`; returns the 1-based line number of `new`."""
    lines = path.read_text().splitlines()
    at = lines.index(anchor) + 1
    lines.insert(at, new)
    path.write_text("\n".join(lines) + "\n")
    return at + 1


@pytest.fixture
def daemon(settings: Settings, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = tmp_path / "daemon.log"
    process = start_daemon(settings, log)  # polls every second
    yield process, log
    stop([process])
    assert process.returncode == 0, log.read_text()[-3000:]


@pytest.mark.slow
def test_rules_edits_good_and_bad_while_running(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    daemon: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, log = daemon
    rules = Path(settings.rules)
    good_rules = rules.read_text()
    _first_sent(shop, engine)
    digest = _published(engine)["rules.digest"]

    # A bad edit: refused, with file, line and reason in the log and in `status`.
    line = _line_after(rules, "    template: order_confirmation", "    colour: red")
    wait_for(lambda: bool(_published(engine).get("reload.error")), LIMIT, "the bad edit to be noticed")
    where = f"{rules}:{line}"
    error = _status(settings)["published"]["reload.error"]
    assert where in error and "unknown key 'colour'" in error, error
    wait_for(lambda: where in log.read_text(), LIMIT, "the refusal in the log")
    assert "keeping the last good ones" in log.read_text()
    assert _published(engine)["rules.digest"] == digest
    # The last good rules stay in force.
    second = _placed(shop, "second@example.com")
    assert _settled(engine, "order-confirmation", second)["state"] == "sent"

    # A good edit (the fix, and order confirmations switched off) clears the error and
    # takes effect at once.
    rules.write_text(
        good_rules.replace(
            "  - name: order-confirmation\n    on: order.placed\n",
            "  - name: order-confirmation\n    on: order.placed\n    enabled: false\n",
        )
    )
    assert rules.read_text() != good_rules
    wait_for(lambda: _published(engine)["rules.digest"] != digest, LIMIT, "the good edit to be loaded")
    published = _status(settings)["published"]
    assert published["reload.error"] == "" and published["rules.digest"] != digest
    third = _placed(shop, "third@example.com")
    _placed(shop, "third@example.com", kind="dispatched", order=third)
    assert _settled(engine, "order-dispatched", third)["state"] == "sent"
    assert notifications(engine, rule="order-confirmation", subject_id=third) == []
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        "first@example.com",
        "second@example.com",
        "third@example.com",  # the dispatch email only
    ]
    assert process.poll() is None and log.read_text().count("notifier running as") == 1


def _break(html: Path) -> int:
    text = html.read_text()
    html.write_text(text + "{% if %}\n")
    return len(text.splitlines()) + 1


@pytest.mark.slow
def test_a_good_template_edit_takes_effect_without_a_restart(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    daemon: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, log = daemon
    first = _first_sent(shop, engine)
    assert _subject_to(smtp_server, "first@example.com") == f"Order {first} confirmed"
    subject = Path(settings.templates) / "order_confirmation" / "en.subject.txt"
    subject.write_text("Good news: order {{ order.number }} is confirmed\n")
    reloaded = _published(engine)["reload.at"]
    wait_for(lambda: _published(engine)["reload.at"] != reloaded, LIMIT, "the edit to be loaded")
    second = _placed(shop, "second@example.com")
    assert _settled(engine, "order-confirmation", second)["state"] == "sent"
    assert _subject_to(smtp_server, "second@example.com") == f"Good news: order {second} is confirmed"
    assert process.poll() is None and log.read_text().count("notifier running as") == 1


@pytest.mark.slow
def test_a_broken_template_edit_is_refused_and_reported_until_fixed(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    daemon: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, log = daemon
    _first_sent(shop, engine)
    html = Path(settings.templates) / "order_confirmation" / "en.html"
    good = html.read_text()
    line = _break(html)
    wait_for(lambda: bool(_published(engine).get("reload.error")), LIMIT, "the broken template to be noticed")
    where = f"{html}:{line}"
    error = _status(settings)["published"]["reload.error"]
    assert where in error and "syntax error" in error, error
    wait_for(lambda: where in log.read_text(), LIMIT, "the refusal in the log")
    html.write_text(good)
    wait_for(lambda: _published(engine).get("reload.error") == "", LIMIT, "the fix to clear the error")
    assert _status(settings)["published"]["reload.error"] == ""
    second = _placed(shop, "second@example.com")
    assert _settled(engine, "order-confirmation", second)["state"] == "sent"
    assert process.poll() is None


@pytest.mark.slow
def test_a_broken_template_edit_keeps_the_last_good_template_in_force(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    daemon: tuple[subprocess.Popen[bytes], Path],
) -> None:
    _first_sent(shop, engine)
    _break(Path(settings.templates) / "order_confirmation" / "en.html")
    wait_for(lambda: bool(_published(engine).get("reload.error")), LIMIT, "the broken template to be noticed")
    second = _placed(shop, "second@example.com")
    row = _settled(engine, "order-confirmation", second)
    assert row["state"] == "sent", (row["state"], row["reason"], row["detail"])
    assert _subject_to(smtp_server, "second@example.com") == f"Order {second} confirmed"


@pytest.mark.slow
def test_a_locale_added_within_a_refused_edit_does_not_reach_customers(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    daemon: tuple[subprocess.Popen[bytes], Path],
) -> None:
    """The edit that adds Japanese order confirmations also breaks another template: the
    whole edit is refused, so a Japanese customer still gets the English message."""
    _first_sent(shop, engine)
    templates = Path(settings.templates)
    _break(templates / "order_dispatched" / "en.html")
    japanese = templates / "order_confirmation"
    (japanese / "ja.subject.txt").write_text("ご注文 {{ order.number }} を承りました\n")
    (japanese / "ja.html").write_text("<p>{{ customer.name }} 様</p>\n")
    wait_for(lambda: bool(_published(engine).get("reload.error")), LIMIT, "the refused edit to be noticed")
    order = shop.order(shop.customer(email="ja@example.com", timezone="Asia/Tokyo", locale="ja"))
    _placed(shop, "ja@example.com", order=order)
    row = _settled(engine, "order-confirmation", order)
    assert row["state"] == "sent", (row["state"], row["reason"], row["detail"])
    assert _subject_to(smtp_server, "ja@example.com") == f"Order {order} confirmed"


@pytest.mark.slow
def test_a_template_edit_check_refuses_is_refused_by_the_running_daemon(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    daemon: tuple[subprocess.Popen[bytes], Path],
) -> None:
    """An undefined name and a runaway loop: `check` exits 1 on each, and so the daemon
    keeps the last good template (it logged "reloaded" and failed the next message before)."""
    process, log = daemon
    _first_sent(shop, engine)
    html = Path(settings.templates) / "order_confirmation" / "en.html"
    good = html.read_text()
    for edit, words in [
        ("<p>{{ customer.nickname }}</p>", "nickname"),
        ("{% for a in range(3000) %}{% for b in range(3000) %}{{ b }}{% endfor %}{% endfor %}", "limit"),
    ]:
        html.write_text(good.replace("{% block content %}", "{% block content %}" + edit, 1))
        checked = CliRunner().invoke(
            app, ["--rules", str(settings.rules), "--templates", str(settings.templates), "check"]
        )
        assert checked.exit_code == 1 and str(html) in checked.output and words in checked.output

        def refused(words: str = words) -> bool:
            return words in (_published(engine).get("reload.error") or "")

        wait_for(refused, LIMIT, f"the edit with {words} to be refused")
    second = _placed(shop, "second@example.com")
    row = _settled(engine, "order-confirmation", second)
    assert row["state"] == "sent", (row["state"], row["reason"], row["detail"])
    assert _subject_to(smtp_server, "second@example.com") == f"Order {second} confirmed"
    assert process.poll() is None and "keeping the last good ones" in log.read_text()
