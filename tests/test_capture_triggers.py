"""Capture triggers on real SQLite and PostgreSQL: a change in the shop's own table writes one
event row that notifier reads as the right event; `when` and `changed` filter; a rolled-back
change leaves nothing; check tells matching, missing, stale and extra; remove leaves none."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from notifier.config.capture_reader import load_capture
from notifier.core.capture import CaptureMap
from notifier.db.capture import triggers
from notifier.db.capture.triggers import State
from notifier.db.events import read_after, types_present
from notifier.db.schema import OrderEvent, ProductEvent

ORDER_EVENTS = OrderEvent.__table__  # type: ignore[attr-defined]
PRODUCT_EVENTS = ProductEvent.__table__  # type: ignore[attr-defined]

MAPPING = """\
events:
  - event: order.dispatched
    table: shop_status
    on: insert
    when:
      new.status: Shipped
    subject: new.order_id
    occurred_at: new.created
    data:
      carrier: new.carrier
      tracking_number: new.tracking
      eta: new.eta
      parcels: new.parcels
      weight: new.weight
      service: "Royal Mail's $notifier_capture$ 100% \\\\ 24"
      signed: true
      handed_over_at: new.created
  - event: order.cancelled
    table: shop_status
    on: insert
    when:
      new.status: {in: [Cancelled, Canceled]}
    subject: new.order_id
  - event: product.price_change
    table: shop_stock
    on: update
    changed: [price]
    subject: new.product_id
    data:
      old_price: old.price
      new_price: new.price
      currency: new.currency
      effective_at: now
"""


def _shop_tables(engine: sa.Engine) -> tuple[sa.Table, sa.Table]:
    """The shop's own tables, as a shop's ORM would make them on this database."""
    metadata = sa.MetaData()
    status = sa.Table(
        "shop_status",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer),
        sa.Column("status", sa.String(40)),
        sa.Column("created", sa.DateTime(timezone=True)),
        sa.Column("carrier", sa.String(40)),
        sa.Column("tracking", sa.String(40)),
        sa.Column("eta", sa.Date),
        sa.Column("parcels", sa.Integer),
        sa.Column("weight", sa.Numeric(8, 2)),
    )
    stock = sa.Table(
        "shop_stock",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("product_id", sa.Integer),
        sa.Column("price", sa.Numeric(12, 2)),
        sa.Column("currency", sa.String(3)),
    )
    metadata.create_all(engine)
    return status, stock


def _mapping(tmp_path: Path, text: str = MAPPING) -> CaptureMap:
    path = tmp_path / "capture.yaml"
    path.write_text(text, encoding="utf-8")
    mapping = load_capture(path)
    assert mapping is not None
    return mapping


def _install(engine: sa.Engine, mapping: CaptureMap) -> None:
    with engine.connect() as conn:
        triggers.run(conn, triggers.install_statements(conn, mapping))


def _standing(engine: sa.Engine, mapping: CaptureMap) -> list[tuple[State, int | None]]:
    with engine.connect() as conn:
        return [
            (item.state, item.capture.number if item.capture else None)
            for item in triggers.standing(conn, mapping)
        ]


def _events(engine: sa.Engine, source: str) -> list:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return read_after(conn, source, 0, 100)


def _shipped(**values: object) -> dict[str, object]:
    row = {
        "order_id": 1042,
        "status": "Shipped",
        "created": datetime(2026, 2, 11, 9, 30, 15, tzinfo=UTC),
        "carrier": "DHL",
        "tracking": "JD0142",
        "eta": date(2026, 2, 13),
        "parcels": 2,
        "weight": Decimal("1.25"),
    }
    return {**row, **values}


def test_an_insert_writes_one_event_notifier_reads_with_its_type_subject_time_and_data(
    engine: sa.Engine, tmp_path: Path
) -> None:
    status, _stock = _shop_tables(engine)
    _install(engine, _mapping(tmp_path))
    with engine.begin() as conn:
        conn.execute(sa.insert(status).values(**_shipped()))
    [event] = _events(engine, "order")
    assert event.problem is None, event.problem
    assert (event.type, event.subject_id) == ("order.dispatched", 1042)
    assert event.occurred_at == datetime(2026, 2, 11, 9, 30, 15, tzinfo=UTC)
    data = event.data
    assert (data["carrier"], data["tracking_number"], data["eta"]) == ("DHL", "JD0142", date(2026, 2, 13))
    assert data["service"] == "Royal Mail's $notifier_capture$ 100% \\ 24" and data["signed"] in (True, 1)
    assert datetime.fromisoformat(data["handed_over_at"]).replace(tzinfo=UTC) == event.occurred_at
    # Numbers stay numbers in the JSON the shop's row became, not text.
    with engine.connect() as conn:
        raw = conn.execute(sa.select(sa.cast(ORDER_EVENTS.c.data, sa.Text))).scalar_one()
    stored = json.loads(raw)
    assert stored["parcels"] == 2 and isinstance(stored["parcels"], int)
    assert stored["weight"] == 1.25 and isinstance(stored["weight"], float)


def test_when_and_changed_decide_which_changes_are_events(engine: sa.Engine, tmp_path: Path) -> None:
    status, stock = _shop_tables(engine)
    _install(engine, _mapping(tmp_path))
    with engine.begin() as conn:
        conn.execute(sa.insert(status).values(**_shipped(status="Pending")))
        conn.execute(sa.insert(status).values(**_shipped(order_id=None)))  # no subject: no event
        conn.execute(sa.insert(status).values(**_shipped(order_id=7, status="Canceled")))
        conn.execute(sa.insert(stock).values(id=1, product_id=101, price=Decimal("19.90"), currency="GBP"))
        conn.execute(sa.update(stock).values(currency="EUR"))  # price unchanged: no event
        conn.execute(sa.update(stock).values(price=Decimal("24.50")))
        conn.execute(sa.update(stock).values(price=Decimal("24.50")))  # same price again: no event
    assert [(e.type, e.subject_id) for e in _events(engine, "order")] == [("order.cancelled", 7)]
    [change] = _events(engine, "product")
    assert change.problem is None, change.problem
    assert (change.type, change.subject_id) == ("product.price_change", 101)
    assert (change.data["old_price"], change.data["new_price"]) == (Decimal("19.90"), Decimal("24.50"))
    assert change.data["currency"] == "EUR"
    assert abs((change.data["effective_at"] - change.occurred_at).total_seconds()) < 1


def test_a_rolled_back_change_leaves_no_event(engine: sa.Engine, tmp_path: Path) -> None:
    status, _stock = _shop_tables(engine)
    _install(engine, _mapping(tmp_path))
    with engine.connect() as conn:
        conn.begin()
        conn.execute(sa.insert(status).values(**_shipped()))
        with_it = conn.execute(sa.select(sa.func.count()).select_from(ORDER_EVENTS)).scalar_one()
        conn.rollback()
    assert with_it == 1  # the event was written in the shop's own transaction ...
    assert _events(engine, "order") == []  # ... and went with it


def test_check_tells_missing_matching_stale_and_extra_and_remove_leaves_none(
    engine: sa.Engine, tmp_path: Path
) -> None:
    _shop_tables(engine)
    mapping = _mapping(tmp_path)
    assert _standing(engine, mapping) == [(State.MISSING, 1), (State.MISSING, 2), (State.MISSING, 3)]
    _install(engine, mapping)
    assert _standing(engine, mapping) == [(State.MATCHING, 1), (State.MATCHING, 2), (State.MATCHING, 3)]
    with engine.connect() as conn:
        assert triggers.install_statements(conn, mapping) == []  # installing again does nothing
    # The mapping changes: entry 1 fires on another status; entry 3 is gone.
    changed = MAPPING.replace("new.status: Shipped", "new.status: Dispatched").split("  - event: product")[0]
    edited = _mapping(tmp_path, changed)
    assert _standing(engine, edited) == [(State.STALE, 1), (State.MATCHING, 2), (State.EXTRA, None)]
    _install(engine, edited)
    assert _standing(engine, edited) == [(State.MATCHING, 1), (State.MATCHING, 2)]
    with engine.connect() as conn:
        assert len(triggers.dialect_for(conn).installed(conn)) == 2
        triggers.run(conn, triggers.remove_statements(conn))
        assert triggers.dialect_for(conn).installed(conn) == []
    assert _standing(engine, edited) == [(State.MISSING, 1), (State.MISSING, 2)]


def test_a_column_the_table_does_not_have_is_named_with_its_line(engine: sa.Engine, tmp_path: Path) -> None:
    _shop_tables(engine)
    mapping = _mapping(
        tmp_path, MAPPING.replace("new.tracking", "new.trackin").replace("shop_stock", "shop_stok")
    )
    with engine.connect() as conn, pytest.raises(triggers.DatabaseMismatch) as raised:
        triggers.plan(conn, mapping)
    words = [str(problem) for problem in raised.value.problems]
    assert any(":11: " in w and "no column 'trackin'; did you mean 'tracking'?" in w for w in words), words
    assert any(
        ":25: " in w and "no table 'shop_stok' here; did you mean 'shop_stock'?" in w for w in words
    ), words


def test_the_event_types_present_are_read_from_the_event_tables(engine: sa.Engine, tmp_path: Path) -> None:
    status, _stock = _shop_tables(engine)
    _install(engine, _mapping(tmp_path))
    with engine.begin() as conn:
        conn.execute(sa.insert(status).values(**_shipped()))
    with engine.connect() as conn:
        assert types_present(conn) == {"order.dispatched"}
