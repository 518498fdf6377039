"""Capture triggers on a real MariaDB (127.0.0.1:3306, root): an insert writes the event row,
a TIMESTAMP read in the writer's time zone is stored as UTC, numbers stay numbers, a
rolled-back change leaves none, install is idempotent, check tells stale and extra, remove
leaves none.

A fresh database per test, made here: the event tables from notifier's own schema
(notifier.db.schema), the shop's tables in plain DDL. Skipped when no server answers, unless
NOTIFIER_REQUIRE_MARIADB (or CI) is set, when that is a failure."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from notifier.config.capture_reader import load_capture
from notifier.core.capture import CaptureMap
from notifier.db.capture import triggers
from notifier.db.capture.triggers import State
from notifier.db.schema import EVENT_SOURCES

pytestmark = pytest.mark.mariadb
SERVER = os.environ.get("NOTIFIER_TEST_MARIADB_CAPTURE", "root@127.0.0.1:3306")
MAPPING = """\
events:
  - event: order.placed
    table: shop_order
    on: insert
    subject: new.id
    occurred_at: new.placed
  - event: order.dispatched
    table: shop_status
    on: insert
    when:
      new.status: Shipped
    subject: new.order_id
    occurred_at: new.created
    data:
      carrier: new.carrier
      parcels: new.parcels
      note: "it's 100% \\\\ done"
  - event: product.price_change
    table: shop_stock
    on: update
    changed: [price]
    subject: new.product_id
    data:
      old_price: old.price
      new_price: new.price
      effective_at: now
"""


@pytest.fixture(params=["mysql", "mariadb"])
def maria(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """A fresh MariaDB database with notifier's event tables and a small shop's tables, through
    a mysql:// and a mariadb:// URL (SQLAlchemy names the two dialects apart)."""
    server = f"{request.param}+pymysql://{SERVER}"
    try:
        admin = sa.create_engine(server + "/", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure means: no server to test against
        problem = str(exc).splitlines()[0]
        if os.environ.get("NOTIFIER_REQUIRE_MARIADB") or os.environ.get("CI"):
            pytest.fail(f"MariaDB at 127.0.0.1:3306 is required here but not reachable: {problem}")
        pytest.skip(f"no MariaDB at 127.0.0.1:3306 ({problem}); these tests run in CI")
    name = f"notifier_capture_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    engine = sa.create_engine(f"{server}/{name}")
    for table, _ in EVENT_SOURCES.values():
        table.create(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE shop_order (id INT PRIMARY KEY, placed TIMESTAMP(6) NULL, total DECIMAL(12,2))"
        )
        conn.exec_driver_sql(
            "CREATE TABLE shop_status (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT, status VARCHAR(40), "
            "created DATETIME(6), carrier VARCHAR(40), parcels INT)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE shop_stock (id INT PRIMARY KEY, product_id INT, price DECIMAL(12,2))"
        )
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


def _mapping(tmp_path: Path, text: str = MAPPING) -> CaptureMap:
    (tmp_path / "capture.yaml").write_text(text, encoding="utf-8")
    mapping = load_capture(tmp_path / "capture.yaml")
    assert mapping is not None
    return mapping


def _install(engine: sa.Engine, mapping: CaptureMap) -> list[str]:
    with engine.connect() as conn:
        statements = triggers.install_statements(conn, mapping)
        triggers.run(conn, statements)
    return statements


def _rows(engine: sa.Engine, table: str) -> list[sa.Row]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return list(conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id")))


def test_an_insert_writes_the_event_row_with_utc_time_and_numbers_as_numbers(
    maria: sa.Engine, tmp_path: Path
) -> None:
    _install(maria, _mapping(tmp_path))
    with maria.begin() as conn:
        conn.exec_driver_sql("SET time_zone = '+08:00'")  # the shop's session: Taipei time
        conn.exec_driver_sql("INSERT INTO shop_order VALUES (1042, '2026-02-10 17:00:00.250000', 99.5)")
        conn.exec_driver_sql(
            "INSERT INTO shop_status (order_id, status, created, carrier, parcels) "
            "VALUES (1042, 'Pending', '2026-02-11 09:00:00', 'DHL', 2), "
            "(1042, 'Shipped', '2026-02-11 09:30:00', 'DHL', 2)"
        )
    placed, shipped = _rows(maria, "order_events")
    assert (placed.order_id, placed.type) == (1042, "placed")
    # TIMESTAMP -> UTC (the fraction is kept where occurred_at is DATETIME(6))
    assert placed.occurred_at.replace(microsecond=0) == datetime(2026, 2, 10, 9, 0, 0)
    assert (shipped.type, shipped.occurred_at) == (
        "dispatched",
        datetime(2026, 2, 11, 9, 30),
    )  # DATETIME: UTC
    data = json.loads(shipped.data)
    assert data == {"carrier": "DHL", "parcels": 2, "note": "it's 100% \\ done"}


def test_changed_filters_and_a_rolled_back_change_leaves_no_event(maria: sa.Engine, tmp_path: Path) -> None:
    _install(maria, _mapping(tmp_path))
    with maria.begin() as conn:
        conn.exec_driver_sql("INSERT INTO shop_stock VALUES (1, 101, 19.90)")
        conn.exec_driver_sql("UPDATE shop_stock SET product_id = 101")  # price unchanged: no event
        conn.exec_driver_sql("UPDATE shop_stock SET price = 24.50")
    [change] = _rows(maria, "product_events")
    data = json.loads(change.data)
    assert (change.product_id, change.type, data["old_price"], data["new_price"]) == (
        101, "price_change", 19.9, 24.5,
    )  # fmt: skip
    assert abs((datetime.fromisoformat(data["effective_at"]) - change.occurred_at).total_seconds()) < 5
    with maria.connect() as conn:
        conn.begin()
        conn.exec_driver_sql("UPDATE shop_stock SET price = 30")
        inside = conn.exec_driver_sql("SELECT COUNT(*) FROM product_events").scalar_one()
        conn.rollback()
    assert inside == 2 and len(_rows(maria, "product_events")) == 1


def test_install_is_idempotent_check_tells_stale_and_extra_and_remove_leaves_none(
    maria: sa.Engine, tmp_path: Path
) -> None:
    mapping = _mapping(tmp_path)
    made = _install(maria, mapping)
    # Three triggers, made with the shop's tables locked: no write falls between two of them.
    assert (
        len(made) == 5
        and made[0].startswith("LOCK TABLES `order_events` WRITE")
        and made[-1] == "UNLOCK TABLES"
    )
    assert _install(maria, mapping) == []  # a second install: nothing to do
    edited = _mapping(tmp_path, MAPPING.replace("Shipped", "Dispatched").split("  - event: product")[0])
    with maria.connect() as conn:
        found = [
            (item.state, item.capture.number if item.capture else None)
            for item in triggers.standing(conn, edited)
        ]
    assert found == [(State.MATCHING, 1), (State.STALE, 2), (State.EXTRA, None)]
    _install(maria, edited)
    with maria.connect() as conn:
        assert {item.state for item in triggers.standing(conn, edited)} == {State.MATCHING}
        triggers.run(conn, triggers.remove_statements(conn))
        assert triggers.dialect_for(conn).installed(conn) == []
