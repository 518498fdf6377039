"""Several daemons on one PostgreSQL or MariaDB database: every email exactly once, in order
per order, and the survivors take over from a daemon that is killed."""

from __future__ import annotations

import signal
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from notifier.config.settings import Secret, Settings
from notifier.db.engine import init_db, make_engine
from notifier.db.wakeup import install_trigger
from tests.conftest import _fresh_mariadb, _fresh_postgres
from tests.daemons import start_daemon, stop, wait_for
from tests.journey import STEPS, journeys, kinds_per_order
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

pytestmark = [pytest.mark.slow]


def _shared(url: str, project: Path, smtp_server: FaultySmtpServer) -> Settings:
    """Settings for daemons sharing one database server. Every event of a journey is known at
    once here, so supersession is switched off: each order must get all three emails."""
    rules = project / "rules.yaml"
    rules.write_text(rules.read_text().replace("    superseded_by: [order.delivered]", ""))
    engine = _fresh_postgres(url) if url.startswith("postgres") else _fresh_mariadb(url)
    init_db(engine)
    engine.dispose()
    return replace(
        Settings(),
        database_url=Secret(url),
        smtp_url=Secret(smtp_server.url),
        rules=project / "rules.yaml",
        templates=project / "templates",
        secret_key=Secret("test-secret"),
        smtp_timeout=timedelta(seconds=2),
    )


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def shared_settings(request: pytest.FixtureRequest, project: Path, smtp_server: FaultySmtpServer) -> Settings:
    """PostgreSQL, then MariaDB: the servers several daemons can share."""
    return _shared(request.getfixturevalue(f"{request.param}_url"), project, smtp_server)


@pytest.fixture
def pg_settings(postgres_url: str, project: Path, smtp_server: FaultySmtpServer) -> Settings:
    return _shared(postgres_url, project, smtp_server)


def _journeys(engine: sa.Engine, orders: int) -> list[int]:
    """`orders` orders, each placed, dispatched and delivered a second apart."""
    return journeys(Shop(engine), orders, customers=20)


def _engine(settings: Settings) -> sa.Engine:
    return make_engine(settings.database_url.reveal())


def test_three_daemons_send_every_email_once_and_in_order(
    shared_settings: Settings, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    engine = _engine(shared_settings)
    orders = _journeys(engine, 600)
    expected = len(orders) * len(STEPS)
    env = {"NOTIFIER_BATCH_SIZE": "50"}
    daemons = [start_daemon(shared_settings, tmp_path / f"d{i}.log", env=env) for i in range(3)]
    try:
        wait_for(lambda: len(smtp_server.messages) >= expected, limit=240)
    finally:
        stop(daemons)
    engine.dispose()
    assert all(d.returncode == 0 for d in daemons), [p.read_text()[-1500:] for p in tmp_path.glob("d*.log")]
    ids = [m.message_id for m in smtp_server.messages]
    assert len(ids) == expected and len(set(ids)) == expected, "every email exactly once"
    per_order = kinds_per_order(smtp_server)
    assert len(per_order) == len(orders)
    assert all(kinds == list(STEPS) for kinds in per_order.values()), "emails of one order in event order"
    workers = {
        line.split(" running as ")[1].split(":")[1]
        for p in tmp_path.glob("d*.log")
        for line in p.read_text().splitlines()
        if " running as " in line
    }
    assert len(workers) == 3


def test_survivors_take_over_from_a_killed_daemon(
    shared_settings: Settings, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    engine = _engine(shared_settings)
    orders = _journeys(engine, 400)
    expected = len(orders) * len(STEPS)
    env = {"NOTIFIER_BATCH_SIZE": "50", "NOTIFIER_LEASE": "5s"}
    daemons = [start_daemon(shared_settings, tmp_path / f"d{i}.log", env=env) for i in range(3)]
    try:
        wait_for(lambda: len(smtp_server.messages) >= expected // 4, limit=120)
        daemons[0].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: len({m.message_id for m in smtp_server.messages}) >= expected, limit=120)
        took = time.monotonic() - killed_at
    finally:
        stop(daemons[1:])
        daemons[0].wait()
    engine.dispose()
    ids = [m.message_id for m in smtp_server.messages]
    assert len(set(ids)) == expected, "nothing the killed daemon held was lost"
    assert len(ids) - len(set(ids)) <= 50, "duplicates only from the killed daemon's batch in flight"
    assert took < 60 + 5, "finished within a minute of the lease"


@pytest.mark.postgres
def test_listen_notify_wakes_the_daemon_long_before_its_next_poll(
    pg_settings: Settings, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    engine = _engine(pg_settings)
    install_trigger(engine)
    shop = Shop(engine)
    customer = shop.customer(email="fast@example.com")
    order = shop.order(customer)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(pg_settings, log, env={"NOTIFIER_POLL_INTERVAL": "120s"})
    try:
        wait_for(lambda: "listening for new events" in log.read_text(), limit=30, what="the listener")
        time.sleep(0.5)  # let the first (startup) cycle finish, so only a wake-up can send
        committed = time.monotonic()
        shop.event("order", order, "placed", datetime.now(UTC).strftime("%Y-%m-%d %H:%M"))
        wait_for(lambda: len(smtp_server.messages) == 1, limit=30, what="the woken daemon")
        took = time.monotonic() - committed
    finally:
        stop([daemon])
        engine.dispose()
    assert took < 10, f"sent {took:.1f} s after the commit; the next poll was two minutes away"
