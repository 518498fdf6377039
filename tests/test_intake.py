"""Reading events: batches, restarts, gaps and rows that commit out of id order."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from notifier.config.live import load_checked
from notifier.core.values import Event
from notifier.core.vocabulary import MAX_GAP_RUN, event_from_row, missing_ids
from notifier.db import store
from notifier.db.engine import make_engine
from notifier.db.schema import OrderEvent
from notifier.db.tables import Notification
from notifier.run.intake import intake
from tests.shop import Shop, ts

ORDER_EVENTS = OrderEvent.__table__  # type: ignore[attr-defined]
NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]
NOW = ts("2026-02-10 09:30")


def _rules(project: Path):  # type: ignore[no-untyped-def]
    return load_checked(project / "rules.yaml", project / "templates")[0]


def _keys(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(NOTIFICATIONS.c.key)).scalars())


def _placed_orders(shop: Shop, count: int) -> list[int]:
    customer = shop.customer()
    product = shop.product()
    orders = [shop.order(customer, items=[(product, 1)]) for _ in range(count)]
    for order in orders:
        shop.event("order", order, "placed", "2026-02-10 09:00")
    return orders


def test_every_event_planned_once_across_batches_and_reruns(
    engine: sa.Engine, shop: Shop, project: Path
) -> None:
    orders = _placed_orders(shop, 25)
    rules = _rules(project)
    first = intake(engine, rules, clock=lambda: NOW, batch_size=7, gap_timeout=timedelta(minutes=10))
    assert first.events == 25
    keys = _keys(engine)
    confirmations = [k for k in keys if k.startswith("order-confirmation:")]
    assert len(confirmations) == 25
    # dispatch-delayed is planned too (it waits 48 h), one per order.
    assert len([k for k in keys if k.startswith("dispatch-delayed:")]) == 25
    again = intake(engine, rules, clock=lambda: NOW, batch_size=7, gap_timeout=timedelta(minutes=10))
    assert again.events == 0 and _keys(engine) == keys
    assert len(orders) == 25


def test_restart_resumes_after_the_cursor(engine: sa.Engine, shop: Shop, project: Path, db_url: str) -> None:
    _placed_orders(shop, 3)
    rules = _rules(project)
    intake(engine, rules, clock=lambda: NOW, batch_size=100, gap_timeout=timedelta(minutes=10))
    customer = shop.customer()
    late = shop.order(customer)
    shop.event("order", late, "placed", "2026-02-10 09:10")
    fresh_engine = make_engine(db_url)  # a new process: only the database remembers
    result = intake(fresh_engine, rules, clock=lambda: NOW, batch_size=100, gap_timeout=timedelta(minutes=10))
    fresh_engine.dispose()
    assert result.events == 1
    assert f"order-confirmation:order:{4}" in _keys(engine)


def test_missing_ids_are_remembered_and_read_when_they_appear(
    engine: sa.Engine, shop: Shop, project: Path
) -> None:
    customer = shop.customer()
    orders = [shop.order(customer) for _ in range(3)]
    with engine.begin() as conn:
        for event_id, order in ((1, orders[0]), (2, orders[1])):
            conn.execute(
                sa.insert(ORDER_EVENTS).values(
                    id=event_id, order_id=order, type="placed", occurred_at=ts("2026-02-10 09:00")
                )
            )
        conn.execute(
            sa.insert(ORDER_EVENTS).values(
                id=5, order_id=orders[1], type="cancelled", occurred_at=ts("2026-02-10 09:05")
            )
        )
    rules = _rules(project)
    intake(engine, rules, clock=lambda: NOW, batch_size=100, gap_timeout=timedelta(minutes=10))
    with engine.connect() as conn:
        assert set(store.open_gaps(conn, "order")) == {3, 4}
    with engine.begin() as conn:  # the row with id 3 commits late
        conn.execute(
            sa.insert(ORDER_EVENTS).values(
                id=3, order_id=orders[2], type="placed", occurred_at=ts("2026-02-10 09:01")
            )
        )
    result = intake(engine, rules, clock=lambda: NOW, batch_size=100, gap_timeout=timedelta(minutes=10))
    assert result.events == 1
    assert "order-confirmation:order:3" in _keys(engine)
    with engine.connect() as conn:
        assert set(store.open_gaps(conn, "order")) == {4}
    # id 4 never commits: after the gap timeout it is given up, not looked for forever.
    intake(
        engine,
        rules,
        clock=lambda: NOW + timedelta(minutes=11),
        batch_size=100,
        gap_timeout=timedelta(minutes=10),
    )
    with engine.connect() as conn:
        assert store.open_gaps(conn, "order") == {}


def test_missing_ids_ignores_sequence_jumps() -> None:
    def event(i: int) -> Event:
        return Event(source="order", id=i, type="order.placed", subject_id=1, occurred_at=NOW)

    assert missing_ids(0, [event(1), event(2), event(4)]) == [3]
    assert missing_ids(2, [event(5)]) == [3, 4]
    assert missing_ids(10, [event(10 + MAX_GAP_RUN + 2)]) == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not an object"),
        ('{"delivered_at": "yesterday-ish"}', "delivered_at"),
    ],
)
def test_unreadable_event_rows_carry_their_problem(data: str, problem: str) -> None:
    row = {"id": 9, "type": "delivered", "subject_id": 1, "occurred_at": "2026-02-10 09:00:00", "data": data}
    event = event_from_row("order", row)
    assert event.problem is not None and problem in event.problem


@pytest.mark.postgres
def test_out_of_order_commit_on_postgres_is_still_evaluated(postgres_url: str, project: Path) -> None:
    """Two real transactions: the lower id commits after the higher one was read."""
    from tests.conftest import _fresh_postgres

    _out_of_order_commit_is_still_evaluated(_fresh_postgres(postgres_url), project)


@pytest.mark.mariadb
def test_out_of_order_commit_on_mariadb_is_still_evaluated(mariadb_url: str, project: Path) -> None:
    """The same on MariaDB: the lower id, skipped as a gap, is read once it commits."""
    from tests.conftest import _fresh_mariadb

    _out_of_order_commit_is_still_evaluated(_fresh_mariadb(mariadb_url), project)


def _out_of_order_commit_is_still_evaluated(engine: sa.Engine, project: Path) -> None:
    from notifier.db.engine import init_db

    init_db(engine)
    shop = Shop(engine)
    customer = shop.customer()
    first_order, second_order = shop.order(customer), shop.order(customer)
    rules = replace(_rules(project))
    slow = engine.connect()
    slow_tx = slow.begin()
    slow.execute(
        sa.insert(ORDER_EVENTS).values(
            order_id=first_order, type="placed", occurred_at=ts("2026-02-10 09:00")
        )
    )
    try:
        fast_id = shop.event("order", second_order, "placed", "2026-02-10 09:00")
        intake(engine, rules, clock=lambda: NOW, batch_size=100, gap_timeout=timedelta(minutes=10))
        placed_rules = ("order-confirmation", "dispatch-delayed", "promise-day-apology")
        assert _keys(engine) == sorted(f"{rule}:order:{fast_id}" for rule in placed_rules)
        slow_tx.commit()
    finally:
        slow.close()  # a transaction left open would hold the database for the next test
    result = intake(engine, rules, clock=lambda: NOW, batch_size=100, gap_timeout=timedelta(minutes=10))
    assert result.events == 1
    assert f"order-confirmation:order:{fast_id - 1}" in _keys(engine)
    engine.dispose()
