"""`notifier demo`: the whole pipeline on a SQLite file, a local mail catcher and a
simulated timeline — three customers in three languages, their orders placed, put on the
truck and delivered — ending with a summary and every message saved as an .eml file.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shlex
import shutil
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from notifier.config.settings import Secret, Settings
from notifier.config.shipped import shipped
from notifier.db.engine import init_db, make_engine
from notifier.db.events import SOURCES
from notifier.db.schema import Case, Customer, Order, OrderItem, Product
from notifier.run.daemon import Pipeline
from notifier.tools.catcher import MailCatcher

START = datetime(2026, 2, 9, 1, 0, tzinfo=UTC)

CUSTOMERS = [
    {
        "id": 1,
        "email": "emma.lin@example.com",
        "name": "Ms Emma Lin",
        "locale": "en",
        "timezone": "Europe/London",
        "marketing_opt_in": True,
    },
    {
        "id": 2,
        "email": "wang.fang@example.cn",
        "name": "王芳",
        "locale": "zh-CN",
        "timezone": "Asia/Shanghai",
        "marketing_opt_in": True,
    },
    {
        "id": 3,
        "email": "lin.meiling@example.tw",
        "name": "林美玲",
        "locale": "zh-TW",
        "timezone": "Asia/Taipei",
        "marketing_opt_in": False,
    },
]
PRODUCTS = [
    {
        "id": 1,
        "sku": "ROSE-12",
        "name": "Twelve red roses",
        "tags": "roses,valentine",
        "price": 59,
        "currency": "USD",
    },
    {
        "id": 2,
        "sku": "TULIP-10",
        "name": "Ten spring tulips",
        "tags": "tulips",
        "price": 35,
        "currency": "USD",
    },
    {"id": 3, "sku": "VASE-G", "name": "Glass vase", "tags": "vase", "price": 19.5, "currency": "USD"},
]
ORDERS: list[dict[str, Any]] = [
    {
        "id": 1042,
        "customer_id": 1,
        "currency": "USD",
        "ship_to_name": "Ms Emma Lin",
        "ship_to_address": "12 Rosebery Avenue, London EC1R 4SX",
        "items": [(1, 1), (3, 1)],
    },
    {
        "id": 1043,
        "customer_id": 2,
        "currency": "CNY",
        "ship_to_name": "王芳",
        "ship_to_address": "上海市徐汇区衡山路 88 号",
        "items": [(1, 2), (2, 1)],
    },
    {
        "id": 1044,
        "customer_id": 3,
        "currency": "TWD",
        "ship_to_name": "林美玲",
        "ship_to_address": "台北市大安區仁愛路四段 100 號",
        "items": [(2, 1), (3, 2)],
    },
    {
        "id": 1045,
        "customer_id": 1,
        "currency": "USD",
        "ship_to_name": "Mr Tom Lin",
        "ship_to_address": "4 Canal Street, Manchester M1 3HE",
        "items": [(1, 1)],
    },
]
# (when, in UTC; source; order, case or product id; event type; data). Times are chosen to read well in each
# customer's own timezone: Taipei and Shanghai are UTC+8, London is UTC in February.
TIMELINE: list[tuple[str, str, int, str, dict[str, Any] | None]] = [
    ("2026-02-09 01:00", "order", 1042, "placed", None),
    ("2026-02-09 01:12", "order", 1043, "placed", None),
    ("2026-02-09 01:24", "order", 1044, "placed", None),
    (
        "2026-02-09 23:00",
        "order",
        1044,
        "dispatched",
        {"carrier": "黑貓宅急便", "tracking_number": "TC9876543210", "eta": "2026-02-10"},
    ),
    (
        "2026-02-09 23:30",
        "order",
        1043,
        "dispatched",
        {
            "carrier": "顺丰速运",
            "tracking_number": "SF1234567890",
            "tracking_url": "https://track.example/SF1234567890",
            "eta": "2026-02-10",
        },
    ),
    (
        "2026-02-10 02:20",
        "order",
        1043,
        "delivered",
        {"delivered_at": "2026-02-10 02:15:00", "signed_by": "王芳"},
    ),
    (
        "2026-02-10 03:05",
        "order",
        1044,
        "delivered",
        {"delivered_at": "2026-02-10 03:02:00", "signed_by": "林美玲"},
    ),
    (
        "2026-02-10 07:00",
        "order",
        1042,
        "dispatched",
        {
            "carrier": "Royal Mail",
            "tracking_number": "RM123456789GB",
            "tracking_url": "https://track.example/RM123456789GB",
            "eta": "2026-02-10",
        },
    ),
    (
        "2026-02-10 11:05",
        "order",
        1042,
        "delivered",
        {"delivered_at": "2026-02-10 11:02:00", "signed_by": "Ms Lin"},
    ),
    # Order 1045 is placed but never leaves the shop: 48 hours on, we write first.
    ("2026-02-09 09:00", "order", 1045, "placed", None),
    ("2026-02-11 09:01", "", 0, "", None),
    # Roses go up on 1 March: the buyers who asked for news hear of it first (marketing mail).
    (
        "2026-02-10 08:00",
        "product",
        1,
        "price_change",
        {
            "old_price": "59.00",
            "new_price": "69.00",
            "currency": "USD",
            "effective_at": "2026-03-01 00:00:00",
        },
    ),
    # Ms Lin writes in about two wilted roses: answered at once, replied, solved, visited again.
    ("2026-02-10 12:00", "case", 501, "opened", None),
    ("2026-02-10 13:10", "case", 501, "agent_replied", {"agent": "Amy"}),
    ("2026-02-10 15:00", "case", 501, "resolved", {"resolution": "Two fresh roses sent today"}),
    ("2026-02-13 15:01", "", 0, "", None),
]
TIMELINE.sort(key=lambda step: step[0])


def _seed(engine: sa.Engine) -> None:
    prices = {p["id"]: p["price"] for p in PRODUCTS}
    with engine.begin() as conn:
        conn.execute(sa.insert(Customer.__table__), CUSTOMERS)  # type: ignore[attr-defined]
        conn.execute(sa.insert(Product.__table__), PRODUCTS)  # type: ignore[attr-defined]
        conn.execute(
            sa.insert(Case.__table__).values(  # type: ignore[attr-defined]
                id=501,
                customer_id=1,
                order_id=1042,
                subject="Two roses arrived wilted",
                status="open",
                priority="high",
                opened_at=datetime(2026, 2, 10, 12, 0, tzinfo=UTC),
            )
        )
        for order in ORDERS:
            total = sum(prices[pid] * qty for pid, qty in order["items"])
            conn.execute(
                sa.insert(Order.__table__).values(  # type: ignore[attr-defined]
                    id=order["id"],
                    customer_id=order["customer_id"],
                    placed_at=START,
                    status="placed",
                    total=total,
                    currency=order["currency"],
                    ship_to_name=order["ship_to_name"],
                    ship_to_address=order["ship_to_address"],
                    promised_date=date(2026, 2, 10),
                )
            )
            conn.execute(
                sa.insert(OrderItem.__table__),  # type: ignore[attr-defined]
                [
                    {"order_id": order["id"], "product_id": pid, "quantity": qty, "unit_price": prices[pid]}
                    for pid, qty in order["items"]
                ],
            )


def _shipped_file(name: str) -> Path:
    """rules.yaml / templates from the working directory (after `notifier init`, or in a
    checkout), else the ones the package carries."""
    here = Path(name)
    return here if here.exists() else shipped(name)


def this_command() -> str:
    """How to run this same notifier again, as typed in this working directory: `notifier`
    when that is on the PATH and is this one, else the path of the running executable."""
    running = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if running is None or running.name in ("__main__.py", "-c") or not running.exists():
        return f"{shlex.quote(sys.executable)} -m notifier"
    on_path = shutil.which("notifier")
    if on_path is not None and Path(on_path).resolve() == running.resolve():
        return "notifier"
    try:
        shown = running.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return shlex.quote(str(running.resolve()))
    return shlex.quote(str(shown))


class SimulatedClock:
    """The demo's time: moved forward step by step instead of waiting days."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def _play(settings: Settings, engine: sa.Engine, clock: SimulatedClock, console: Console) -> None:
    async with Pipeline(settings, engine=engine, clock=clock) as pipeline:
        for when, source, subject_id, kind, data in TIMELINE:
            clock.now = datetime.fromisoformat(when).replace(tzinfo=UTC)
            if kind:
                table, column = SOURCES[source]
                with engine.begin() as conn:
                    conn.execute(
                        sa.insert(table).values(
                            {column: subject_id, "type": kind, "occurred_at": clock.now, "data": data}
                        )
                    )
            result = await pipeline.cycle()
            what = f"{source} {subject_id} {kind:<13}" if kind else "(time passes)       "
            skipped = f", {result.skipped} not needed any more" if result.skipped else ""
            console.print(f"  {clock.now:%a %d %b %H:%M} UTC  {what} -> {result.sent} email(s) sent{skipped}")


def run_demo(out: Path, console: Console) -> int:
    """Run the demo into `out`; returns the exit code."""
    # The timeline and the summary say what happens; per-message log lines would drown them.
    if logging.getLogger().level < logging.WARNING:
        logging.getLogger("notifier").setLevel(logging.WARNING)
    if out.exists():
        shutil.rmtree(out)
    (out / "mail").mkdir(parents=True)
    database = out / "demo.db"
    engine = make_engine(f"sqlite:///{database}")
    init_db(engine)
    _seed(engine)
    console.print(
        f"[bold]notifier demo[/bold]: {len(CUSTOMERS)} customers, {len(ORDERS)} orders, database {database}"
    )
    with MailCatcher(out_dir=out / "mail") as catcher:
        settings = replace(
            Settings(),
            database_url=Secret(f"sqlite:///{database}"),
            smtp_url=Secret(catcher.url),
            rules=_shipped_file("rules.yaml"),
            templates=_shipped_file("templates"),
            secret_key=Secret(secrets.token_hex(16)),
        )
        asyncio.run(_play(settings, engine, SimulatedClock(START), console))
        _summary(console, catcher, out)
        return 0 if catcher.messages else 1


def _summary(console: Console, catcher: MailCatcher, out: Path) -> None:
    table = Table(title=f"{len(catcher.messages)} emails caught")
    for column in ("#", "to", "subject"):
        table.add_column(column)
    for number, message in enumerate(catcher.messages, 1):
        table.add_row(str(number), ", ".join(message.rcpt_tos), message.subject)
    console.print(table)
    console.print(f"messages saved as .eml files in {out / 'mail'}; database in {out / 'demo.db'}")
    console.print(
        f"try: {this_command()} --database-url sqlite:///{out / 'demo.db'} history --order 1042",
        markup=False,
        highlight=False,
    )
