"""Helpers for end-to-end tests: run the pipeline once, read back what the server got."""

from __future__ import annotations

import asyncio
import email
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

import sqlalchemy as sa

from notifier.config.settings import Settings
from notifier.db.schema import OrderEvent
from notifier.db.tables import Notification
from notifier.run.daemon import CycleResult, run_once
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer, Received

NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]
ORDER_EVENTS = OrderEvent.__table__  # type: ignore[attr-defined]
STEPS = ("placed", "dispatched", "delivered")


def run(settings: Settings) -> tuple[int, CycleResult]:
    """`notifier run --once` in-process."""
    return asyncio.run(run_once(settings))


def parse(message: Received) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(message.data, policy=default_policy))


def body(message: EmailMessage, kind: str = "plain") -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None, f"no text/{kind} part"
    return cast(str, part.get_content())


def notifications(engine: sa.Engine, **where: Any) -> list[Any]:
    query = sa.select(NOTIFICATIONS).order_by(NOTIFICATIONS.c.id)
    for column, value in where.items():
        query = query.where(NOTIFICATIONS.c[column] == value)
    with engine.connect() as conn:
        return list(conn.execute(query).mappings())


def journeys(shop: Shop, orders: int, *, customers: int, prefix: str = "c", **customer: Any) -> list[int]:
    """`orders` orders, each placed, dispatched and delivered a second apart five minutes ago,
    every event inserted at once; the order ids."""
    product = shop.product()
    people = [shop.customer(email=f"{prefix}{i}@example.com", **customer) for i in range(customers)]
    ids = [shop.order(people[i % customers], items=[(product, 1)]) for i in range(orders)]
    start = datetime.now(UTC) - timedelta(minutes=5)
    data = {
        "placed": lambda order: None,
        "dispatched": lambda order: {"carrier": "DHL", "tracking_number": f"T{order}"},
        "delivered": lambda order: {"delivered_at": start.isoformat(), "signed_by": "Lin"},
    }
    rows = [
        {"order_id": o, "type": kind, "occurred_at": start + timedelta(seconds=step), "data": data[kind](o)}
        for step, kind in enumerate(STEPS)
        for o in ids
    ]
    with shop.engine.begin() as conn:
        for chunk in range(0, len(rows), 500):
            conn.execute(sa.insert(ORDER_EVENTS), rows[chunk : chunk + 500])
    return ids


def kinds_per_order(server: FaultySmtpServer) -> dict[str, list[str]]:
    """Order number -> the kinds of email it got, in the order the server accepted them."""
    seen: dict[str, list[str]] = defaultdict(list)
    for message in server.messages:
        subject = parse(message)["Subject"]
        number = next(word for word in subject.replace(",", " ").split() if word.isdigit())
        kind = (
            "placed" if "confirmed" in subject else "dispatched" if "on its way" in subject else "delivered"
        )
        seen[number].append(kind)
    return seen
