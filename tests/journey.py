"""Helpers for end-to-end tests: run the pipeline once, read back what the server got."""

from __future__ import annotations

import asyncio
import email
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

import sqlalchemy as sa

from notifier.daemon import CycleResult, run_once
from notifier.settings import Settings
from notifier.tables import Notification
from tests.smtp_server import Received

NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]


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
