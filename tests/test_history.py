"""`notifier history` explains every rule that could apply to an order: what was sent (when,
Message-ID, the server's reply) or why not - through the real pipeline, step by step in time."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.settings import Settings
from notifier.db import store
from tests.journey import run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

# Every outcome `history` can explain has a rule here. The customer is in Taipei (UTC+8), so
# quiet hours 21:00-08:00 local are 13:00-00:00 UTC.
RULES = """\
version: 1
defaults:
  from: "Blossom & Co <care@blossom.example>"
  quiet_hours: { start: "21:00", end: "08:00" }
rules:
  - name: order-confirmation
    on: order.placed
    template: order_confirmation
  - name: big-order-thanks
    on: order.placed
    when: "order.total >= 1000"
    template: thank_you
  - name: dispatch-delayed
    on: order.placed
    unless: [order.dispatched, order.cancelled]
    after: 48h
    template: dispatch_delayed
  - name: late-notice
    on: order.placed
    delay: 2h
    max_age: 1h
    template: thank_you
  - name: placed-offer
    on: order.placed
    category: marketing
    template: thank_you
  - name: order-dispatched
    on: order.dispatched
    template: order_dispatched
  - name: order-delivered
    on: order.delivered
    template: order_delivered
  - name: delivered-survey
    on: order.delivered
    enabled: false
    template: thank_you
"""
EMAIL = "lin@example.tw"


@contextmanager
def at(moment: str) -> Iterator[None]:
    with freeze_time(moment, real_asyncio=True):
        yield


def history(settings: Settings, *args: str) -> tuple[str, list[dict[str, Any]]]:
    """The human output and the --json output of `notifier history ARGS`."""
    base = ["--database-url", settings.database_url.reveal(), "--rules", str(settings.rules), "history"]
    human = CliRunner().invoke(app, [*base, *args])
    assert human.exit_code == 0, human.output
    machine = CliRunner().invoke(app, [*base, *args, "--json"])
    assert machine.exit_code == 0, machine.output
    return human.stdout, json.loads(machine.stdout)


def by_rule(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        assert entry["rule"] not in found, f"{entry['rule']} appears twice"
        found[entry["rule"]] = entry
    return found


def block(output: str, rule: str) -> str:
    """What `history` prints for one rule (its lines up to the blank one), unwrapped."""
    lines = output.splitlines()
    index = next(i for i, line in enumerate(lines) if f"  {rule}  " in line)
    end = next((i for i in range(index, len(lines)) if not lines[i].strip()), len(lines))
    return " ".join(" ".join(lines[index:end]).split())


def _seed(shop: Shop, settings: Settings) -> tuple[int, int]:
    Path(settings.rules).write_text(RULES)
    lin = shop.customer(name="Ms Lin", email=EMAIL, timezone="Asia/Taipei", marketing_opt_in=True)
    wong = shop.customer(name="Mr Wong", email="wong@example.tw", timezone="Asia/Taipei")
    roses = shop.product(price="59.00")
    order = shop.order(lin, items=[(roses, 2)], placed_at="2026-02-10 14:00")
    other = shop.order(wong, items=[(roses, 1)], placed_at="2026-02-10 14:00")
    shop.event("order", order, "placed", "2026-02-10 14:00")
    shop.event("order", other, "placed", "2026-02-10 14:00")
    return order, other


def test_history_explains_every_rule_for_an_order(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    order, other = _seed(shop, settings)

    # 22:01 in Taipei: the confirmation goes, the marketing offer waits for the morning.
    with at("2026-02-10 14:01"):
        run(settings)
        human, entries = history(settings, "--order", str(order))
    rules = by_rule(entries)
    sent = rules["order-confirmation"]
    assert sent["state"] == "sent" and sent["outcome"] == "sent"
    assert sent["message_id"] and sent["message_id"] in sent["explanation"]
    assert sent["smtp_reply"].startswith("250") and sent["smtp_reply"] in sent["explanation"]
    [received] = [m for m in smtp_server.messages if m.rcpt_tos == (EMAIL,)]
    assert received.message_id == sent["message_id"]
    assert "sent 2026-02-10 14:01:00 UTC" in block(human, "order-confirmation")
    assert sent["message_id"] in block(human, "order-confirmation")

    assert rules["big-order-thanks"]["outcome"] == "condition_false"
    assert "order.total >= 1000" in rules["big-order-thanks"]["explanation"]

    waiting = rules["dispatch-delayed"]
    assert waiting["state"] == "queued" and waiting["outcome"] == "waiting"
    assert waiting["until"] == "2026-02-12T14:00:00+00:00"
    assert "waiting until 2026-02-12 14:00 UTC" in block(human, "dispatch-delayed")
    assert re.search(
        r"48h after order.placed #\d+ at 2026-02-10 14:00 UTC, unless order.dispatched or order.cancelled",
        waiting["explanation"],
    ), waiting["explanation"]
    assert rules["late-notice"]["until"] == "2026-02-10T16:00:00+00:00"
    assert "delay 2h" in rules["late-notice"]["explanation"]

    quiet = rules["placed-offer"]
    assert quiet["state"] == "queued" and quiet["outcome"] == "quiet_hours"
    assert quiet["until"] == "2026-02-11T00:00:00+00:00"  # 08:00 in Taipei
    assert "quiet hours" in block(human, "placed-offer") and "2026-02-11 00:00 UTC" in block(
        human, "placed-offer"
    )

    for rule, event in (("order-dispatched", "order.dispatched"), ("order-delivered", "order.delivered")):
        assert rules[rule]["state"] == "not planned" and rules[rule]["outcome"] == "no_event"
        assert rules[rule]["event"] is None
        assert f"waits for {event}" in block(human, rule)
    assert rules["delivered-survey"]["outcome"] == "rule_disabled"
    assert "rule delivered-survey is disabled" in block(human, "delivered-survey")

    # The other customer never asked for marketing mail.
    _human, other_entries = history(settings, "--order", str(other))
    offer = by_rule(other_entries)["placed-offer"]
    assert offer["state"] == "skipped" and offer["outcome"] == "not_opted_in"
    assert "not opted in" in offer["explanation"]

    # She unsubscribes; the order is dispatched; the relay refuses the dispatched email.
    with engine.begin() as conn:
        store.suppress(conn, EMAIL, "unsubscribed", ts("2026-02-10 20:00"))
    shop.event("order", order, "dispatched", "2026-02-11 02:00", {"carrier": "DHL", "tracking_number": "1"})
    with at("2026-02-11 02:00:30"):
        _human, entries = history(settings, "--order", str(order))
    unread = by_rule(entries)["order-dispatched"]
    assert unread["outcome"] == "not_read_yet" and "next poll" in unread["explanation"]
    smtp_server.fail(550, on="RCPT", recipient=EMAIL)
    with at("2026-02-11 02:01"):
        run(settings)
        human, entries = history(settings, "--order", str(order))
    rules = by_rule(entries)
    assert rules["late-notice"]["outcome"] == "expired"
    assert "max_age" in rules["late-notice"]["explanation"]
    assert rules["placed-offer"]["outcome"] == "suppressed"
    assert EMAIL in rules["placed-offer"]["explanation"]
    failed = rules["order-dispatched"]
    assert failed["state"] == "failed" and failed["outcome"] == "smtp_permanent"
    assert failed["smtp_reply"].startswith("550") and "550" in block(human, "order-dispatched")
    assert "5.1.1 No such user here" in failed["explanation"]
    # Still waiting, but the dispatch already happened: it will not go.
    delayed = rules["dispatch-delayed"]
    assert delayed["outcome"] == "waiting" and "order.dispatched" in delayed["explanation"]
    assert "will be skipped when due" in delayed["explanation"]

    with at("2026-02-12 14:01"):
        run(settings)
        human, entries = history(settings, "--order", str(order))
    delayed = by_rule(entries)["dispatch-delayed"]
    assert delayed["state"] == "skipped" and delayed["outcome"] == "unless_happened"
    assert "order.dispatched" in block(human, "dispatch-delayed")
    assert by_rule(entries)["order-delivered"]["outcome"] == "no_event"
    to_her = [m for m in smtp_server.messages if m.rcpt_tos == (EMAIL,)]
    assert len(to_her) == 1, "only her confirmation was ever accepted"


def test_history_by_customer_and_case_and_oldest_first(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    order, other = _seed(shop, settings)
    customer = shop.customer(email="case@example.com", timezone="UTC")
    case = shop.case(customer, subject="Wrong colour", opened_at="2026-02-10 15:00")
    shop.event("case", case, "opened", "2026-02-10 15:00")
    with at("2026-02-10 15:01"):
        run(settings)
        _human, entries = history(settings, "--customer", EMAIL.upper())
        case_human, case_entries = history(settings, "--case", str(case))
    assert {e["thread"] for e in entries} == {f"order:{order}"}, "her order only, not Mr Wong's"
    assert {"order-confirmation", "dispatch-delayed", "order-delivered"} <= {e["rule"] for e in entries}
    timed = [e["due_at"] or e["event_at"] for e in entries if e["due_at"] or e["event_at"]]
    assert timed == sorted(timed), "oldest first"
    assert entries[-1]["due_at"] is None and entries[-1]["event"] is None, "rules still waiting come last"
    # The rules file above has no case rules: the case's history is its notifications only.
    assert case_entries == []
    assert "nothing was sent or planned" in case_human
    assert smtp_server.messages and other
    _human, unknown = history(settings, "--order", "999999")
    assert unknown == [], "no rules listed as waiting for an order that does not exist"


def test_a_rule_added_after_the_event_was_read_says_so(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    order, _other = _seed(shop, settings)
    with at("2026-02-10 14:01"):
        run(settings)
    Path(settings.rules).write_text(
        RULES + "  - name: placed-note\n    on: order.placed\n    template: thank_you\n"
    )
    with at("2026-02-10 14:02"):
        human, entries = history(settings, "--order", str(order))
    note = by_rule(entries)["placed-note"]
    assert note["state"] == "not planned" and note["outcome"] == "not_in_force"
    assert "was not in force when order.placed" in block(human, "placed-note")
    assert len(smtp_server.messages) == 2  # the two confirmations
