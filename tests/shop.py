"""Writes rows into the integration tables the way an order system would (for tests)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from notifier.db.schema import Case, CaseEvent, Customer, Order, OrderEvent, OrderItem, Product, ProductEvent


def _table(model: Any) -> sa.Table:
    return model.__table__  # type: ignore[no-any-return]


def ts(text: str) -> datetime:
    """'2026-02-10 09:00' -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Shop:
    """A tiny order system: customers, products, orders and their events."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._ids = {"customer": 0, "product": 0, "order": 1000, "case": 500}

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def customer(
        self,
        *,
        name: str = "Ms Lin",
        email: str | None = None,
        locale: str = "en",
        timezone: str = "Asia/Taipei",
        marketing_opt_in: bool = False,
    ) -> int:
        cid = self._next("customer")
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(_table(Customer)).values(
                    id=cid,
                    name=name,
                    email=email or f"customer{cid}@example.com",
                    locale=locale,
                    timezone=timezone,
                    marketing_opt_in=marketing_opt_in,
                )
            )
        return cid

    def product(
        self,
        *,
        name: str = "Twelve red roses",
        price: str = "59.00",
        currency: str = "USD",
        tags: str = "roses",
    ) -> int:
        pid = self._next("product")
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(_table(Product)).values(
                    id=pid, sku=f"SKU-{pid}", name=name, tags=tags, price=Decimal(price), currency=currency
                )
            )
        return pid

    def order(
        self,
        customer_id: int,
        *,
        items: list[tuple[int, int]] | None = None,
        placed_at: str = "2026-02-10 09:00",
        currency: str = "USD",
        ship_to_name: str = "Ms Lin",
        ship_to_address: str = "1 Flower Street, Taipei",
        promised_date: date | None = date(2026, 2, 12),
    ) -> int:
        oid = self._next("order")
        with self.engine.begin() as conn:
            prices = {row.id: row.price for row in conn.execute(sa.select(_table(Product)))}
            lines = items or []
            total = sum((Decimal(str(prices[pid])) * qty for pid, qty in lines), Decimal(0))
            conn.execute(
                sa.insert(_table(Order)).values(
                    id=oid,
                    customer_id=customer_id,
                    placed_at=ts(placed_at),
                    status="placed",
                    total=total,
                    currency=currency,
                    ship_to_name=ship_to_name,
                    ship_to_address=ship_to_address,
                    promised_date=promised_date,
                )
            )
            for pid, qty in lines:
                conn.execute(
                    sa.insert(_table(OrderItem)).values(
                        order_id=oid, product_id=pid, quantity=qty, unit_price=Decimal(str(prices[pid]))
                    )
                )
        return oid

    def case(
        self,
        customer_id: int,
        *,
        order_id: int | None = None,
        subject: str = "Wilted roses",
        priority: str = "normal",
        opened_at: str = "2026-02-10 09:00",
    ) -> int:
        case_id = self._next("case")
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(_table(Case)).values(
                    id=case_id,
                    customer_id=customer_id,
                    order_id=order_id,
                    subject=subject,
                    status="open",
                    priority=priority,
                    opened_at=ts(opened_at),
                )
            )
        return case_id

    def event(
        self,
        source: str,
        subject_id: int,
        kind: str,
        at: str = "2026-02-10 09:00",
        data: dict[str, Any] | None = None,
        raw_data: str | None = None,
    ) -> int:
        """Insert an event row; `raw_data` writes the data column as given (bad JSON tests)."""
        model, column = {
            "order": (OrderEvent, "order_id"),
            "case": (CaseEvent, "case_id"),
            "product": (ProductEvent, "product_id"),
        }[source]
        table = _table(model)
        with self.engine.begin() as conn:
            if raw_data is not None:
                conn.execute(
                    sa.text(
                        f"INSERT INTO {table.name} ({column}, type, occurred_at, data) "
                        "VALUES (:s, :t, :o, :d)"
                    ),
                    {"s": subject_id, "t": kind, "o": at + ":00", "d": raw_data},
                )
                return int(conn.execute(sa.select(sa.func.max(table.c.id))).scalar_one())
            result = conn.execute(
                sa.insert(table).values(
                    **{column: subject_id},
                    type=kind,
                    occurred_at=ts(at),
                    data=json.loads(json.dumps(data)) if data is not None else None,
                )
            )
            return int(result.inserted_primary_key[0])
