"""Database trouble: the order system holding SQLite's write lock, PostgreSQL restarted under
a running daemon, and the daemon's connections cut in the middle of a batch (on PostgreSQL
and on MariaDB, whose server is shared here and so is never restarted).

notifier waits for a lock instead of failing, and a daemon that loses its database keeps
running (the same process, no crash loop), reconnects and sends what came in meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.settings import Secret, Settings
from notifier.db.engine import init_db, make_engine
from notifier.run.daemon import Pipeline, run_once
from notifier.run.intake import intake
from tests.daemons import start_daemon, stop, wait_for
from tests.journey import notifications, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

APP_NAME = "notifier-under-test"  # the daemon's PostgreSQL connections carry this name


def _settings(url: str, project: Path, smtp_server: FaultySmtpServer) -> Settings:
    return replace(
        Settings(),
        database_url=Secret(url),
        smtp_url=Secret(smtp_server.url),
        rules=project / "rules.yaml",
        templates=project / "templates",
        smtp_timeout=timedelta(seconds=5),
    )


def _now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M}"


def _placed(shop: Shop, email: str) -> int:
    customer = shop.customer(email=email, timezone="UTC")
    order = shop.order(customer)
    shop.event("order", order, "placed", _now())
    return order


# --- SQLite: the order system's writer holds the lock -----------------------------------------


def test_run_once_waits_for_the_order_systems_write_lock_and_then_succeeds(
    sqlite_url: str, project: Path, smtp_server: FaultySmtpServer
) -> None:
    settings = _settings(sqlite_url, project, smtp_server)
    engine = make_engine(sqlite_url)
    shop = Shop(engine)
    _placed(shop, "before@example.com")
    customer = shop.customer(email="inside@example.com", timezone="UTC")
    inside = shop.order(customer)
    engine.dispose()

    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
    outcome: dict[str, Any] = {}

    def run_once() -> None:
        try:
            outcome["result"] = run(settings)
        except BaseException as exc:  # reported by the assertions below
            outcome["error"] = exc

    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO order_events (order_id, type, occurred_at, data) VALUES (?, 'placed', ?, NULL)",
            (inside, f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}"),
        )
        thread = threading.Thread(target=run_once)
        thread.start()
        time.sleep(1.0)  # the order system's transaction takes a while
        assert thread.is_alive(), f"run --once did not wait for the lock: {outcome}"
        assert smtp_server.messages == []
        writer.execute("COMMIT")
        thread.join(timeout=60)
        assert not thread.is_alive(), "run --once never finished after the lock was released"
    finally:
        if writer.in_transaction:
            writer.execute("ROLLBACK")
        writer.close()
    assert "error" not in outcome, outcome.get("error")
    code, result = outcome["result"]
    assert code == 0 and result.sent == 2
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == ["before@example.com", "inside@example.com"]


def test_rendering_a_batch_does_not_hold_the_write_lock(
    sqlite_url: str, project: Path, smtp_server: FaultySmtpServer
) -> None:
    """Loading and rendering a claimed batch only reads: the order system (or another daemon)
    can write meanwhile instead of waiting for the whole batch to render."""
    settings = _settings(sqlite_url, project, smtp_server)
    shop = Shop(make_engine(sqlite_url))
    for n in range(20):
        _placed(shop, f"reader{n}@example.com")
    pipeline = Pipeline(settings)
    now = datetime.now(UTC)
    intake(pipeline.engine, pipeline.config.rules, clock=lambda: now, batch_size=100,
           gap_timeout=timedelta(minutes=10))
    claimed = pipeline.dispatcher._claim(now)
    assert len(claimed) == 20

    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
    writer.execute("BEGIN IMMEDIATE")  # the order system, in the middle of a transaction
    prepared: list[Any] = []
    worker = threading.Thread(target=lambda: prepared.append(pipeline.dispatcher._prepare(claimed, now)))
    worker.start()
    worker.join(timeout=10)
    finished_while_locked = not worker.is_alive()
    writer.execute("COMMIT")
    worker.join()
    writer.close()
    pipeline.engine.dispose()
    assert finished_while_locked, "preparing the batch waited for the order system's write lock"
    ready, decided = prepared[0]
    assert len(ready) == 20 and decided == []
    assert all(b"Subject:" in item.message for item in ready)


# --- PostgreSQL: restarts and cut connections --------------------------------------------------


def _cluster() -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def _database_answers(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@pytest.fixture
def postgres_restarts(postgres_url: str) -> Iterator[Any]:
    """restart() restarts the PostgreSQL server; it is up again after the test, whatever happened."""

    def restart() -> None:
        subprocess.run([*_cluster(), "restart"], check=True, capture_output=True, timeout=120)

    yield restart
    if subprocess.run([*_cluster(), "status"], capture_output=True, timeout=30).returncode != 0:
        subprocess.run([*_cluster(), "start"], check=True, capture_output=True, timeout=120)
    wait_for(lambda: _database_answers(postgres_url), 60, "PostgreSQL to come back")


@pytest.fixture
def pg_settings(postgres_url: str, project: Path, smtp_server: FaultySmtpServer) -> Settings:
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    init_db(engine)
    engine.dispose()
    return _settings(postgres_url, project, smtp_server)


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def server_settings(request: pytest.FixtureRequest, project: Path, smtp_server: FaultySmtpServer) -> Settings:
    """A fresh PostgreSQL, then MariaDB, database made by init-db."""
    from tests.conftest import _fresh_mariadb, _fresh_postgres

    url = request.getfixturevalue(f"{request.param}_url")
    engine = _fresh_postgres(url) if request.param == "postgres" else _fresh_mariadb(url)
    init_db(engine)
    engine.dispose()
    return _settings(url, project, smtp_server)


def _daemon(settings: Settings, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return start_daemon(settings, log, env={"PGAPPNAME": APP_NAME, "NOTIFIER_LEASE": "3s", **env})


def _sent_to(smtp_server: FaultySmtpServer) -> set[str]:
    return {m.rcpt_tos[0] for m in smtp_server.messages}


_MARIADB_PING = ["mariadb-admin", "-h127.0.0.1", "-P3306", "-uroot", "ping"]


def _mariadb_up() -> bool:
    return subprocess.run(_MARIADB_PING, capture_output=True, timeout=30).returncode == 0


def _mariadb_start() -> None:
    # Debian's init script waits for its own maintenance login, which a server started some
    # other way may not have: it can say "failed" of a server that is up. Ping is the word.
    subprocess.run(["sh", "-c", "setsid service mariadb start >/dev/null 2>&1 &"], check=True, timeout=30)
    wait_for(_mariadb_up, 90, "MariaDB to start")


def _mariadb_running() -> bool:
    return subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True).returncode == 0


def _mariadb_restart() -> None:
    subprocess.run([*_MARIADB_PING[:-1], "shutdown"], check=True, capture_output=True, timeout=120)
    # Gone, not merely deaf: a start while the old server still flushes finds it and gives up.
    wait_for(lambda: not _mariadb_running(), 60, "MariaDB to stop")
    _mariadb_start()


@pytest.fixture
def mariadb_restarts(mariadb_url: str) -> Iterator[Any]:
    """restart() restarts the MariaDB server; it is up again after the test, whatever happened."""
    yield _mariadb_restart
    if not _mariadb_up():
        wait_for(lambda: not _mariadb_running() or _mariadb_up(), 60, "MariaDB to stop or answer")
        if not _mariadb_up():
            _mariadb_start()
    wait_for(lambda: _database_answers(mariadb_url), 60, "MariaDB to come back")


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def restarting_server(request: pytest.FixtureRequest) -> tuple[Settings, Callable[[], None]]:
    """Settings on a fresh PostgreSQL, then MariaDB, database, and how to restart its server."""
    settings = request.getfixturevalue("pg_settings" if request.param == "postgres" else "maria_settings")
    return settings, request.getfixturevalue(f"{request.param}_restarts")


@pytest.fixture
def maria_settings(mariadb_url: str, project: Path, smtp_server: FaultySmtpServer) -> Settings:
    from tests.conftest import _fresh_mariadb

    engine = _fresh_mariadb(mariadb_url)
    init_db(engine)
    engine.dispose()
    return _settings(mariadb_url, project, smtp_server)


@pytest.mark.slow
def test_database_restarted_under_a_running_daemon(
    restarting_server: tuple[Settings, Callable[[], None]], smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    settings, restart = restarting_server
    engine = make_engine(settings.database_url.reveal())
    shop = Shop(engine)
    log = tmp_path / "daemon.log"
    daemon = _daemon(settings, log)
    try:
        _placed(shop, "before@example.com")
        wait_for(lambda: _sent_to(smtp_server) == {"before@example.com"}, 30, "the first email")
        restart()
        _placed(shop, "after@example.com")
        wait_for(lambda: "after@example.com" in _sent_to(smtp_server), 90, "an email after the restart")
        assert daemon.poll() is None, "the daemon died with the database"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        stop([daemon])
        engine.dispose()
    text = log.read_text()
    assert text.count("notifier running as") == 1, "one process, started once"
    assert "cycle failed" in text or "LISTEN connection lost" in text, "the outage is in the log"
    assert len(smtp_server.messages) == 2


def _progress(smtp_server: FaultySmtpServer, messages: int, everyone: int) -> Callable[[], bool]:
    """True once `messages` have arrived, or every one of `everyone` recipients has one."""
    return lambda: len(smtp_server.messages) >= messages or len(_sent_to(smtp_server)) == everyone


def _terminate_daemon_connections(admin: sa.Engine) -> int:
    if admin.dialect.name == "mysql":
        return _kill_mariadb_sessions(admin)
    with admin.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": APP_NAME},
        ).scalar_one()
        conn.commit()
    return int(killed)


def _kill_mariadb_sessions(admin: sa.Engine) -> int:
    """Every other session on this test's own database (the daemon's and its workers')."""
    killed = 0
    with admin.connect() as conn:
        others = "db = DATABASE() AND id <> CONNECTION_ID()"
        query = f"SELECT id FROM information_schema.processlist WHERE {others}"
        for (session,) in conn.execute(sa.text(query)).all():
            try:
                conn.execute(sa.text(f"KILL {int(session)}"))
                killed += 1
            except sa.exc.DBAPIError:
                pass  # it ended meanwhile
    return killed


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_connections_cut_in_the_middle_of_batches(
    server_settings: Settings, smtp_server: FaultySmtpServer, tmp_path: Path, workers: str
) -> None:
    pg_settings = server_settings
    orders, batch = 200, 20
    engine = make_engine(pg_settings.database_url.reveal())
    shop = Shop(engine)
    product = shop.product()
    for number in range(orders):
        customer = shop.customer(email=f"cut{number}@example.com", timezone="UTC")
        shop.event("order", shop.order(customer, items=[(product, 1)]), "placed", _now())
    smtp_server.slow(0.05, on="DATA", times=None)  # batches take a while, so the cuts land inside them
    log = tmp_path / "daemon.log"
    daemon = _daemon(pg_settings, log, NOTIFIER_BATCH_SIZE=str(batch), NOTIFIER_WORKERS=workers)
    killed = cuts = 0
    try:
        # Cut every few messages, until the last one is in: some cuts land on a connection
        # that is idle in the pool, others in the middle of a claim, a render or a record.
        while len(_sent_to(smtp_server)) < orders:
            wait_for(_progress(smtp_server, len(smtp_server.messages) + 4, orders), 60, "sending to go on")
            killed += _terminate_daemon_connections(engine)
            cuts += 1
            assert daemon.poll() is None, log.read_text()[-3000:]
        wait_for(lambda: len(_sent_to(smtp_server)) == orders, 90, "every order's email")
        wait_for(
            lambda: all(r["state"] == "sent" for r in notifications(engine, rule="order-confirmation")),
            30,
            "every send to be recorded",
        )
        assert daemon.poll() is None, "the daemon died when its connections were cut"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        stop([daemon])
    rows = notifications(engine, rule="order-confirmation")
    engine.dispose()
    assert killed >= 5, "the daemon's connections were really cut"
    text = log.read_text()
    assert text.count("notifier running as") == 1
    assert "stopped unexpectedly" not in text, "a worker died when its connections were cut"
    assert len(rows) == orders and {r["state"] for r in rows} == {"sent"}
    by_rcpt: dict[str, set[str | None]] = defaultdict(set)
    for message in smtp_server.messages:
        by_rcpt[message.rcpt_tos[0]].add(message.message_id)
    recorded = {r["recipient"]: r["message_id"] for r in rows}
    assert all(ids == {recorded[rcpt]} for rcpt, ids in by_rcpt.items()), "a resend keeps its Message-ID"
    duplicates = len(smtp_server.messages) - orders
    assert duplicates <= cuts * batch, f"{duplicates} duplicates after {cuts} cuts"


def test_a_connection_lost_while_recording_a_batch_does_not_send_it_twice(
    server_settings: Settings, smtp_server: FaultySmtpServer
) -> None:
    pg_settings = server_settings
    url = pg_settings.database_url.reveal()
    engine, admin = make_engine(url), make_engine(url)
    _placed(Shop(engine), "once@example.com")
    cut: list[int] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def cut_while_recording(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The server ends this connection just as the sent message is being recorded.
        if not cut and statement.startswith("UPDATE notifier_notifications") and "sent_at" in statement:
            raw = conn.connection.dbapi_connection
            mysql = conn.dialect.name == "mysql"
            pid = raw.thread_id() if mysql else raw.info.backend_pid
            with admin.connect() as other:
                kill = f"KILL {int(pid)}" if mysql else "SELECT pg_terminate_backend(:pid)"
                other.execute(sa.text(kill), {"pid": pid})
                other.commit()
            cut.append(pid)

    try:
        code, result = asyncio.run(run_once(pg_settings, engine=engine))
        assert cut, "the connection was cut while recording"
        assert code == 0 and result.sent == 1
        # Long after the lease, nothing is owed any more.
        with freeze_time(datetime.now(UTC) + timedelta(minutes=5), real_asyncio=True):
            run(pg_settings)
        [row] = notifications(engine, rule="order-confirmation")
        assert row["state"] == "sent"
        assert len(smtp_server.messages) == 1, "the message the server accepted was sent again"
    finally:
        engine.dispose()
        admin.dispose()


def test_a_write_starts_soon_after_the_order_system_releases_the_lock(sqlite_url: str) -> None:
    """SQLite's own busy handler sleeps 1, 2, 5 ... 100 ms between tries: released 240 ms into
    the wait, the lock would be taken at 328 ms. notifier tries every 2 ms at most."""
    engine = make_engine(sqlite_url)
    init_db(engine)
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the order system, in the middle of a transaction
    started, took = threading.Event(), []

    def write() -> None:
        started.set()
        with engine.begin():
            took.append(time.monotonic())

    waiter = threading.Thread(target=write)
    begun = time.monotonic()
    waiter.start()
    started.wait(5)
    time.sleep(max(0.0, begun + 0.240 - time.monotonic()))
    released = time.monotonic()
    holder.execute("COMMIT")
    waiter.join(10)
    holder.close()
    engine.dispose()
    assert took, "the write never started"
    assert took[0] - released < 0.040, f"took the lock {1000 * (took[0] - released):.0f} ms after release"
