"""The send side takes what intake read moments ago instead of reading it again."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from notifier.config.settings import Settings
from notifier.db.engine import make_engine
from notifier.run.pipeline import Pipeline
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

ORDERS = 30
TABLES = ("customers", "orders", "order_items", "order_events")


def _reads(engine: sa.Engine) -> Counter[str]:
    """SELECTs per integration table, counted as the driver is handed them."""
    counted: Counter[str] = Counter()

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            for table in TABLES:
                if re.search(rf"\bFROM {table}\b", statement):
                    counted[table] += 1

    return counted


def test_an_order_planned_and_sent_in_one_turn_is_read_once(
    db_url: str, settings: Settings, smtp_server: FaultySmtpServer
) -> None:
    engine = make_engine(db_url)
    shop = Shop(engine)
    product = shop.product()
    now = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
    for number in range(ORDERS):
        order = shop.order(shop.customer(email=f"once{number}@example.com"), items=[(product, 1)])
        shop.event("order", order, "placed", now)
    reads = _reads(engine)

    async def one_cycle() -> int:
        async with Pipeline(settings, engine=engine) as pipeline:
            return (await pipeline.cycle()).sent

    assert asyncio.run(one_cycle()) == ORDERS
    assert len(smtp_server.messages) == ORDERS
    # Intake reads each table once for the batch; the send side, in the same turn, not again.
    # (The order events are read a second time for the gates: later events that would
    # supersede or cancel a message, which is a different question.)
    assert reads["customers"] == 1, reads
    assert reads["orders"] == 1, reads
    assert reads["order_items"] == 1, reads
    engine.dispose()
