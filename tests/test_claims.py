"""Claiming due work: oldest first, one order's messages in event order, dead workers' leases
taken back — at a cost that does not grow with the backlog."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from notifier.core.values import State
from notifier.db import store
from tests.shop import ts

NOW = ts("2026-02-10 10:00")


def _row(key: str, thread: str, due: str, state: State = State.QUEUED, **extra: Any) -> dict[str, Any]:
    moment = ts(due)
    return {
        "key": key,
        "rule": "r",
        "template": "t",
        "category": "transactional",
        "source": "order",
        "event_id": 1,
        "event_type": "order.placed",
        "event_occurred_at": moment,
        "thread": thread,
        "subject_id": 1,
        "customer_id": 1,
        "recipient": "a@example.com",
        "state": state.value,
        "due_at": moment,
        "next_attempt_at": extra.pop("next_attempt_at", moment),
        "attempts": 0,
        "created_at": moment,
        "updated_at": moment,
        **extra,
    }


def _claim(engine: sa.Engine, limit: int = 10, worker: str = "w1") -> list[str]:
    with engine.begin() as conn:
        claimed = store.claim_due(conn, now=NOW, limit=limit, worker=worker, lease=timedelta(seconds=60))
    return [c.key for c in claimed]


def test_oldest_first_and_only_what_is_due(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        store.insert_notifications(
            conn,
            [
                _row("later", "order:2", "2026-02-10 09:30"),
                _row("first", "order:1", "2026-02-10 09:00"),
                _row("future", "order:3", "2026-02-10 11:00"),
            ],
        )
    assert _claim(engine, limit=1) == ["first"]
    assert _claim(engine) == ["later"]
    assert _claim(engine) == []


def test_a_message_waits_behind_an_earlier_one_of_its_order(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        store.insert_notifications(
            conn,
            [
                _row(
                    "placed",
                    "order:1",
                    "2026-02-10 09:00",
                    State.RETRYING,
                    next_attempt_at=ts("2026-02-10 10:05"),
                ),
                _row("dispatched", "order:1", "2026-02-10 09:10"),
                _row("other-order", "order:2", "2026-02-10 09:10"),
            ],
        )
    assert _claim(engine) == ["other-order"], "order 1's dispatched email waits for its confirmation"


def test_a_message_waits_while_an_earlier_one_is_being_sent_elsewhere(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        store.insert_notifications(
            conn,
            [
                _row("placed", "order:1", "2026-02-10 09:00"),
                _row("dispatched", "order:1", "2026-02-10 09:10"),
            ],
        )
    assert _claim(engine, limit=1, worker="a") == ["placed"]
    assert _claim(engine, worker="b") == [], "b must not send order 1's next email before a is done"


def test_a_dead_workers_lease_is_taken_back_after_it_runs_out(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        store.insert_notifications(
            conn,
            [
                _row(
                    "stuck",
                    "order:1",
                    "2026-02-10 09:00",
                    State.SENDING,
                    lease_owner="dead",
                    lease_until=ts("2026-02-10 09:59"),
                ),
                _row(
                    "held",
                    "order:2",
                    "2026-02-10 09:00",
                    State.SENDING,
                    lease_owner="alive",
                    lease_until=ts("2026-02-10 10:01"),
                ),
            ],
        )
    assert _claim(engine) == ["stuck"]


def test_claiming_reads_only_a_batch_of_a_large_backlog(engine: sa.Engine) -> None:
    rows = [_row(f"n{i}", f"order:{i}", "2026-02-10 09:00") for i in range(3000)]
    with engine.begin() as conn:
        store.insert_notifications(conn, rows)
    statements: list[str] = []

    def count_rows(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count_rows)
    try:
        claimed = _claim(engine, limit=50)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count_rows)
    assert len(claimed) == 50
    assert all("NOT EXISTS" not in s.upper() for s in statements), "no per-row subquery over the backlog"
    assert sum("LIMIT" in s.upper() for s in statements) >= 2
