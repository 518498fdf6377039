"""Pacing with a fake clock: the rate holds, a 421 slows it, accepted mail wins it back."""

from __future__ import annotations

import asyncio

from notifier.smtp.pacing import MINIMUM_RATE, Pace


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _send(pace: Pace, count: int) -> None:
    async def go() -> None:
        for _ in range(count):
            await pace.wait()

    asyncio.run(go())


def test_rate_holds_over_a_minute() -> None:
    fake = FakeTime()
    pace = Pace(10.0, clock=fake.clock, sleep=fake.sleep)
    start = fake.now
    _send(pace, 601)  # 600 intervals at 10/s
    assert abs((fake.now - start) - 60.0) < 0.01


def test_unlimited_does_not_wait() -> None:
    fake = FakeTime()
    pace = Pace(None, clock=fake.clock, sleep=fake.sleep)
    _send(pace, 1000)
    assert fake.now == 1000.0


def test_421_halves_the_pace_and_acceptance_wins_it_back_up_to_the_ceiling() -> None:
    fake = FakeTime()
    pace = Pace(10.0, clock=fake.clock, sleep=fake.sleep)
    assert pace.slow_down() == 5.0
    start = fake.now
    _send(pace, 11)
    assert abs((fake.now - start) - 2.0) < 0.01  # 10 intervals at 5/s
    for _ in range(500):
        pace.accepted()
    assert pace.rate == 10.0
    for _ in range(50):  # 421s a minute apart: each one halves it, down to the floor
        fake.now += 60.0
        pace.slow_down()
    assert pace.rate == MINIMUM_RATE


def test_421_without_a_configured_rate_caps_at_half_of_what_was_achieved() -> None:
    fake = FakeTime()
    pace = Pace(None, clock=fake.clock, sleep=fake.sleep)

    async def at_40_per_second() -> None:
        for _ in range(41):
            await pace.wait()
            fake.now += 0.025

    asyncio.run(at_40_per_second())
    assert abs(pace.slow_down() - 20.0) < 0.5
    for _ in range(2000):
        pace.accepted()
    assert pace.rate is None, "back to full speed once the relay stopped complaining"
