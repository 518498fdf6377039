"""The tools ops reach for: `retry`, `resend`, `status` and `report`, through the real pipeline
and a real SMTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner, Result

from notifier.cli import app
from notifier.config.settings import Settings
from notifier.db import store
from notifier.run.daemon import Pipeline
from tests.journey import notifications, parse, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer


@contextmanager
def at(moment: str) -> Iterator[None]:
    with freeze_time(moment, real_asyncio=True):
        yield


def cli(settings: Settings, *args: str, input: str | None = None) -> Result:
    base = ["--database-url", settings.database_url.reveal(), "--rules", str(settings.rules)]
    return CliRunner().invoke(app, [*base, *args], input=input)


def outbox_row(**values: Any) -> dict[str, Any]:
    """A notifier_notifications row, as planning would store it, with `values` on top."""
    event_at = values.pop("event_at", ts("2026-02-10 09:00"))
    row = {
        "key": f"{values.get('rule', 'order-confirmation')}:order:{values.get('event_id', 1)}",
        "rule": "order-confirmation",
        "template": "order_confirmation",
        "category": "transactional",
        "source": "order",
        "event_id": 1,
        "event_type": "order.placed",
        "event_occurred_at": event_at,
        "thread": f"order:{values.get('subject_id', 1001)}",
        "subject_id": 1001,
        "customer_id": 1,
        "recipient": "lin@example.com",
        "state": "queued",
        "reason": None,
        "sent_at": None,
        "due_at": event_at,
        "next_attempt_at": event_at,
        "attempts": 0,
        "created_at": event_at,
        "updated_at": values.get("sent_at") or event_at,
    }
    row.update(values)
    return row


def _orders(shop: Shop, count: int) -> list[int]:
    customer = shop.customer(email="lin@example.com", timezone="UTC")
    orders = [shop.order(customer) for _ in range(count)]
    for order in orders:
        shop.event("order", order, "placed", "2026-02-10 09:00")
    return orders


# --- retry -----------------------------------------------------------------------------------------


def test_a_failed_notification_retried_is_then_sent(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    [order] = _orders(shop, 1)
    smtp_server.fail(550, on="RCPT")
    with at("2026-02-10 09:01"):
        run(settings)
    [failed] = notifications(engine, rule="order-confirmation")
    assert failed["state"] == "failed" and smtp_server.messages == []

    with at("2026-02-10 10:00"):
        dry = cli(settings, "retry", "--id", str(failed["id"]), "--dry-run")
        assert dry.exit_code == 0 and "would re-queue 1" in dry.output
        assert notifications(engine, rule="order-confirmation")[0]["state"] == "failed"
        none = cli(settings, "retry", "--rule", "order-dispatched")
        assert none.exit_code == 0 and "nothing changed" in none.output
        done = cli(settings, "retry", "--id", str(failed["id"]))
    assert done.exit_code == 0, done.output
    assert "re-queued 1 failed notification" in done.output
    [queued] = notifications(engine, rule="order-confirmation")
    assert queued["state"] == "queued" and queued["reason"] is None

    with at("2026-02-10 10:00:30"):
        code, result = run(settings)
    assert code == 0 and result.sent == 1
    [received] = smtp_server.messages
    assert str(order) in parse(received)["Subject"]
    [sent] = notifications(engine, rule="order-confirmation")
    assert sent["state"] == "sent" and sent["attempts"] == 1

    again = cli(settings, "retry", "--id", str(sent["id"]))
    assert again.exit_code == 1 and f"notifier resend {sent['id']}" in again.output


def test_retry_asks_before_touching_more_than_five(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    _orders(shop, 6)
    smtp_server.fail(550, on="RCPT", times=6)
    with at("2026-02-10 09:01"):
        run(settings)
    assert [row["state"] for row in notifications(engine, rule="order-confirmation")] == ["failed"] * 6
    with at("2026-02-10 09:30"):
        recent = cli(settings, "retry", "--since", "10m", "--dry-run")
        assert "no failed notification matches" in recent.output
        declined = cli(settings, "retry", "--since", "1h", input="n\n")
        assert declined.exit_code == 1 and "Re-queue these 6" in declined.output
        assert "nothing changed" in declined.output
        assert {row["state"] for row in notifications(engine, rule="order-confirmation")} == {"failed"}
        accepted = cli(settings, "retry", input="y\n")
        assert accepted.exit_code == 0 and "re-queued 6" in accepted.output
    assert {row["state"] for row in notifications(engine, rule="order-confirmation")} == {"queued"}
    bad = cli(settings, "retry", "--since", "soon")
    assert bad.exit_code == 2 and "--since" in bad.output


def test_retry_yes_skips_the_question(settings: Settings, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        store.insert_notifications(
            conn, [outbox_row(event_id=i, state="failed", reason="smtp_permanent") for i in range(1, 8)]
        )
    result = cli(settings, "retry", "--yes")
    assert result.exit_code == 0 and "re-queued 7" in result.output and "?" not in result.output
    assert {row["state"] for row in notifications(engine)} == {"queued"}


# --- resend ----------------------------------------------------------------------------------------


def test_a_resend_arrives_with_a_new_message_id_and_history_shows_it(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    [order] = _orders(shop, 1)
    with at("2026-02-10 09:01"):
        run(settings)
    [original] = notifications(engine, rule="order-confirmation")
    with at("2026-02-11 08:00"):
        dry = cli(settings, "resend", str(original["id"]), "--dry-run")
        assert dry.exit_code == 0 and "would resend 1" in dry.output
        assert len(notifications(engine, rule="order-confirmation")) == 1
        done = cli(settings, "resend", str(original["id"]))
        assert done.exit_code == 0, done.output
        code, result = run(settings)
    assert code == 0 and result.sent == 1
    first, second = smtp_server.messages
    assert first.message_id and second.message_id and first.message_id != second.message_id
    assert parse(first)["Subject"] == parse(second)["Subject"]
    copy = notifications(engine, rule="order-confirmation")[1]
    assert copy["resend_of"] == original["id"] and copy["key"] == f"{original['key']}:resend:1"
    assert copy["state"] == "sent" and copy["message_id"] == second.message_id

    with at("2026-02-11 08:05"):
        human = cli(settings, "history", "--order", str(order))
        machine = cli(settings, "history", "--order", str(order), "--json")
    assert f"resend of #{original['id']}" in human.stdout
    resends = [e for e in json.loads(machine.stdout) if e["resend_of"] == original["id"]]
    assert [e["message_id"] for e in resends] == [second.message_id]
    assert resends[0]["state"] == "sent"

    with at("2026-02-11 08:06"):
        twice = cli(settings, "resend", str(copy["id"]))  # a resend of a resend copies the original
    assert twice.exit_code == 0
    newest = notifications(engine, rule="order-confirmation")[2]
    assert newest["resend_of"] == original["id"] and newest["key"].endswith(":resend:2")


def test_resend_refuses_what_was_not_sent_and_asks_above_five(settings: Settings, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        store.insert_notifications(
            conn,
            [outbox_row(event_id=i, state="sent", sent_at=ts("2026-02-10 09:01")) for i in range(1, 7)]
            + [outbox_row(event_id=9, state="failed")],
        )
    rows = notifications(engine)
    failed = rows[-1]["id"]
    refused = cli(settings, "resend", str(failed))
    assert refused.exit_code == 1 and f"notifier retry --id {failed}" in refused.output
    missing = cli(settings, "resend", "9999")
    assert missing.exit_code == 1 and "no notification 9999" in missing.output
    six = [str(row["id"]) for row in rows[:6]]
    declined = cli(settings, "resend", *six, input="n\n")
    assert declined.exit_code == 1 and len(notifications(engine)) == 7
    accepted = cli(settings, "resend", *six, input="y\n")
    assert accepted.exit_code == 0 and "6 resend(s) queued" in accepted.output
    assert len(notifications(engine, state="queued")) == 6


# --- status ----------------------------------------------------------------------------------------


def test_status_json_has_every_field_and_masks_secrets(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    _orders(shop, 2)
    smtp_server.stop()  # the relay is down: the messages wait
    with at("2026-02-10 09:01"):
        code, _result = run(settings)
    assert code == 75
    with at("2026-02-10 09:11"):
        result = CliRunner().invoke(
            app,
            [
                "--database-url",
                settings.database_url.reveal(),
                "--smtp-url",
                "smtp://mailer:hunter2@relay.example:587",
                "status",
                "--json",
            ],
        )
        human = cli(settings, "status")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # Per order: the confirmation, the 48 h dispatch check and the promise-day apology wait.
    assert data["by_state"]["queued"] == 6 and data["by_rule"]["order-confirmation"]["queued"] == 2
    assert data["oldest_queued_due"] == "2026-02-10T09:00:00+00:00"
    assert data["oldest_due_age_seconds"] == 11 * 60
    assert data["sent_last_minute"] == 0
    assert data["smtp"]["healthy"] is False and data["smtp"]["last_error"]
    assert data["rules"]["path"] == str(settings.rules) and data["rules"]["count"] >= 1
    assert data["rules"]["templates"] == str(settings.templates)
    assert data["reload"]["ok"] is True and data["reload"]["error"] is None
    assert data["settings"]["smtp_url"] == "smtp://mailer:***@relay.example:587"
    assert "hunter2" not in result.stdout
    assert "oldest due message waiting: 11m;" in human.stdout and "SMTP: UNUSABLE" in human.stdout
    assert "last reload: ok" in human.stdout


def test_status_shows_a_failed_reload(settings: Settings, smtp_server: FaultySmtpServer) -> None:
    def break_the_rules() -> None:
        rules = Path(settings.rules)
        rules.write_text(rules.read_text().replace("template: order_confirmation", "template: nowhere"))

    async def edit_badly() -> None:
        async with Pipeline(settings) as pipeline:
            await pipeline.cycle()
            await asyncio.to_thread(break_the_rules)
            await pipeline.cycle()

    asyncio.run(edit_badly())
    result = cli(settings, "status", "--json")
    data = json.loads(result.stdout)
    assert data["reload"]["ok"] is False
    assert "nowhere" in data["reload"]["error"] and str(settings.rules) in data["reload"]["error"]
    human = cli(settings, "status")
    assert "last reload: FAILED" in human.stdout and "nowhere" in human.stdout


# --- report ----------------------------------------------------------------------------------------


def test_report_compares_cases_after_a_message_with_orders_without_one(
    settings: Settings, shop: Shop, engine: sa.Engine
) -> None:
    """Four late orders were told first (one case followed); six were not told (three cases)."""
    customer = shop.customer(email="lin@example.com", timezone="UTC")
    rows = []
    for i in range(10):
        order = shop.order(customer, placed_at="2026-02-02 09:00")
        event = shop.event("order", order, "placed", "2026-02-02 09:00")
        if i < 4:  # late: the apology went out 48 hours later
            rows.append(
                outbox_row(
                    rule="dispatch-delayed",
                    template="dispatch_delayed",
                    event_id=event,
                    subject_id=order,
                    state="sent",
                    event_at=ts("2026-02-02 09:00"),
                    sent_at=ts("2026-02-04 09:00"),
                )
            )
            if i == 0:
                shop.case(customer, order_id=order, opened_at="2026-02-06 09:00")  # 2 days after
            if i == 1:
                shop.case(customer, order_id=order, opened_at="2026-02-12 09:00")  # 8 days: not counted
        elif i < 7:
            shop.case(customer, order_id=order, opened_at="2026-02-05 09:00")  # 3 days after placing
    rows.append(
        outbox_row(rule="order-dispatched", event_id=999, state="failed", sent_at=ts("2026-02-03 09:00"))
    )
    with engine.begin() as conn:
        store.insert_notifications(conn, rows)
    with at("2026-02-20 12:00"):
        result = cli(settings, "report", "--since", "30d", "--json")
        human = cli(settings, "report", "--since", "30d")
    assert result.exit_code == 0, result.output
    report = {row["rule"]: row for row in json.loads(result.stdout)["rules"]}
    delayed = report["dispatch-delayed"]
    assert delayed["sent"] == 4 and delayed["failed"] == 0
    assert (delayed["messaged_orders"], delayed["messaged_with_case"]) == (4, 1)
    assert (delayed["unmessaged_orders"], delayed["unmessaged_with_case"]) == (6, 3)
    assert delayed["case_rate_with_message"] == 0.25 and delayed["case_rate_without"] == 0.5
    assert report["order-dispatched"]["failed"] == 1
    assert report["case-received"]["messaged_orders"] is None, "case rules have no order comparison"
    line = next(line for line in human.stdout.splitlines() if "dispatch-delayed" in line)
    assert "1 (25%)" in line and "3 (50%)" in line
    with at("2026-03-30 12:00"):
        later = json.loads(cli(settings, "report", "--since", "7d", "--json").stdout)
    assert {row["rule"]: row["sent"] for row in later["rules"]}.get("dispatch-delayed", 0) == 0
