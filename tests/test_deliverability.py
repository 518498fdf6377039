"""Deliverability against a real SMTP server: Message-IDs unique across databases, TLS by
default, relay limits. (Refusals read by their enhanced code: test_reliability_smtp.py.)"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.settings import Secret, Settings
from notifier.db.engine import init_db, make_engine
from notifier.db.store import STATE
from notifier.db.store.identity import DATABASE_ID
from notifier.run.daemon import EXIT_OK
from tests.journey import notifications, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

NOW = ts("2026-02-10 09:01")


def _run_at(settings: Settings, moment: Any) -> tuple[int, Any]:
    with freeze_time(moment, real_asyncio=True):
        return run(settings)


def _placed(shop: Shop, email: str) -> int:
    customer = shop.customer(email=email, timezone="UTC")
    order = shop.order(customer, items=[(shop.product(price="30.00"), 1)])
    shop.event("order", order, "placed", "2026-02-10 09:00")
    return order


def _second_database(tmp_path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'staging.db'}")
    init_db(engine)
    return engine


# --- Message-IDs --------------------------------------------------------------------------


def test_message_ids_differ_between_databases_and_stay_the_same_for_every_retry(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    # The same order number and event in two databases (production and staging, say).
    other = _second_database(tmp_path)
    for target in (shop, Shop(other)):
        _placed(target, "lin@example.com")
    smtp_server.fail(451, on="DATA", times=1)  # the first attempt is refused after the message

    assert _run_at(settings, NOW)[1].retrying == 1
    [row] = notifications(engine, rule="order-confirmation")
    first_id = row["message_id"]
    exit_code, result = _run_at(settings, NOW + timedelta(minutes=5))
    assert exit_code == EXIT_OK and result.sent == 1
    staging = replace(settings, database_url=Secret(str(other.url)))
    assert _run_at(staging, NOW)[1].sent == 1

    [ours, theirs] = smtp_server.messages
    assert ours.message_id == first_id, "a retry carries the Message-ID of the first attempt"
    assert theirs.message_id != ours.message_id
    with engine.connect() as conn:
        database = conn.execute(sa.select(STATE.c.value).where(STATE.c.key == DATABASE_ID)).scalar_one()
    assert len(database) == 16 and f".{database}@" in first_id
    other.dispose()
