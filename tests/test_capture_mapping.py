"""The capture mapping read as values: the agreed format's example as written, the event types
it declares (also from a mapping with a problem), and the one word on never-firing rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config.capture_reader import CaptureError, declared_events, load_capture
from notifier.config.live import LiveConfig
from notifier.core.capture import Change, Column, Comparison, Literal, Now, can_never_fire
from notifier.core.rules import Rule
from notifier.core.vocabulary import VOCABULARY, known_events

# The agreed format's example, as README shows it.
FORMAT = """\
# capture.yaml
events:
  - event: order.placed            # table prefix + type: order_events, type 'placed'
    table: order_order             # the shop's table the trigger sits on
    on: insert                     # insert | update | delete
    subject: new.id                # the order / product / case id of the event row
    occurred_at: new.date_placed   # optional; default: the time of the change, UTC
  - event: order.dispatched
    table: order_orderstatuschange
    on: insert
    when:                          # optional; every condition must hold
      new.new_status: Shipped      # equals a literal
    subject: new.order_id
    occurred_at: new.date_created
    data:                          # optional; key -> new.col | old.col | a literal scalar
      carrier: Royal Mail
  - event: order.cancelled
    table: order_orderstatuschange
    on: insert
    when:
      new.new_status: {in: [Cancelled, Canceled]}   # also {not: X}, {is: null}, {is: not null}
    subject: new.order_id
  - event: product.price_change
    table: partner_stockrecord
    on: update
    changed: [price]               # update only: fires when any of these columns' value differs (NULL-safe)
    subject: new.product_id
    data:
      old_price: old.price
      new_price: new.price
      currency: new.price_currency
      effective_at: now            # the special value `now`: the time of the change, UTC
  - event: order.gift_wrapped      # a type beyond SPEC's vocabulary: declared here, so rules may name it
    table: shop_giftwrap
    on: insert
    subject: new.order_id
"""
EXAMPLE = """\
events:
  - event: order.placed
    table: order_order
    on: insert
    subject: new.id
    occurred_at: new.date_placed
  - event: order.cancelled
    table: order_orderstatuschange
    on: insert
    when:
      new.new_status: {in: [Cancelled, Canceled]}
      new.note: {is: not null}
      old_flag_ignored_here: 1
    subject: new.order_id
"""


def test_the_formats_example_reads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "capture.yaml"
    path.write_text(FORMAT, encoding="utf-8")
    mapping = load_capture(path)
    assert mapping is not None
    placed, dispatched, cancelled, price, gift = mapping.captures
    assert (placed.event, placed.table, placed.on, placed.subject) == (
        "order.placed",
        "order_order",
        Change.INSERT,
        Column("new", "id"),
    )
    assert dispatched.when[0].test == Comparison.EQUALS and dispatched.when[0].values == ("Shipped",)
    assert dict(dispatched.data) == {"carrier": Literal("Royal Mail")}
    assert cancelled.when[0].values == ("Cancelled", "Canceled") and cancelled.occurred_at == Now()
    assert price.changed == ("price",) and dict(price.data)["old_price"] == Column("old", "price")
    assert dict(price.data)["effective_at"] == Now()
    assert mapping.declared == {
        "order.placed",
        "order.dispatched",
        "order.cancelled",
        "product.price_change",
        "order.gift_wrapped",
    }
    assert (gift.number, gift.type, gift.events_table) == (5, "gift_wrapped", "order_events")


def test_a_mapping_with_a_problem_still_declares_the_events_it_names_well(tmp_path: Path) -> None:
    path = tmp_path / "capture.yaml"
    path.write_text(EXAMPLE.replace("order.placed", "order.gift_wrapped"), encoding="utf-8")
    with pytest.raises(CaptureError) as raised:
        load_capture(path)
    assert [p.line for p in raised.value.problems] == [13], raised.value.problems
    assert declared_events(path) == {"order.gift_wrapped", "order.cancelled"}
    assert declared_events(tmp_path / "none.yaml") == frozenset()
    assert known_events({"order.gift_wrapped", "order.placed"}) == (*VOCABULARY, "order.gift_wrapped")


def _rule(name: str, on: str, enabled: bool = True) -> Rule:
    return Rule(name=name, on=on, template="t", line=1, enabled=enabled)


def test_a_rule_can_never_fire_when_nothing_writes_its_event() -> None:
    rules = [
        _rule("captured", "order.placed"),
        _rule("written-by-the-shop", "order.delivered"),
        _rule("nothing", "order.refunded"),
        _rule("off", "order.refunded", enabled=False),
        _rule("calendar", "schedule.tick"),
        _rule("not-solved", "case.not_solved"),
    ]
    never = can_never_fire(rules, {"order.placed"}, {"order.delivered"})
    assert [rule.name for rule in never] == ["nothing", "not-solved"]
    with_cases = can_never_fire(rules, {"order.placed", "case.opened"}, {"order.delivered"})
    assert [rule.name for rule in with_cases] == ["nothing"]  # a case email carries the link


def test_the_daemon_reloads_the_rules_when_the_mapping_declares_a_new_event(project: Path) -> None:
    capture = project / "capture.yaml"
    live = LiveConfig(project / "rules.yaml", project / "templates", capture)
    with (project / "rules.yaml").open("a", encoding="utf-8") as rules:
        rules.write("  - name: gift-note\n    on: order.gift_wrapped\n    template: order_confirmation\n")
    refused = live.reload_if_changed()
    assert refused.changed and refused.error is not None and "order.gift_wrapped" in refused.error
    capture.write_text(
        "events:\n  - {event: order.gift_wrapped, table: t, on: insert, subject: new.order_id}\n"
    )
    taken = live.reload_if_changed()
    assert taken.changed and taken.error is None
    assert "gift-note" in {rule.name for rule in live.rules.rules}
