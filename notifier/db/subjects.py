"""The documented template context, loaded from the order system's tables in batches.

`load_subjects` turns a batch of (source, id) pairs into `Subject`s with a handful of
IN-queries, never a query per message. `template_context` adds the event and the links and
gives the dict that conditions and templates see (rendering.py documents every key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from notifier.core.values import Subject, kind_of
from notifier.db import cells
from notifier.db.order_number import orders_table
from notifier.db.schema import Case, Customer, Order, OrderItem, Product
from notifier.db.translations import product_names

CUSTOMERS = Customer.__table__  # type: ignore[attr-defined]
ORDERS = Order.__table__  # type: ignore[attr-defined]
ITEMS = OrderItem.__table__  # type: ignore[attr-defined]
PRODUCTS = Product.__table__  # type: ignore[attr-defined]
CASES = Case.__table__  # type: ignore[attr-defined]
CHUNK = 500


def money(value: Any) -> Decimal | None:
    """Numbers from either database as Decimal, via str so 19.9 stays 19.9."""
    return None if value is None else Decimal(str(value))


def _rows(conn: sa.Connection, table: sa.TableClause, column: str, ids: Iterable[Any]) -> list[Any]:
    # Only whole numbers are ids: a text id in a row was already that row's problem.
    wanted = sorted({i for i in ids if isinstance(i, int) and not isinstance(i, bool)})
    rows: list[Any] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows.extend(conn.execute(cells.raw(table).where(table.c[column].in_(chunk))).mappings())
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


def _where(table: str, row: Mapping[str, Any]) -> Callable[[str], cells.Where]:
    row_id = row["id"]
    return lambda column: cells.Where(table, row_id, column)


def _customer(row: Mapping[str, Any]) -> dict[str, Any]:
    at = _where("customers", row)
    return {
        "id": row["id"],
        "name": cells.text(row["name"], at("name"), default=""),
        "email": (cells.text(row["email"], at("email"), default="") or "").strip(),
        "locale": cells.text(row["locale"], at("locale"), default="") or "en",
        "timezone": cells.text(row["timezone"], at("timezone"), default="") or "UTC",
        "marketing_opt_in": cells.flag(row["marketing_opt_in"], at("marketing_opt_in")),
    }


def _order(row: Mapping[str, Any]) -> dict[str, Any]:
    at = _where("orders", row)
    return {
        "id": row["id"],
        "number": _number(row, at),
        "customer_id": cells.integer(row["customer_id"], at("customer_id")),
        "placed_at": cells.timestamp(row["placed_at"], at("placed_at")),
        "status": cells.text(row["status"], at("status"), default=""),
        "total": cells.amount(row["total"], at("total")),
        "currency": cells.text(row["currency"], at("currency"), default=""),
        "ship_to_name": cells.text(row["ship_to_name"], at("ship_to_name"), default=""),
        "ship_to_address": cells.text(row["ship_to_address"], at("ship_to_address"), default=""),
        "promised_date": cells.day(row["promised_date"], at("promised_date")),
    }


def _number(row: Mapping[str, Any], at: Callable[[str], cells.Where]) -> str:
    """The shop's own order number where `orders` has one (order_number.py), else the id."""
    number = cells.text(row.get("number"), at("number"), nullable=True)
    return (number or "").strip() or str(row["id"])


def _product(row: Mapping[str, Any]) -> dict[str, Any]:
    at = _where("products", row)
    tags = cells.text(row["tags"], at("tags"), default="") or ""
    return {
        "id": row["id"],
        "sku": cells.text(row["sku"], at("sku"), default=""),
        "name": cells.text(row["name"], at("name"), default=""),
        "tags": [tag.strip() for tag in tags.split(",") if tag.strip()],
        "price": cells.amount(row["price"], at("price")),
        "currency": cells.text(row["currency"], at("currency"), default=""),
    }


def _case(row: Mapping[str, Any]) -> dict[str, Any]:
    at = _where("cases", row)
    return {
        "id": row["id"],
        "number": str(row["id"]),
        "customer_id": cells.integer(row["customer_id"], at("customer_id")),
        "order_id": cells.integer(row["order_id"], at("order_id"), nullable=True),
        "subject": cells.text(row["subject"], at("subject"), default=""),
        "status": cells.text(row["status"], at("status"), default=""),
        "priority": cells.text(row["priority"], at("priority"), default="") or "normal",
        "opened_at": cells.timestamp(row["opened_at"], at("opened_at")),
    }


class Checked:
    """Rows of one table by id, each converted or with its problem in words."""

    def __init__(
        self, rows: Iterable[Mapping[str, Any]], convert: Callable[[Mapping[str, Any]], Any]
    ) -> None:
        self.good: dict[int, Any] = {}
        self.bad: dict[int, str] = {}
        for row in rows:
            try:
                self.good[row["id"]] = convert(row)
            except cells.BadValue as exc:
                self.bad[row["id"]] = str(exc)
            except Exception as exc:  # a value no check foresaw: this row's problem only
                self.bad[row["id"]] = f"row {row['id']} could not be read: {exc}"[:500]


def _products(conn: sa.Connection, ids: Iterable[Any]) -> Checked:
    """Products by id, each with its `names` per locale (product_translations, if the shop has it)."""
    products = Checked(_rows(conn, PRODUCTS, "id", ids), _product)
    names = product_names(conn, products.good)
    for product_id, product in products.good.items():
        product["names"] = names.get(product_id, {})
    return products


def _item(row: Mapping[str, Any], products: Checked) -> dict[str, Any]:
    at = _where("order_items", row)
    product_id = cells.integer(row["product_id"], at("product_id"))
    if product_id in products.bad:
        raise cells.BadValue(products.bad[product_id])
    product = products.good.get(product_id) if product_id is not None else None
    quantity = cells.integer(row["quantity"], at("quantity"))
    unit_price = cells.amount(row["unit_price"], at("unit_price"))
    return {
        "order_id": cells.integer(row["order_id"], at("order_id")),
        "product_id": product_id,
        "sku": product["sku"] if product else "",
        "name": product["name"] if product else f"product {product_id}",
        "names": dict(product["names"]) if product else {},
        "quantity": quantity,
        "unit_price": unit_price,
        "line_total": unit_price * (quantity or 0),
    }


def _items(
    conn: sa.Connection, order_ids: Iterable[int]
) -> tuple[dict[int, list[dict[str, Any]]], dict[int, str]]:
    """The items of these orders, and the orders an unusable item (or its product) spoils."""
    rows = _rows(conn, ITEMS, "order_id", order_ids)
    products = _products(conn, {r["product_id"] for r in rows})
    items: dict[int, list[dict[str, Any]]] = {}
    spoiled: dict[int, str] = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        try:
            items.setdefault(row["order_id"], []).append(_item(row, products))
        except Exception as exc:  # BadValue, or one no check foresaw
            spoiled.setdefault(row["order_id"], str(exc)[:500])
    return items, spoiled


@dataclass(slots=True)
class _Loaded:
    orders: Checked
    items: dict[int, list[dict[str, Any]]]
    spoiled: dict[int, str]  # order id -> the problem of one of its items
    cases: Checked
    customers: Checked
    products: Checked


def load_subjects(conn: sa.Connection, refs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Subject]:
    """(source, subject id) pairs -> Subjects, loaded with a few queries per table. A row that
    holds a value notifier cannot use makes that Subject's problem (bad_row), nobody else's."""
    asked = set(refs)
    refs = {(kind_of(source), subject_id) for source, subject_id in asked}
    cases = Checked(_rows(conn, CASES, "id", [i for s, i in refs if s == "case"]), _case)
    order_ids = {i for s, i in refs if s == "order"} | {
        c["order_id"] for c in cases.good.values() if c["order_id"]
    }
    orders = Checked(_rows(conn, orders_table(conn), "id", order_ids), _order)
    customer_ids = {o["customer_id"] for o in orders.good.values()} | {
        c["customer_id"] for c in cases.good.values()
    }
    customers = Checked(_rows(conn, CUSTOMERS, "id", customer_ids), _customer)
    items, spoiled = _items(conn, orders.good)
    products = _products(conn, [i for s, i in refs if s == "product"])
    loaded = _Loaded(orders, items, spoiled, cases, customers, products)
    return {
        (source, subject_id): _subject((kind_of(source), subject_id), loaded) for source, subject_id in asked
    }


def _bad(problem: str) -> Subject:
    return Subject(problem=problem, bad_row=True)


def _subject(ref: tuple[str, int], loaded: _Loaded) -> Subject:
    source, subject_id = ref
    if source == "schedule":  # a calendar tick is about no order, case or product
        return Subject()
    if source == "product":
        if subject_id in loaded.products.bad:
            return _bad(loaded.products.bad[subject_id])
        product = loaded.products.good.get(subject_id)
        return Subject(product=product, problem=None if product else f"product {subject_id} does not exist")
    if source == "case" and subject_id in loaded.cases.bad:
        return _bad(loaded.cases.bad[subject_id])
    case = loaded.cases.good.get(subject_id) if source == "case" else None
    if source == "case" and case is None:
        return Subject(problem=f"case {subject_id} does not exist")
    order_id = subject_id if source == "order" else (case or {}).get("order_id")
    if order_id in loaded.orders.bad or order_id in loaded.spoiled:
        return _bad(loaded.orders.bad.get(order_id) or loaded.spoiled[order_id])  # type: ignore[index]
    order = loaded.orders.good.get(order_id) if order_id else None
    if source == "order" and order is None:
        return Subject(problem=f"order {subject_id} does not exist")
    customer_id = case["customer_id"] if case else order["customer_id"]  # type: ignore[index]
    if customer_id in loaded.customers.bad:
        return _bad(loaded.customers.bad[customer_id])
    customer = loaded.customers.good.get(customer_id)
    if customer is None:
        return Subject(order=order, case=case, problem=f"customer {customer_id} does not exist")
    return Subject(
        customer=customer,
        order=order,
        items=loaded.items.get(order_id, []) if order_id else [],
        case=case,
        problem=customer_problem(customer),
    )


def load_customers(conn: sa.Connection, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Customer rows by id (for fan-out recipients of product events); a row notifier cannot
    use is left out, as if it did not exist (`customer_problems` says why)."""
    return Checked(_rows(conn, CUSTOMERS, "id", ids), _customer).good


def customer_problems(conn: sa.Connection, ids: Iterable[int]) -> dict[int, str]:
    """Why each of these customers' rows cannot be used, for the ones that cannot."""
    return Checked(_rows(conn, CUSTOMERS, "id", ids), _customer).bad
