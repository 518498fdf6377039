"""A relay's limits, against a real aiosmtpd server that allows fewer connections than the pool.

A 421 in the greeting while another connection works is the relay's connection limit: the
pool keeps to the connections the relay allows and the message waits for one, so sending
never stalls while one connection works. A burst of 421 replies halves the pace once per
interval, not once per reply.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.settings import Settings
from notifier.core.values import Outcome, SendResult
from notifier.run.daemon import EXIT_OK
from notifier.smtp.limits import REGROW_AFTER, Capacity
from notifier.smtp.pacing import HALVING_INTERVAL, Pace
from notifier.smtp.pool import Sender
from tests.journey import notifications, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

MESSAGE = b"From: care@flowers.test\r\nTo: {to}\r\nSubject: hi\r\n\r\nhello\r\n"


def send_many(sender: Sender, count: int) -> list[SendResult]:
    async def go() -> list[SendResult]:
        async with sender:
            return await asyncio.gather(
                *(
                    sender.send(
                        mail_from="care@flowers.test",
                        rcpt_to=f"c{n}@example.com",
                        message=MESSAGE.replace(b"{to}", f"c{n}@example.com".encode()),
                    )
                    for n in range(count)
                )
            )

    return asyncio.run(go())


def test_a_relay_allowing_one_connection_gets_every_message_on_that_one(
    smtp_server: FaultySmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_server.limit_connections(1)
    sender = Sender(smtp_server.smtp_config(connections=4, timeout=5.0))

    results = send_many(sender, 12)

    assert [r.outcome for r in results] == [Outcome.SENT] * 12, results
    assert len(smtp_server.messages) == 12
    assert {m.connection for m in smtp_server.messages} == {1}
    assert sender.limit == 1
    said = [r.getMessage() for r in caplog.records if "allows 1 connection(s)" in r.getMessage()]
    assert said and "421 4.7.0 too many connections" in said[0]


def test_a_421_greeting_with_no_other_connection_stalls_but_one_working_does_not(
    smtp_server: FaultySmtpServer,
) -> None:
    smtp_server.limit_connections(0, "4.3.2 Service not available")  # the server itself is busy
    busy = send_many(Sender(smtp_server.smtp_config(connections=4, timeout=5.0)), 3)
    assert {r.outcome for r in busy} == {Outcome.STALLED}
    assert all(r.code == 421 and "Service not available" in r.reply for r in busy), busy
    assert smtp_server.messages == []

    smtp_server.limit_connections(1)
    results = send_many(Sender(smtp_server.smtp_config(connections=3, timeout=5.0)), 3)
    assert [r.outcome for r in results] == [Outcome.SENT] * 3, results


def test_a_relay_allowing_two_keeps_two_busy(smtp_server: FaultySmtpServer) -> None:
    smtp_server.limit_connections(2)
    smtp_server.slow(0.05, on="DATA", times=None)  # long enough that two are on the wire at once
    sender = Sender(smtp_server.smtp_config(connections=4, timeout=5.0))

    results = send_many(sender, 12)

    assert [r.outcome for r in results] == [Outcome.SENT] * 12, results
    assert 1 <= sender.limit <= 2
    assert smtp_server.connections_open <= 2


def test_run_once_with_a_relay_allowing_one_connection_sends_all_twelve(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    smtp_server.limit_connections(1)
    for _ in range(12):
        customer = shop.customer(timezone="UTC")
        order = shop.order(customer, items=[(shop.product(price="30.00"), 1)])
        shop.event("order", order, "placed", "2026-02-10 09:00")

    with freeze_time(ts("2026-02-10 09:01"), real_asyncio=True):
        exit_code, result = run(replace(settings, smtp_connections=4))

    assert exit_code == EXIT_OK
    assert result.sent == 12
    assert len(smtp_server.messages) == 12
    rows = notifications(engine, rule="order-confirmation")
    assert [row["state"] for row in rows] == ["sent"] * 12
    assert all(row["attempts"] == 1 for row in rows), rows


def test_the_pool_tries_one_more_connection_again_after_a_while() -> None:
    now = [1000.0]
    capacity = Capacity(4, clock=lambda: now[0])

    async def take_one() -> None:
        async with capacity:
            pass

    assert capacity.lower(1) and capacity.limit == 1
    assert not capacity.lower(3)  # a limit is only ever lowered by lower()
    asyncio.run(take_one())
    assert capacity.limit == 1
    now[0] += REGROW_AFTER
    asyncio.run(take_one())
    assert capacity.limit == 2
    now[0] += REGROW_AFTER * 10
    for _ in range(5):
        now[0] += REGROW_AFTER
        asyncio.run(take_one())
    assert capacity.limit == 4  # never above the configured number


# -- the pace: halved once per interval -------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_burst_of_421_replies_halves_the_pace_once() -> None:
    fake = FakeTime()
    pace = Pace(769.0, clock=fake.clock, sleep=fake.sleep)

    for _ in range(11):  # eleven 421s within 25 ms: the messages already on the wire
        pace.slow_down()
        fake.now += 0.0025

    assert pace.rate == 384.5


def test_the_pace_is_halved_again_only_after_the_interval() -> None:
    fake = FakeTime()
    pace = Pace(10.0, clock=fake.clock, sleep=fake.sleep)
    assert pace.slow_down() == 5.0
    fake.now += HALVING_INTERVAL - 0.01
    assert pace.slow_down() == 5.0
    fake.now += 0.01
    assert pace.slow_down() == 2.5
    # At 0.2 a second, a message goes every 5 s: not halved again before the next one went.
    slow = Pace(0.5, clock=fake.clock, sleep=fake.sleep)
    assert slow.slow_down() == 0.25
    fake.now += 3.0
    assert slow.slow_down() == 0.25
    fake.now += 1.0
    assert slow.slow_down() == 0.2


def test_run_once_halves_the_pace_once_for_a_burst_of_421(
    settings: Settings,
    shop: Shop,
    smtp_server: FaultySmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp_server.fail(421, "4.7.0 slow down", on="MAIL", times=4)
    for _ in range(8):
        customer = shop.customer(timezone="UTC")
        order = shop.order(customer, items=[(shop.product(price="30.00"), 1)])
        shop.event("order", order, "placed", "2026-02-10 09:00")

    with caplog.at_level(logging.WARNING), freeze_time(ts("2026-02-10 09:01"), real_asyncio=True):
        exit_code, result = run(replace(settings, smtp_connections=4, smtp_rate=100.0))

    assert exit_code == EXIT_OK
    assert result.sent + result.retrying == 8 and result.retrying == 4
    slowed = [r.getMessage() for r in caplog.records if "slowing down" in r.getMessage()]
    assert len(slowed) == 1, slowed
    assert "slowing down to 50.0 messages/s" in slowed[0]
