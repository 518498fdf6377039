"""Crash safety: the daemon killed with SIGKILL at random moments, again and again, and
stopped hard with a second SIGTERM.

Orders keep coming in while a daemon (a real subprocess, on SQLite) sends their
confirmations; it is killed without warning several times and started again each time.
Every order still gets its email; the only duplicates are messages the server accepted
just before a kill, at most one batch per kill, and they carry the same Message-ID.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.settings import Secret, Settings
from notifier.db.engine import make_engine
from notifier.db.schema import Customer, Order, OrderEvent, OrderItem, Product
from notifier.db.tables import Notification
from tests.daemons import start_daemon, stop, wait_for
from tests.journey import notifications, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

ORDERS = 3000
CHUNKS = 10
KILLS = 8
BATCH_SIZE = 50
SEED = 20260210

NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]


def _insert_orders(engine: sa.Engine, first: int, count: int) -> None:
    """What the order system does: customers, orders and `placed` events, in its own transactions."""
    now = datetime.now(UTC).replace(tzinfo=None)
    ids = range(first, first + count)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Customer.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": i,
                    "name": f"Customer {i}",
                    "email": f"crash{i}@example.com",
                    "locale": "en",
                    "timezone": "UTC",
                    "marketing_opt_in": False,
                }
                for i in ids
            ],
        )
        conn.execute(
            sa.insert(Order.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": i,
                    "customer_id": i,
                    "placed_at": now,
                    "status": "placed",
                    "total": Decimal("59.00"),
                    "currency": "USD",
                    "ship_to_name": f"Customer {i}",
                    "ship_to_address": "1 Flower Street",
                    "promised_date": date.today(),
                }
                for i in ids
            ],
        )
        conn.execute(
            sa.insert(OrderItem.__table__),  # type: ignore[attr-defined]
            [{"order_id": i, "product_id": 1, "quantity": 1, "unit_price": Decimal("59.00")} for i in ids],
        )
    # The events commit in several small transactions, as orders come in.
    for start in range(0, count, 50):
        with engine.begin() as conn:
            conn.execute(
                sa.insert(OrderEvent.__table__),  # type: ignore[attr-defined]
                [
                    {"order_id": i, "type": "placed", "occurred_at": now, "data": None}
                    for i in ids[start : start + 50]
                ],
            )


def _received(smtp_server: FaultySmtpServer, count: int) -> Callable[[], bool]:
    return lambda: len(smtp_server.messages) >= count


def _states(engine: sa.Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(NOTIFICATIONS.c.state, sa.func.count()).group_by(NOTIFICATIONS.c.state))
        return Counter({state: count for state, count in rows})


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_duplicates_only_in_flight_batches(
    sqlite_url: str, project: Path, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    settings = replace(
        Settings(),
        database_url=Secret(sqlite_url),
        smtp_url=Secret(smtp_server.url),
        rules=project / "rules.yaml",
        templates=project / "templates",
    )
    env = {"NOTIFIER_BATCH_SIZE": str(BATCH_SIZE), "NOTIFIER_LEASE": "3s", "NOTIFIER_SMTP_TIMEOUT": "5s"}
    log = tmp_path / "daemon.log"
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Product.__table__).values(  # type: ignore[attr-defined]
                id=1,
                sku="ROSES-12",
                name="Twelve red roses",
                tags="roses",
                price=Decimal("59.00"),
                currency="USD",
            )
        )
    rng = random.Random(SEED)
    chunk = ORDERS // CHUNKS
    inserted = 0
    kills = 0
    daemon: subprocess.Popen[bytes] | None = None
    try:
        while kills < KILLS:
            daemon = start_daemon(settings, log, env=env)
            if inserted < ORDERS:
                _insert_orders(engine, inserted + 1, chunk)  # while the daemon starts and runs
                inserted += chunk
            # A random moment: after a random number of further messages reached the server
            # (none at all: killed while starting up or reading events).
            target = min(len(smtp_server.messages) + rng.randint(0, 4 * BATCH_SIZE), inserted)
            wait_for(_received(smtp_server, target), 60, "messages before the kill")
            assert daemon.poll() is None, log.read_text()[-3000:]
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=10)
            kills += 1
        daemon = start_daemon(settings, log, env=env)
        while inserted < ORDERS:
            _insert_orders(engine, inserted + 1, chunk)
            inserted += chunk
        wait_for(lambda: _states(engine)["sent"] == ORDERS, 80, "every confirmation to be sent")
        stop([daemon])
        assert daemon.returncode == 0, log.read_text()[-3000:]
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()

    with engine.connect() as conn:
        rows = list(
            conn.execute(
                sa.select(NOTIFICATIONS.c.recipient, NOTIFICATIONS.c.message_id, NOTIFICATIONS.c.state).where(
                    NOTIFICATIONS.c.rule == "order-confirmation"
                )
            )
        )
        integrity = conn.execute(sa.text("PRAGMA integrity_check")).scalar()
    engine.dispose()
    assert integrity == "ok"
    assert len(rows) == ORDERS, "one notification per order, never two"
    states = _states(make_engine(sqlite_url))
    assert states["sending"] == 0, states
    assert {row.state for row in rows} == {"sent"}

    received: dict[str, list[str | None]] = defaultdict(list)
    for message in smtp_server.messages:
        [rcpt] = message.rcpt_tos
        received[rcpt].append(message.message_id)
    expected = {f"crash{i}@example.com" for i in range(1, ORDERS + 1)}
    assert set(received) == expected, f"{len(expected - set(received))} order(s) never got their email"
    recorded = {row.recipient: row.message_id for row in rows}
    for rcpt, ids in received.items():
        # A resend is the same message: same Message-ID as the first copy and as recorded.
        assert set(ids) == {recorded[rcpt]}, (rcpt, ids, recorded[rcpt])
    duplicates = len(smtp_server.messages) - ORDERS
    assert duplicates <= KILLS * BATCH_SIZE, f"{duplicates} duplicates after {KILLS} kills"


# --- a second SIGTERM while the first is being honoured ----------------------------------------


@pytest.mark.slow
def test_a_second_sigterm_exits_at_once_and_the_next_run_completes_everything(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    orders, batch = 120, 40
    now = datetime.now(UTC).replace(microsecond=0)
    product = shop.product()
    for number in range(orders):
        order = shop.order(
            shop.customer(email=f"stop{number}@example.com", timezone="UTC"), items=[(product, 1)]
        )
        shop.event("order", order, "placed", f"{now:%Y-%m-%d %H:%M}")
    smtp_server.slow(8.0, on="DATA", times=None)  # each message takes 8 s: the first stop is slow
    log = tmp_path / "daemon.log"
    daemon = start_daemon(settings, log, env={"NOTIFIER_BATCH_SIZE": str(batch), "NOTIFIER_LEASE": "3s"})
    try:
        wait_for(lambda: len(smtp_server.messages) > 0, 60, "the first message")
        daemon.send_signal(signal.SIGTERM)
        wait_for(lambda: "finishing the messages in flight" in log.read_text(), 10, "the first stop")
        assert daemon.poll() is None, "the first SIGTERM waits for the sends in flight"
        daemon.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = daemon.wait(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    text = log.read_text()
    assert code != 0 and "second SIGTERM" in text, text[-2000:]
    assert elapsed < 3, f"the second SIGTERM took {elapsed:.1f}s"
    assert "stopped cleanly" not in text
    accepted_before = len(smtp_server.messages)
    assert accepted_before < orders, "the stop came while work was left"

    # Nothing is corrupted: the next run (after the lease) sends everything that is owed.
    smtp_server.clear_faults()
    with freeze_time(now + timedelta(minutes=2), real_asyncio=True):
        exit_code, _ = run(settings)
    assert exit_code == 0
    rows = notifications(engine, rule="order-confirmation")
    assert len(rows) == orders and {r["state"] for r in rows} == {"sent"}
    by_rcpt: dict[str, set[str | None]] = defaultdict(set)
    for message in smtp_server.messages:
        by_rcpt[message.rcpt_tos[0]].add(message.message_id)
    recorded = {r["recipient"]: r["message_id"] for r in rows}
    assert set(by_rcpt) == set(recorded)
    assert all(ids == {recorded[rcpt]} for rcpt, ids in by_rcpt.items()), "a resend keeps its Message-ID"
    duplicates = len(smtp_server.messages) - orders
    assert duplicates <= batch, f"{duplicates} duplicates: more than the batch in flight"
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
