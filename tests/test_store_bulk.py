"""Writing many outbox rows at once: on PostgreSQL one statement of arrays (db/store/bulk.py),
on SQLite an executemany; either way the rows read back the same."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from notifier.core.timing import as_utc
from notifier.core.values import Outcome, State
from notifier.db import store
from tests.shop import ts
from tests.test_claims import _row

NOW = ts("2026-02-10 10:00")


def _insert(engine: sa.Engine, rows: list[dict[str, Any]]) -> int:
    with engine.begin() as conn:
        return store.insert_notifications(conn, rows)


def _ids(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        n = store.NOTIFICATIONS
        return {r.key: r.id for r in conn.execute(sa.select(n.c.key, n.c.id))}


def test_an_insert_counts_only_the_new_keys_and_keeps_rows_of_other_shapes(engine: sa.Engine) -> None:
    assert _insert(engine, [_row("a", "order:1", "2026-02-10 09:00")]) == 1
    rows = [
        _row("a", "order:1", "2026-02-10 09:00"),  # already there: left alone
        _row("b", "order:2", "2026-02-10 09:00"),
        _row("b", "order:2", "2026-02-10 09:00"),  # twice in one batch: once
        _row("c", "order:3", "2026-02-10 09:00", reason="expired", detail="late"),  # more columns
    ]
    assert _insert(engine, rows) == 2
    assert sorted(_ids(engine)) == ["a", "b", "c"]


def test_updates_of_many_rows_store_each_rows_own_values_nulls_bytes_and_times(engine: sa.Engine) -> None:
    _insert(engine, [_row(k, f"order:{i}", "2026-02-10 09:00") for i, k in enumerate("abc")])
    ids = _ids(engine)
    later = ts("2026-02-10 11:00")
    changes = [
        {"b_id": ids["a"], "state": State.SENT, "message": None, "sent_at": NOW, "smtp_code": 250},
        {"b_id": ids["b"], "state": State.RETRYING, "message": b"\x00\xffbytes", "sent_at": None,
         "smtp_code": 451},
    ]
    with engine.begin() as conn:
        store.update_notifications(conn, changes)
        store.update_notifications(conn, [{"b_id": ids["c"], "next_attempt_at": later}])
        store.record_attempts(
            conn,
            [
                {"notification_id": ids["a"], "at": NOW, "outcome": Outcome.SENT.value, "code": 250,
                 "reply": "ok", "worker": "w"},
                {"notification_id": ids["b"], "at": NOW, "outcome": Outcome.TRANSIENT.value, "code": None,
                 "reply": "", "worker": "w"},
            ],
        )
    n = store.NOTIFICATIONS
    with engine.connect() as conn:
        got = {
            r.key: r
            for r in conn.execute(sa.select(n.c.key, n.c.state, n.c.message, n.c.sent_at, n.c.smtp_code,
                                            n.c.next_attempt_at))
        }
        attempts = conn.execute(
            sa.select(store.ATTEMPTS.c.notification_id, store.ATTEMPTS.c.code).order_by(store.ATTEMPTS.c.id)
        ).all()
    assert (got["a"].state, got["a"].message, got["a"].smtp_code) == ("sent", None, 250)
    assert as_utc(got["a"].sent_at) == NOW
    assert (got["b"].state, bytes(got["b"].message), got["b"].sent_at, got["b"].smtp_code) == (
        "retrying", b"\x00\xffbytes", None, 451,
    )
    assert got["c"].state == "queued" and as_utc(got["c"].next_attempt_at) == later
    assert [tuple(a) for a in attempts] == [(ids["a"], 250), (ids["b"], None)]
