"""The shop the benchmarks send for: customers, products, orders of three items, events.

Nothing here is timed. `build` fills a fresh database (SQLite or PostgreSQL) through
notifier's own `init_db` and SQLAlchemy Core executemany in chunks: N customers (a mix of
en / zh-CN / zh-TW, English and Chinese names, their own timezones), 60 products, N orders
of three items each and, unless told otherwise, N `order.placed` events stamped now (the
shipped rules drop transactional mail more than 2 days late). `build_backlog` makes the
same shape of data for a million orders in SQLite with recursive-CTE INSERT ... SELECT.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifier.db.engine import init_db, make_engine
from notifier.db.schema import Customer, Order, OrderEvent, OrderItem, Product

CHUNK = 5_000
PRODUCTS = 60
LOCALES = (("en", "Europe/London", "GBP"), ("zh-CN", "Asia/Shanghai", "CNY"), ("zh-TW", "Asia/Taipei", "TWD"))
NAMES = ("Alex Morgan", "王芳", "林美玲", "Priya Shah", "陳志明", "O'Brien, Pat", "李娜", "Zoë Ångström")
ADDRESSES = (
    "Flat 3, 12 Rose Lane\nLondon N1 7AB\nUnited Kingdom",
    "上海市徐汇区天钥桥路 100 号 5 楼 502 室",
    "台北市大安區仁愛路四段 100 號 5 樓",
)
FLOWERS = ("Red roses, a dozen", "12 朵红玫瑰", "情人節卡片", "Clear glass vase", "白色百合花束", "Tulip mix")


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _price(product_id: int) -> float:
    return round(4.5 + (product_id * 7.25) % 60, 2)


def _customers(n: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        locale, zone, _ = LOCALES[i % 3]
        yield {"id": i, "email": f"customer{i}@example.com", "name": f"{NAMES[i % len(NAMES)]} {i}",
               "locale": locale, "timezone": zone, "marketing_opt_in": i % 2 == 0}


def _orders(n: int, now: datetime) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        _, _, currency = LOCALES[i % 3]
        total = sum(_price(_product_of(i, k)) * (1 + k % 2) for k in range(3))
        yield {"id": i, "customer_id": i, "placed_at": now, "status": "placed", "total": round(total, 2),
               "currency": currency, "ship_to_name": NAMES[(i + 3) % len(NAMES)],
               "ship_to_address": ADDRESSES[i % 3], "promised_date": (now + timedelta(days=3)).date()}


def _product_of(order_id: int, k: int) -> int:
    return (order_id * 7 + k * 13) % PRODUCTS + 1


def _items(n: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        for k in range(3):
            product = _product_of(i, k)
            yield {"id": 3 * (i - 1) + k + 1, "order_id": i, "product_id": product, "quantity": 1 + k % 2,
                   "unit_price": _price(product)}


def event_rows(order_ids: range, now: datetime) -> Iterator[dict[str, Any]]:
    for i in order_ids:
        yield {"order_id": i, "type": "placed", "occurred_at": now}  # data stays SQL NULL


def build(url: str, n: int, *, events: bool = True) -> None:
    """A fresh shop of `n` customers and orders (and `n` order.placed events) at `url`."""
    engine = make_engine(url)
    init_db(engine)
    now = datetime.now(UTC)
    products = [{"id": p, "sku": f"SKU-{p:04d}", "name": f"{FLOWERS[p % len(FLOWERS)]} #{p}",
                 "tags": "roses,valentine" if p % 2 else "lilies", "price": _price(p), "currency": "GBP"}
                for p in range(1, PRODUCTS + 1)]
    tables: list[tuple[sa.Table, Iterator[dict[str, Any]]]] = [
        (Customer.__table__, _customers(n)),  # type: ignore[attr-defined]
        (Product.__table__, iter(products)),  # type: ignore[attr-defined]
        (Order.__table__, _orders(n, now)),  # type: ignore[attr-defined]
        (OrderItem.__table__, _items(n)),  # type: ignore[attr-defined]
    ]
    if events:
        tables.append((OrderEvent.__table__, event_rows(range(1, n + 1), now)))  # type: ignore[attr-defined]
    with engine.begin() as conn:
        for table, rows in tables:
            for chunk in _chunks(rows):
                conn.execute(table.insert(), chunk)
    engine.dispose()


def _case(expr: str, values: tuple[str, ...]) -> str:
    arms = " ".join(f"WHEN {k} THEN '{v.replace(chr(39), chr(39) * 2)}'" for k, v in enumerate(values))
    return f"(CASE ({expr}) % {len(values)} {arms} END)"


def build_backlog(path: str, n: int) -> None:
    """`n` customers, orders (three items each) and order.placed events in SQLite, in SQL."""
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    engine.dispose()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    promised = (date.today() + timedelta(days=3)).isoformat()
    seq = f"WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})"
    price = "(4.5 + ((p * 7.25) - 60 * CAST(p * 7.25 / 60 AS INTEGER)))"
    product = "((i * 7 + k * 13) % 60 + 1)"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(f"""
        PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-200000;
        BEGIN;
        INSERT INTO products (id, sku, name, tags, price, currency)
          WITH RECURSIVE ps(p) AS (SELECT 1 UNION ALL SELECT p + 1 FROM ps WHERE p < {PRODUCTS})
          SELECT p, printf('SKU-%04d', p), {_case('p', FLOWERS)} || ' #' || p, 'roses,valentine', {price},
                 'GBP' FROM ps;
        INSERT INTO customers (id, email, name, locale, timezone, marketing_opt_in)
          {seq} SELECT i, 'customer' || i || '@example.com', {_case('i', NAMES)} || ' ' || i,
            {_case('i', tuple(x[0] for x in LOCALES))}, {_case('i', tuple(x[1] for x in LOCALES))},
            i % 2 = 0 FROM seq;
        INSERT INTO order_items (id, order_id, product_id, quantity, unit_price)
          {seq}, ks(k) AS (VALUES (0), (1), (2))
          SELECT 3 * (i - 1) + k + 1, i, {product}, 1 + k % 2,
                 (SELECT price FROM products WHERE id = {product})
          FROM seq, ks;
        INSERT INTO orders (id, customer_id, placed_at, status, total, currency, ship_to_name,
                            ship_to_address, promised_date)
          {seq} SELECT i, i, '{now}', 'placed',
            (SELECT round(sum(unit_price * quantity), 2) FROM order_items WHERE order_id = i),
            {_case('i', tuple(x[2] for x in LOCALES))}, {_case('i + 3', NAMES)}, {_case('i', ADDRESSES)},
            '{promised}' FROM seq;
        INSERT INTO order_events (order_id, type, occurred_at, data)
          {seq} SELECT i, 'placed', '{now}', NULL FROM seq;
        COMMIT;
    """)
    db.close()
