"""The send side as stages, against a slow relay: a message is recorded within moments of the
server's 250, SIGTERM finishes only what is on the wire, a SIGKILL duplicates at most that, and
one row the code cannot handle fails alone."""

from __future__ import annotations

import signal
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.live import load_checked
from notifier.config.settings import Secret, Settings
from notifier.core.timing import utcnow
from notifier.core.values import Reason, State
from notifier.db.engine import make_engine
from notifier.db.schema import Customer
from notifier.db.tables import Notification
from notifier.run.intake import intake
from tests.daemons import start_daemon, wait_for
from tests.journey import notifications, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

OUTBOX = Notification.__table__  # type: ignore[attr-defined]
ORDERS = 400
CONNECTIONS = 4  # NOTIFIER_SMTP_CONNECTIONS: at most this many messages on the wire at once
STEP_DELAY = 0.06  # the relay takes 60 ms to answer each of MAIL, RCPT and DATA


def _orders(shop: Shop, count: int, prefix: str) -> list[str]:
    now = datetime.now(UTC)
    product = shop.product()
    recipients = []
    for number in range(count):
        email = f"{prefix}{number}@example.com"
        order = shop.order(shop.customer(email=email, timezone="UTC"), items=[(product, 1)])
        shop.event("order", order, "placed", f"{now:%Y-%m-%d %H:%M}")
        recipients.append(email)
    return recipients


def _slow_relay(server: FaultySmtpServer) -> None:
    for step in ("MAIL", "RCPT", "DATA"):
        server.slow(STEP_DELAY, on=step, times=None)  # type: ignore[arg-type]


def _sent(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        query = sa.select(OUTBOX.c.recipient).where(OUTBOX.c.state == State.SENT)
        return set(conn.execute(query).scalars())


def _recording_lags(engine: sa.Engine, server: FaultySmtpServer, count: int) -> list[float]:
    """Seconds from the server's 250 to the row saying `sent`, for the first `count` messages
    accepted, read from the database while the daemon goes on sending."""
    recorded_at: dict[str, float] = {}
    deadline = time.monotonic() + 90
    while True:
        sent = _sent(engine)
        seen = time.monotonic()
        for recipient in sent:
            recorded_at.setdefault(recipient, seen)
        first = server.messages[:count]
        if len(first) == count and all(m.rcpt_tos[0] in recorded_at for m in first):
            return [recorded_at[m.rcpt_tos[0]] - m.accepted_at for m in first]
        assert time.monotonic() < deadline, "the first messages were never recorded as sent"
        time.sleep(0.02)


def _env(lease: str) -> dict[str, str]:
    return {
        "NOTIFIER_BATCH_SIZE": "500",
        "NOTIFIER_LEASE": lease,
        "NOTIFIER_SMTP_CONNECTIONS": str(CONNECTIONS),
    }


@pytest.mark.slow
def test_sigterm_records_what_was_accepted_hands_back_the_rest_and_exits_at_once(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    expected = _orders(shop, ORDERS, "term")
    _slow_relay(smtp_server)  # about 20 messages a second: the batch would take 20 s
    log = tmp_path / "daemon.log"
    daemon = start_daemon(settings, log, env=_env("60s"))
    try:
        lags = _recording_lags(engine, smtp_server, 30)
        assert len(smtp_server.messages) < ORDERS - 100, "the batch is still being sent"
        daemon.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = daemon.wait(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    text = log.read_text()
    assert max(lags) < 0.5, f"recorded {max(lags):.2f} s after the server's 250"
    assert code == 0 and "stopped cleanly" in text, text[-3000:]
    assert elapsed < 3, f"SIGTERM took {elapsed:.1f} s"

    accepted = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    rows = notifications(engine, rule="order-confirmation")
    assert len(rows) == ORDERS
    assert {r["recipient"] for r in rows if r["state"] == State.SENT} == set(accepted), (
        "every message the server accepted is recorded as sent, and no other"
    )
    assert {r["state"] for r in rows if r["recipient"] not in accepted} == {State.QUEUED}, (
        "the rest are back in the queue at once, not waiting for a lease"
    )

    smtp_server.clear_faults()
    exit_code, result = run(settings)  # no waiting for leases: nothing was left claimed
    assert exit_code == 0
    assert result.sent == ORDERS - len(accepted), "the restart sends exactly the rest"
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert set(received) == set(expected) and set(received.values()) == {1}, "no duplicate"
    assert _sent(engine) == set(expected)


@pytest.mark.slow
def test_after_a_sigkill_only_the_messages_on_the_wire_go_twice(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    expected = _orders(shop, ORDERS, "kill")
    _slow_relay(smtp_server)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(settings, log, env=_env("3s"))
    try:
        wait_for(lambda: len(smtp_server.messages) >= 60, 90, "60 messages accepted")
        assert daemon.poll() is None, log.read_text()[-3000:]
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert len(smtp_server.messages) < ORDERS, "killed in the middle of the batch"

    smtp_server.clear_faults()
    with freeze_time(datetime.now(UTC) + timedelta(minutes=2), real_asyncio=True):  # past the lease
        exit_code, _ = run(settings)
    assert exit_code == 0
    rows = notifications(engine, rule="order-confirmation")
    assert {r["state"] for r in rows} == {State.SENT}
    received: dict[str, set[str | None]] = defaultdict(set)
    for message in smtp_server.messages:
        received[message.rcpt_tos[0]].add(message.message_id)
    assert set(received) == set(expected), "every order gets its email"
    recorded = {r["recipient"]: r["message_id"] for r in rows}
    assert all(ids == {recorded[rcpt]} for rcpt, ids in received.items()), "a duplicate keeps its Message-ID"
    duplicates = len(smtp_server.messages) - ORDERS
    # The messages on the wire (one per connection), and one recorder group being written.
    assert duplicates <= CONNECTIONS + 4, f"{duplicates} duplicates after one SIGKILL"


def test_a_customer_name_turned_to_bytes_after_planning_stops_that_message_alone(
    sqlite_url: str, project: Path, smtp_server: FaultySmtpServer
) -> None:
    settings = _sqlite_settings(sqlite_url, project, smtp_server)
    engine = make_engine(sqlite_url)
    expected = _orders(Shop(engine), 51, "blob")
    # Planned while the names are good (intake refuses a bad row itself, as a bad_row); the
    # name goes bad after planning, before the messages are rendered.
    rules, _renderer = load_checked(settings.rules, settings.templates)
    planned = intake(engine, rules, clock=utcnow, batch_size=500, gap_timeout=timedelta(minutes=10))
    assert planned.events == 51
    customers = Customer.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:  # not UTF-8: SQLite hands it back as bytes
        conn.execute(sa.text(f"UPDATE {customers.name} SET name = X'FF00FE' WHERE email = :email"),
                     {"email": expected[17]})
    exit_code, result = run(settings)
    assert exit_code == 0
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(expected[:17] + expected[18:])
    [bad] = notifications(engine, rule="order-confirmation", recipient=expected[17])
    # Read again when the messages are loaded, the row is refused at that edge, for that message.
    assert bad["state"] == State.SKIPPED and bad["reason"] == Reason.BAD_ROW, bad
    assert bad["detail"] and "bytes" in bad["detail"], bad["detail"]
    assert result.sent == 50 and result.skipped == 1
    engine.dispose()




def _sqlite_settings(sqlite_url: str, project: Path, smtp_server: FaultySmtpServer) -> Settings:
    return replace(
        Settings(),
        database_url=Secret(sqlite_url),
        smtp_url=Secret(smtp_server.url),
        rules=project / "rules.yaml",
        templates=project / "templates",
    )


@pytest.mark.slow
def test_sigterm_with_workers_exits_at_once_and_leaves_nothing_claimed(
    sqlite_url: str, project: Path, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    settings = _sqlite_settings(sqlite_url, project, smtp_server)
    engine = make_engine(sqlite_url)
    _orders(Shop(engine), ORDERS, "workers")
    _slow_relay(smtp_server)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(settings, log, env=_env("60s"), args=("run", "--workers", "2"))
    try:
        wait_for(lambda: len(smtp_server.messages) >= 40, 90, "40 messages accepted")
        daemon.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = daemon.wait(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert code == 0, log.read_text()[-3000:]
    assert elapsed < 4, f"SIGTERM with a worker took {elapsed:.1f} s"
    accepted = {m.rcpt_tos[0] for m in smtp_server.messages}
    assert len(accepted) < ORDERS - 100, "the stop came in the middle of the work"
    rows = notifications(engine, rule="order-confirmation")
    assert {r["recipient"] for r in rows if r["state"] == State.SENT} == accepted
    assert Counter(r["state"] for r in rows)[State.SENDING] == 0, "nothing is left claimed"
    engine.dispose()
