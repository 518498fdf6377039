"""The daemon as ops run it: a subprocess, stopped with SIGTERM while it is sending."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from notifier.config.settings import Settings
from tests.daemons import start_daemon, wait_for
from tests.journey import notifications, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer


def _daemon(settings: Settings, *, env: dict[str, str] | None = None, log: Path) -> subprocess.Popen[bytes]:
    return start_daemon(settings, log, env=env)


def _wait_for(condition: Callable[[], bool], limit: float = 60.0) -> None:
    wait_for(condition, limit, "the daemon")


def _recent_orders(shop: Shop, count: int) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    customer = shop.customer()
    product = shop.product()
    for _ in range(count):
        order = shop.order(customer, items=[(product, 1)])
        shop.event("order", order, "placed", now)


def test_sigterm_finishes_in_flight_sends_and_exits_zero(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    _recent_orders(shop, 400)
    log = tmp_path / "daemon.log"
    daemon = _daemon(settings, env={"NOTIFIER_BATCH_SIZE": "40"}, log=log)
    try:
        _wait_for(lambda: len(smtp_server.messages) > 0)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    err = log.read_bytes()
    assert daemon.returncode == 0, err.decode()[-2000:]
    assert b"stopped cleanly" in err
    rows = notifications(engine, rule="order-confirmation")
    states = Counter(row["state"] for row in rows)
    assert states["sending"] == 0, states  # nothing left half-done
    assert states["sent"] == len(smtp_server.messages), "every accepted message is recorded as sent"
    # What was not sent is still owed, and goes out on the next run, exactly once.
    _, _result = run(settings)
    ids = [m.message_id for m in smtp_server.messages]
    assert len(ids) == 400 and len(set(ids)) == 400


def test_bad_rules_at_start_up_exit_non_zero_with_the_reason(settings: Settings, tmp_path: Path) -> None:
    rules = Path(settings.rules)
    rules.write_text(rules.read_text().replace("on: order.placed", "on: order.plaised", 1))
    log = tmp_path / "daemon.log"
    daemon = _daemon(settings, log=log)
    daemon.wait(timeout=30)
    err = log.read_text()
    assert daemon.returncode == 1
    assert f"{settings.rules}:" in err and "order.plaised" in err
