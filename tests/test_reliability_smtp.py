"""SMTP trouble through the whole pipeline (`run --once`, a real SMTP server that misbehaves).

A transient failure (4xx, a dropped connection, no answer) is retried with growing back-off
until NOTIFIER_RETRY_FOR; a permanent one (5xx) is not, and a hard bounce of marketing mail
puts the address on the suppression list. A server that cannot be used at all (refused
connection, TLS, login) stalls sending: nothing is marked failed and no attempt is counted
against a message, and everything goes once the server is usable.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.settings import Secret, Settings
from notifier.core.timing import as_utc
from notifier.db.store import ATTEMPTS, STATE, SUPPRESSIONS
from notifier.run.daemon import EXIT_OK, EXIT_SMTP_UNAVAILABLE
from tests.daemons import start_daemon, stop, wait_for
from tests.journey import notifications, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

PLACED = "2026-02-10 09:00"
NOW = ts("2026-02-10 09:01")

MARKETING_RULE = """
  - name: win-back
    on: order.cancelled
    category: marketing
    template: thank_you
"""


def _with_marketing_rule(rules: Path) -> None:
    """The rules plus the win-back offer; the shipped cancellation notice is switched off, so
    the offer is the one message a cancellation sends."""
    shipped = "  - name: order-cancelled\n    on: order.cancelled\n"
    text = rules.read_text()
    assert shipped in text
    rules.write_text(text.replace(shipped, shipped + "    enabled: false\n") + MARKETING_RULE)


def _order(shop: Shop, email: str | None = None, *, opt_in: bool = False) -> int:
    customer = shop.customer(email=email, timezone="UTC", marketing_opt_in=opt_in)
    product = shop.product(price="300.00")
    return shop.order(customer, items=[(product, 1)])


def _placed(shop: Shop, email: str | None = None, at: str = PLACED) -> int:
    order = _order(shop, email)
    shop.event("order", order, "placed", at)
    return order


def _confirmation(engine: sa.Engine, order: int) -> Any:
    [row] = notifications(engine, rule="order-confirmation", subject_id=order)
    return row


def _run_at(settings: Settings, moment: datetime) -> tuple[int, Any]:
    with freeze_time(moment, real_asyncio=True):
        return run(settings)


def _published(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {row.key: row.value for row in conn.execute(sa.select(STATE.c.key, STATE.c.value))}


def _attempt_rows(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(ATTEMPTS).order_by(ATTEMPTS.c.id)).mappings())


def _cli(settings: Settings, *args: str) -> str:
    result = CliRunner().invoke(app, ["--database-url", settings.database_url.reveal(), *args])
    assert result.exit_code == 0, result.output
    return result.output


# --- transient: retried with growing back-off, then sent ------------------------------------


@pytest.mark.parametrize(
    ("code", "step"),
    [(421, "MAIL"), (451, "RCPT"), (451, "DATA"), (452, "RCPT")],
    ids=["421-mail", "451-rcpt", "451-data", "452-rcpt"],
)
def test_a_transient_reply_is_retried_with_growing_backoff_then_sent(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    code: int,
    step: Any,
) -> None:
    order = _placed(shop, "lin@example.com")
    smtp_server.fail(code, on=step, times=3)
    now = NOW
    waits: list[timedelta] = []
    for attempt in (1, 2, 3):
        exit_code, result = _run_at(settings, now)
        assert exit_code == EXIT_OK and result.retrying == 1 and result.failed == 0
        row = _confirmation(engine, order)
        assert row["state"] == "retrying", row
        assert row["attempts"] == attempt and str(code) in row["detail"]
        next_attempt = as_utc(row["next_attempt_at"])
        waits.append(next_attempt - now)
        if attempt == 1:
            # Not a moment before the back-off has passed.
            _run_at(settings, next_attempt - timedelta(seconds=1))
            assert _confirmation(engine, order)["attempts"] == 1
        now = next_attempt + timedelta(seconds=1)
    assert smtp_server.messages == []
    # NOTIFIER_RETRY_BACKOFF is 60 s here: about a minute, then each wait longer than the last.
    assert timedelta(seconds=48) <= waits[0] <= timedelta(seconds=72), waits
    assert waits[0] < waits[1] < waits[2], waits
    exit_code, result = _run_at(settings, now)
    assert exit_code == EXIT_OK and result.sent == 1
    row = _confirmation(engine, order)
    assert row["state"] == "sent" and row["attempts"] == 4
    [received] = smtp_server.messages
    assert received.rcpt_tos == ("lin@example.com",) and received.message_id == row["message_id"]
    outcomes = [a["outcome"] for a in _attempt_rows(engine)]
    assert outcomes == ["transient", "transient", "transient", "sent"]


def test_a_connection_dropped_during_data_is_retried_and_later_sent(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    order = _placed(shop, "lin@example.com")
    smtp_server.drop(on="DATA")
    exit_code, result = _run_at(settings, NOW)
    assert exit_code == EXIT_OK and result.retrying == 1 and smtp_server.messages == []
    row = _confirmation(engine, order)
    assert row["state"] == "retrying" and row["attempts"] == 1
    assert "dropped" in row["detail"] or "broke" in row["detail"], row["detail"]
    _run_at(settings, as_utc(row["next_attempt_at"]) + timedelta(seconds=1))
    row = _confirmation(engine, order)
    assert row["state"] == "sent" and row["attempts"] == 2
    assert [m.message_id for m in smtp_server.messages] == [row["message_id"]]


def test_a_server_that_stops_answering_is_retried_within_the_timeout(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    settings = replace(settings, smtp_timeout=timedelta(seconds=0.5))
    now = datetime.now(UTC).replace(microsecond=0)
    order = _placed(shop, "lin@example.com", at=f"{now:%Y-%m-%d %H:%M}")
    smtp_server.hang(on="DATA")
    started = time.monotonic()
    exit_code, result = run(settings)
    elapsed = time.monotonic() - started
    assert exit_code == EXIT_OK and result.retrying == 1
    assert elapsed < 10, f"run --once took {elapsed:.1f}s with a 0.5 s SMTP timeout"
    row = _confirmation(engine, order)
    assert row["state"] == "retrying" and row["attempts"] == 1 and "no reply" in row["detail"]
    _run_at(settings, as_utc(row["next_attempt_at"]) + timedelta(seconds=1))
    row = _confirmation(engine, order)
    assert row["state"] == "sent" and row["attempts"] == 2 and len(smtp_server.messages) == 1


def test_a_server_that_never_greets_stalls_within_the_timeout_and_costs_nothing(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    settings = replace(settings, smtp_timeout=timedelta(seconds=0.5))
    now = datetime.now(UTC).replace(microsecond=0)
    order = _placed(shop, "lin@example.com", at=f"{now:%Y-%m-%d %H:%M}")
    smtp_server.hang(on="connect")
    started = time.monotonic()
    exit_code, result = run(settings)
    elapsed = time.monotonic() - started
    assert exit_code == EXIT_SMTP_UNAVAILABLE and result.failed == 0
    assert elapsed < 10, f"run --once took {elapsed:.1f}s with a 0.5 s SMTP timeout"
    row = _confirmation(engine, order)
    assert row["state"] == "queued" and row["attempts"] == 0
    assert "greeting" in _published(engine)["smtp.last_error"]
    exit_code, result = run(settings)
    assert exit_code == EXIT_OK and result.sent == 1
    assert _confirmation(engine, order)["attempts"] == 1


# --- permanent: failed at once, never retried; hard bounces suppress marketing ---------------


PERMANENT = [(550, "RCPT"), (553, "RCPT"), (554, "DATA")]
PERMANENT_IDS = ["550-rcpt", "553-rcpt", "554-data"]


def _suppressed(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(SUPPRESSIONS.c.address, SUPPRESSIONS.c.reason)).all())


@pytest.mark.parametrize(("code", "step"), PERMANENT, ids=PERMANENT_IDS)
def test_a_permanent_reply_fails_the_message_and_is_not_retried(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    code: int,
    step: Any,
) -> None:
    order = _placed(shop, "gone@example.com")
    smtp_server.fail(code, on=step, times=None, recipient="gone@example.com")
    exit_code, result = _run_at(settings, NOW)
    assert exit_code == EXIT_OK and result.sent == 0 and result.failed == 1 and result.retrying == 0
    row = _confirmation(engine, order)
    assert row["state"] == "failed" and row["reason"] == "smtp_permanent", row
    assert row["attempts"] == 1 and str(code) in row["detail"]
    history = _cli(settings, "history", "--order", str(order))
    assert "failed (smtp_permanent)" in history and str(code) in history
    status = json.loads(_cli(settings, "status", "--json"))
    assert status["by_rule"]["order-confirmation"] == {"failed": 1}

    attempts = len(_attempt_rows(engine))
    _run_at(settings, NOW + timedelta(hours=2))
    assert len(_attempt_rows(engine)) == attempts, "a permanent failure is never tried again"
    row = _confirmation(engine, order)
    assert row["state"] == "failed" and row["attempts"] == 1 and smtp_server.messages == []


@pytest.mark.parametrize(("code", "step"), PERMANENT, ids=PERMANENT_IDS)
def test_a_hard_bounce_of_marketing_mail_suppresses_the_address(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    code: int,
    step: Any,
) -> None:
    _with_marketing_rule(Path(settings.rules))
    fan = _order(shop, "fan@example.com", opt_in=True)
    shop.event("order", fan, "cancelled", "2026-02-10 11:59")
    smtp_server.fail(code, on=step, times=None, recipient="fan@example.com")
    moment = ts("2026-02-10 12:00")  # noon in UTC: no quiet hours
    exit_code, result = _run_at(settings, moment)
    assert exit_code == EXIT_OK and result.failed == 1
    [offer] = notifications(engine, rule="win-back")
    assert offer["state"] == "failed" and offer["reason"] == "smtp_permanent" and str(code) in offer["detail"]
    hard_bounce = code in (
        550,
        553,
    )  # "no such user", "mailbox name not allowed"; 554 is not about the address
    assert _suppressed(engine) == ({"fan@example.com": "hard bounce"} if hard_bounce else {})

    # The next marketing message to a hard-bounced address is not even tried.
    smtp_server.clear_faults()
    again = _order(shop, "fan@example.com", opt_in=True)
    shop.event("order", again, "cancelled", "2026-02-10 13:59")
    _run_at(settings, ts("2026-02-10 14:00"))
    [offer] = notifications(engine, rule="win-back", subject_id=again)
    if hard_bounce:
        assert offer["state"] == "skipped" and offer["reason"] == "suppressed"
        assert smtp_server.messages == []
    else:
        assert offer["state"] == "sent" and len(smtp_server.messages) == 1


@pytest.mark.parametrize("code", [550, 553])
def test_a_hard_bounce_of_transactional_mail_also_stops_marketing_to_that_address(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer, code: int
) -> None:
    """The mailbox does not exist: transactional mail still tries it (an order is an order),
    but no marketing is sent to it again."""
    order = _placed(shop, "plain@example.com")
    smtp_server.fail(code, on="RCPT", times=None, recipient="plain@example.com")
    _run_at(settings, NOW)
    row = _confirmation(engine, order)
    assert row["state"] == "failed" and row["reason"] == "smtp_permanent"
    assert set(_suppressed(engine)) == {"plain@example.com"}


def test_retries_give_up_after_retry_for(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    order = _placed(shop, "lin@example.com")
    smtp_server.fail(451, on="RCPT", times=None)
    _run_at(settings, NOW)
    assert _confirmation(engine, order)["state"] == "retrying"
    status = json.loads(_cli(settings, "status", "--json"))
    assert status["by_state"]["retrying"] == 1
    # Still trying just inside NOTIFIER_RETRY_FOR (24 h) ...
    _run_at(settings, NOW + timedelta(hours=23, minutes=59))
    row = _confirmation(engine, order)
    assert row["state"] == "retrying" and row["attempts"] == 2
    # ... and given up at the next attempt, once it has failed for longer.
    third = as_utc(row["next_attempt_at"]) + timedelta(seconds=1)
    assert third - NOW >= timedelta(hours=24)
    exit_code, result = _run_at(settings, third)
    assert exit_code == EXIT_OK and result.failed == 1
    row = _confirmation(engine, order)
    assert row["state"] == "failed" and row["reason"] == "retries_exhausted" and row["attempts"] == 3
    assert "451" in row["detail"]
    _run_at(settings, NOW + timedelta(hours=30))
    assert _confirmation(engine, order)["attempts"] == 3 and smtp_server.messages == []
    status = json.loads(_cli(settings, "status", "--json"))
    assert status["by_state"]["failed"] == 1 and status["by_state"]["retrying"] == 0
    assert "failed (retries_exhausted)" in _cli(settings, "history", "--order", str(order))


# --- unusable server: sending stalls, nothing is failed or counted ----------------------------


def _assert_stalled(engine: sa.Engine, orders: list[int], code: int, result: Any) -> str:
    assert code == EXIT_SMTP_UNAVAILABLE
    assert result.failed == 0 and result.sent == 0 and result.retrying == 0
    for order in orders:
        row = _confirmation(engine, order)
        assert row["state"] == "queued" and row["attempts"] == 0 and row["reason"] is None, row
    assert notifications(engine, state="failed") == []
    return _published(engine)["smtp.last_error"]


def test_starttls_the_server_does_not_offer_stalls_until_the_settings_are_fixed(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    orders = [_placed(shop) for _ in range(3)]
    wrong = replace(settings, smtp_url=Secret(f"{smtp_server.url}?starttls=true"))
    exit_code, result = _run_at(wrong, NOW)
    reason = _assert_stalled(engine, orders, exit_code, result)
    assert "STARTTLS" in reason and "not supported" in reason, reason
    assert any("STARTTLS" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    assert smtp_server.messages == []
    exit_code, result = _run_at(settings, NOW)
    assert exit_code == EXIT_OK and result.sent == 3 and len(smtp_server.messages) == 3


@pytest.mark.parametrize("login", ["", "shop:wrong-password@"], ids=["no-login", "wrong-password"])
def test_a_login_the_server_refuses_stalls_until_the_settings_are_fixed(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    caplog: pytest.LogCaptureFixture,
    login: str,
) -> None:
    smtp_server.require_auth("shop", "s3cret")
    orders = [_placed(shop) for _ in range(3)]
    address = smtp_server.url.removeprefix("smtp://")
    plain = Secret(f"smtp://{login}{address}?insecure_auth=true")  # no TLS here: a login in clear
    exit_code, result = _run_at(replace(settings, smtp_url=plain), NOW)
    reason = _assert_stalled(engine, orders, exit_code, result)
    assert "Authentication" in reason or "AUTH" in reason, reason
    assert any("SMTP server unusable" in r.getMessage() for r in caplog.records)
    exit_code, result = _run_at(settings, NOW)  # still no login: still stalled, still nothing lost
    _assert_stalled(engine, orders, exit_code, result)
    good = replace(settings, smtp_url=Secret(f"smtp://shop:s3cret@{address}?insecure_auth=true"))
    exit_code, result = _run_at(good, NOW)
    assert exit_code == EXIT_OK and result.sent == 3
    assert sorted(m.rcpt_tos for m in smtp_server.messages) == sorted(
        (_confirmation(engine, order)["recipient"],) for order in orders
    )
    assert all(_confirmation(engine, order)["attempts"] == 1 for order in orders)


def test_a_server_down_for_a_while_loses_nothing(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    smtp_server.stop()
    first = [_placed(shop) for _ in range(3)]
    exit_code, result = _run_at(settings, NOW)
    reason = _assert_stalled(engine, first, exit_code, result)
    assert "refused" in reason, reason
    later = [_placed(shop, at="2026-02-10 09:30") for _ in range(2)]
    exit_code, result = _run_at(settings, ts("2026-02-10 09:31"))
    _assert_stalled(engine, first + later, exit_code, result)
    smtp_server.start()
    exit_code, result = _run_at(settings, ts("2026-02-10 10:00"))
    assert exit_code == EXIT_OK and result.sent == 5
    ids = [m.message_id for m in smtp_server.messages]
    assert len(ids) == 5 and len(set(ids)) == 5
    assert {row["message_id"] for row in notifications(engine, rule="order-confirmation")} == set(ids)


def test_status_stops_showing_the_smtp_error_once_sending_resumes(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    smtp_server.stop()
    _placed(shop)
    exit_code, _ = _run_at(settings, NOW)
    assert exit_code == EXIT_SMTP_UNAVAILABLE and _published(engine)["smtp.last_error"]
    smtp_server.start()
    exit_code, result = _run_at(settings, NOW)
    assert exit_code == EXIT_OK and result.sent == 1
    published = json.loads(_cli(settings, "status", "--json"))["published"]
    assert not published.get("smtp.last_error"), f"status still shows {published['smtp.last_error']!r}"


@pytest.mark.slow
def test_a_running_daemon_waits_out_an_smtp_outage_and_loses_nothing(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    smtp_server.stop()
    now = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
    orders = [_placed(shop, at=now) for _ in range(5)]
    log = tmp_path / "daemon.log"
    daemon = start_daemon(settings, log)
    try:
        wait_for(lambda: "SMTP server unusable" in log.read_text(), 30, "the outage to be noticed")
        wait_for(lambda: bool(_published(engine).get("smtp.last_error")), 30, "the outage in status")
        assert "refused" in _published(engine)["smtp.last_error"]
        for order in orders:
            row = _confirmation(engine, order)
            assert row["state"] in ("queued", "sending") and row["attempts"] == 0, row
        orders += [_placed(shop, at=now) for _ in range(2)]  # more come in during the outage
        smtp_server.start()
        wait_for(lambda: len(smtp_server.messages) == len(orders), 90, "sending to resume")
        assert daemon.poll() is None
    finally:
        stop([daemon])
    assert daemon.returncode == 0, log.read_text()[-3000:]
    rows = [_confirmation(engine, order) for order in orders]
    assert all(row["state"] == "sent" and row["attempts"] == 1 for row in rows), rows
    assert "sending resumes" in log.read_text()


# The three refusals a strict Postfix gave: only the dead mailbox is suppressed.
READ_BY_CODE = [
    ("RCPT", "5.1.1 <fan@example.com>: Recipient address rejected: User unknown", True),
    ("RCPT", "5.7.1 Client host rejected: client blocked using policy", False),
    ("DATA", "5.7.1 Message content rejected as spam", False),
]


@pytest.mark.parametrize(
    ("step", "text", "gone"), READ_BY_CODE, ids=["5.1.1-rcpt", "5.7.1-rcpt", "5.7.1-data"]
)
def test_a_550_is_read_by_its_enhanced_code_and_stage(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    step: Any,
    text: str,
    gone: bool,
) -> None:
    _with_marketing_rule(Path(settings.rules))
    fan = _order(shop, "fan@example.com", opt_in=True)
    shop.event("order", fan, "cancelled", "2026-02-10 11:59")
    smtp_server.fail(550, text, on=step, times=None, recipient="fan@example.com")
    exit_code, result = _run_at(settings, ts("2026-02-10 12:00"))
    assert exit_code == EXIT_OK and result.failed == 1
    [offer] = notifications(engine, rule="win-back")
    assert offer["state"] == "failed" and offer["reason"] == "smtp_permanent"
    assert offer["detail"].startswith(f"550 {text} (")
    assert _suppressed(engine) == ({"fan@example.com": "hard bounce"} if gone else {})
    history = " ".join(_cli(settings, "history", "--customer", "fan@example.com").split())
    assert f"refused it for good: 550 {text}" in history, history
    kept = "the address is suppressed" if gone else "the address is not suppressed"
    assert kept in offer["detail"]
