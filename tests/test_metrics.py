"""Prometheus metrics: counters and the histogram in the text exposition once recorded, and the
outbox gauges read from a seeded database at scrape time (web app and stand-alone server)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.routing import Route

from notifier.core.planning import Planned
from notifier.core.retry import RELEASED, Settled, Verdict
from notifier.core.rules import Rule
from notifier.core.timing import utcnow
from notifier.core.values import Claimed, Event, Outcome, Reason, SendResult, State
from notifier.db import store
from notifier.db.engine import make_engine
from notifier.db.store.claims import claimed_from_row
from notifier.run import metrics
from tests.shop import ts
from tests.smtp_server import free_port
from tests.test_cli_tools import outbox_row


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_recorded_series_appear_in_the_text_exposition() -> None:
    before = {
        "events": sample("notifier_events_read_total", source="order"),
        "sent": sample("notifier_notifications_total", rule="order-confirmation", state="sent"),
        "replies": sample("notifier_smtp_replies_total", code="250"),
        "none": sample("notifier_smtp_replies_total", code="none"),
        "latency": sample("notifier_event_to_send_seconds_count"),
        "fast": sample("notifier_event_to_send_seconds_bucket", le="60.0"),
        "errors": sample("notifier_reload_total", result="error"),
        "ok": sample("notifier_reload_total", result="ok"),
    }
    metrics.events_read("order", 3)
    metrics.events_read("order", 0)
    metrics.decided("order-confirmation", State.SENT)
    metrics.smtp_reply(250)
    metrics.smtp_reply(None)
    metrics.sent_latency(42.0)
    metrics.sent_latency(7200.0)
    metrics.reloaded(False)
    metrics.reloaded(True)
    metrics.reloaded(True)
    assert sample("notifier_events_read_total", source="order") == before["events"] + 3
    assert (
        sample("notifier_notifications_total", rule="order-confirmation", state="sent") == before["sent"] + 1
    )
    assert sample("notifier_smtp_replies_total", code="250") == before["replies"] + 1
    assert sample("notifier_smtp_replies_total", code="none") == before["none"] + 1
    assert sample("notifier_event_to_send_seconds_count") == before["latency"] + 2
    assert sample("notifier_event_to_send_seconds_bucket", le="60.0") == before["fast"] + 1
    assert sample("notifier_reload_total", result="error") == before["errors"] + 1
    assert sample("notifier_reload_total", result="ok") == before["ok"] + 2
    text = generate_latest(metrics.REGISTRY).decode()
    for line in (
        "# TYPE notifier_events_read_total counter",
        'notifier_notifications_total{rule="order-confirmation",state="sent"}',
        'notifier_smtp_replies_total{code="250"}',
        "# TYPE notifier_event_to_send_seconds histogram",
        'notifier_reload_total{result="error"}',
    ):
        assert line in text, line


def test_a_batch_is_counted_from_what_intake_and_dispatch_store(engine: sa.Engine) -> None:
    occurred = ts("2026-02-10 09:00")
    rule = Rule(name="metrics-probe", on="order.placed", template="order_confirmation", line=1)
    event = Event(source="order", id=1, type="order.placed", subject_id=1001, occurred_at=occurred)
    plans = [
        Planned(key=f"k{i}", rule=rule, event=event, due_at=occurred, expires_at=None, state=state)
        for i, state in enumerate([State.QUEUED, State.QUEUED, State.SKIPPED])
    ]
    queued = sample("notifier_notifications_total", rule="metrics-probe", state="queued")
    metrics.planned(plans)
    assert sample("notifier_notifications_total", rule="metrics-probe", state="queued") == queued + 2
    assert sample("notifier_notifications_total", rule="metrics-probe", state="skipped") >= 1

    with engine.begin() as conn:
        store.insert_notifications(
            conn, [outbox_row(rule="metrics-probe", event_id=i, event_at=occurred) for i in (1, 2, 3)]
        )
    with engine.connect() as conn:
        columns = [store.NOTIFICATIONS.c[name] for name in Claimed.__slots__]  # type: ignore[attr-defined]
        rows = conn.execute(
            sa.select(*columns).where(store.NOTIFICATIONS.c.rule == "metrics-probe").order_by("id")
        ).mappings()
        first, second, third = (claimed_from_row(row) for row in rows)
    recorded_at = occurred + timedelta(seconds=90)
    settled = [
        Settled(
            claimed=first,
            verdict=Verdict(state=State.SENT),
            reply=_reply(Outcome.SENT, 250),
            occurred_at=occurred,
        ),
        Settled(
            claimed=second,
            verdict=Verdict(state=State.FAILED, reason=Reason.SMTP_PERMANENT),
            reply=_reply(Outcome.PERMANENT, 550),
        ),
        Settled(claimed=third, verdict=RELEASED),  # handed back: not a decision
    ]
    counts = {
        state: sample("notifier_notifications_total", rule="metrics-probe", state=state)
        for state in ("sent", "failed", "queued")
    }
    latency = sample("notifier_event_to_send_seconds_sum")
    refused = sample("notifier_smtp_replies_total", code="550")
    metrics.recorded(settled, now=recorded_at)
    assert sample("notifier_notifications_total", rule="metrics-probe", state="sent") == counts["sent"] + 1
    assert (
        sample("notifier_notifications_total", rule="metrics-probe", state="failed") == counts["failed"] + 1
    )
    assert sample("notifier_notifications_total", rule="metrics-probe", state="queued") == counts["queued"]
    assert sample("notifier_event_to_send_seconds_sum") == pytest.approx(latency + 90)
    assert sample("notifier_smtp_replies_total", code="550") == refused + 1


def _reply(outcome: Outcome, code: int) -> SendResult:
    return SendResult(outcome=outcome, code=code, reply="ok")


def _seed_outbox(engine: sa.Engine) -> None:
    now = utcnow()
    with engine.begin() as conn:
        store.insert_notifications(
            conn,
            [
                outbox_row(event_id=1, event_at=now - timedelta(minutes=10)),
                outbox_row(event_id=2, event_at=now - timedelta(minutes=2)),
                outbox_row(event_id=3, event_at=now + timedelta(hours=2)),  # not due yet
                outbox_row(event_id=4, state="sent", sent_at=now),
                outbox_row(event_id=5, state="failed"),
            ],
        )


def test_the_web_app_scrapes_the_outbox_of_a_seeded_database(
    engine: sa.Engine, serve: Callable[[Starlette], str]
) -> None:
    _seed_outbox(engine)
    base = serve(Starlette(routes=[Route("/metrics", metrics.metrics_app(None, engine))]))
    answer = httpx.get(f"{base}/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'notifier_outbox{state="queued"} 3.0' in text
    assert 'notifier_outbox{state="sent"} 1.0' in text
    assert 'notifier_outbox{state="failed"} 1.0' in text
    assert 'notifier_outbox{state="retrying"} 0.0' in text
    assert "notifier_database_up 1.0" in text
    [oldest] = [line for line in text.splitlines() if line.startswith("notifier_oldest_due_seconds ")]
    assert 600 <= float(oldest.split()[1]) < 660, "the one due 10 minutes ago, not the one due in 2 hours"
    assert "notifier_events_read_total" in text


def test_the_daemon_server_serves_the_same_registry(engine: sa.Engine) -> None:
    _seed_outbox(engine)
    port = free_port()
    server, thread = metrics.serve_metrics(port, addr="127.0.0.1", engine=engine)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert answer.status_code == 200
    assert 'notifier_outbox{state="queued"} 3.0' in answer.text
    assert "# TYPE notifier_reload_total counter" in answer.text


def test_an_unreachable_database_is_a_gauge_not_an_error(tmp_path: Path) -> None:
    missing = make_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    try:
        metrics.watch_outbox(missing)
        text = generate_latest(metrics.REGISTRY).decode()
    finally:
        missing.dispose()
    assert "notifier_database_up 0.0" in text
    assert "notifier_outbox{" not in text
