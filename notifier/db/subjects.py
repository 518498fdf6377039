"""The documented template context, loaded from the order system's tables in batches.

`load_subjects` turns a batch of (source, id) pairs into `Subject`s with a handful of
IN-queries, never a query per message. `template_context` adds the event and the links and
gives the dict that conditions and templates see (rendering.py documents every key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from notifier.core.values import Subject, kind_of
from notifier.core.vocabulary import parse_timestamp
from notifier.db.schema import Case, Customer, Order, OrderItem, Product

CUSTOMERS = Customer.__table__  # type: ignore[attr-defined]
ORDERS = Order.__table__  # type: ignore[attr-defined]
ITEMS = OrderItem.__table__  # type: ignore[attr-defined]
PRODUCTS = Product.__table__  # type: ignore[attr-defined]
CASES = Case.__table__  # type: ignore[attr-defined]
CHUNK = 500


def money(value: Any) -> Decimal | None:
    """Numbers from either database as Decimal, via str so 19.9 stays 19.9."""
    return None if value is None else Decimal(str(value))


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _rows(conn: sa.Connection, table: sa.Table, column: str, ids: Iterable[int]) -> list[Any]:
    wanted = sorted(set(ids))
    rows: list[Any] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows.extend(conn.execute(sa.select(table).where(table.c[column].in_(chunk))).mappings())
    return rows


def customer_problem(customer: Mapping[str, Any]) -> str | None:
    """Why a customer row cannot be written to, or None."""
    try:
        ZoneInfo(str(customer["timezone"]))
    except (ZoneInfoNotFoundError, ValueError):
        return (
            f"customer {customer['id']} has timezone {customer['timezone']!r}, which is not an IANA timezone"
        )
    return None


def _customer(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"] or "",
        "email": (row["email"] or "").strip(),
        "locale": row["locale"] or "en",
        "timezone": row["timezone"] or "UTC",
        "marketing_opt_in": bool(row["marketing_opt_in"]),
    }


def _order(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "number": str(row["id"]),
        "customer_id": row["customer_id"],
        "placed_at": parse_timestamp(row["placed_at"]),
        "status": row["status"],
        "total": money(row["total"]),
        "currency": row["currency"],
        "ship_to_name": row["ship_to_name"],
        "ship_to_address": row["ship_to_address"],
        "promised_date": _date(row["promised_date"]),
    }


def _product(row: Mapping[str, Any]) -> dict[str, Any]:
    tags = [tag.strip() for tag in (row["tags"] or "").split(",") if tag.strip()]
    return {
        "id": row["id"],
        "sku": row["sku"],
        "name": row["name"],
        "tags": tags,
        "price": money(row["price"]),
        "currency": row["currency"],
    }


def _case(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "number": str(row["id"]),
        "customer_id": row["customer_id"],
        "order_id": row["order_id"],
        "subject": row["subject"],
        "status": row["status"],
        "priority": row["priority"] or "normal",
        "opened_at": parse_timestamp(row["opened_at"]),
    }


def _items(conn: sa.Connection, order_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    rows = _rows(conn, ITEMS, "order_id", order_ids)
    products = {row["id"]: row for row in _rows(conn, PRODUCTS, "id", {r["product_id"] for r in rows})}
    items: dict[int, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        product = products.get(row["product_id"])
        unit_price = money(row["unit_price"]) or Decimal(0)
        items.setdefault(row["order_id"], []).append(
            {
                "product_id": row["product_id"],
                "sku": product["sku"] if product else "",
                "name": product["name"] if product else f"product {row['product_id']}",
                "quantity": row["quantity"],
                "unit_price": unit_price,
                "line_total": unit_price * row["quantity"],
            }
        )
    return items


def load_subjects(conn: sa.Connection, refs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Subject]:
    """(source, subject id) pairs -> Subjects, loaded with a few queries per table."""
    asked = set(refs)
    refs = {(kind_of(source), subject_id) for source, subject_id in asked}
    cases = {r["id"]: _case(r) for r in _rows(conn, CASES, "id", [i for s, i in refs if s == "case"])}
    order_ids = {i for s, i in refs if s == "order"} | {
        c["order_id"] for c in cases.values() if c["order_id"]
    }
    orders = {r["id"]: _order(r) for r in _rows(conn, ORDERS, "id", order_ids)}
    customer_ids = {o["customer_id"] for o in orders.values()} | {c["customer_id"] for c in cases.values()}
    customers = {r["id"]: r for r in _rows(conn, CUSTOMERS, "id", customer_ids)}
    items = _items(conn, orders)
    products = {
        r["id"]: _product(r) for r in _rows(conn, PRODUCTS, "id", [i for s, i in refs if s == "product"])
    }
    return {
        (source, subject_id): _subject(
            (kind_of(source), subject_id), orders, items, cases, customers, products
        )
        for source, subject_id in asked
    }


def _subject(
    ref: tuple[str, int],
    orders: dict[int, Any],
    items: dict[int, Any],
    cases: dict[int, Any],
    customers: dict[int, Any],
    products: dict[int, Any],
) -> Subject:
    source, subject_id = ref
    if source == "schedule":  # a calendar tick is about no order, case or product
        return Subject()
    if source == "product":
        product = products.get(subject_id)
        return Subject(product=product, problem=None if product else f"product {subject_id} does not exist")
    case = cases.get(subject_id) if source == "case" else None
    if source == "case" and case is None:
        return Subject(problem=f"case {subject_id} does not exist")
    order_id = subject_id if source == "order" else (case or {}).get("order_id")
    order = orders.get(order_id) if order_id else None
    if source == "order" and order is None:
        return Subject(problem=f"order {subject_id} does not exist")
    customer_id = case["customer_id"] if case else order["customer_id"]  # type: ignore[index]
    row = customers.get(customer_id)
    if row is None:
        return Subject(order=order, case=case, problem=f"customer {customer_id} does not exist")
    return Subject(
        customer=_customer(row),
        order=order,
        items=items.get(order_id, []) if order_id else [],
        case=case,
        problem=customer_problem(row),
    )


def load_customers(conn: sa.Connection, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Customer rows by id (for fan-out recipients of product events)."""
    return {r["id"]: _customer(r) for r in _rows(conn, CUSTOMERS, "id", ids)}


