"""Pacing: at most NOTIFIER_SMTP_RATE messages a second, and slower when the relay asks.

Relays throttle. Each send reserves the next slot, 1/rate seconds after the previous one,
so the rate holds over any window, with no bursts. A 421 ("try again later", as relays say
"slow down") halves the pace — or, with no configured rate, caps it at half of what was just
achieved — and each accepted message wins back 1 % of it, up to the configured ceiling.

The pace is halved at most once per interval (a second, or one message at the new pace if
that is longer): the replies to every message already on the wire when the relay began to
complain arrive together, and they are one complaint, not one each.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

MINIMUM_RATE = 0.2  # never slower than one message every five seconds
RECOVERY = 1.01  # each accepted message raises a lowered pace by 1 %
HALVING_INTERVAL = 1.0  # seconds: at most one halving in this long (or one slot at the new pace)


class Pace:
    """Spaces sends out to a rate that a relay's 421 can lower for a while."""

    def __init__(
        self,
        rate: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.ceiling = rate  # None: as fast as the server takes them
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._calm_until = float("-inf")  # no halving before this (the clock's time)
        self._recent: deque[float] = deque(maxlen=200)

    async def wait(self) -> None:
        """Wait for this message's slot."""
        now = self._clock()
        self._recent.append(now)
        if self.rate is None:
            return
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.rate
        if slot > now:
            await self._sleep(slot - now)

    def slow_down(self) -> float:
        """The relay said 421: halve the pace, unless it was halved within the interval.
        Returns the rate now."""
        now = self._clock()
        if self.rate is not None and now < self._calm_until:
            return self.rate
        current = self.rate if self.rate is not None else self._achieved()
        self.rate = max(MINIMUM_RATE, current / 2)
        self._calm_until = now + max(HALVING_INTERVAL, 1.0 / self.rate)
        return self.rate

    def accepted(self) -> None:
        """A message went: win back a little of a lowered pace."""
        if self.rate is None or (self.ceiling is not None and self.rate >= self.ceiling):
            return
        raised = self.rate * RECOVERY
        if self.ceiling is None and raised >= self._achieved() * 2:
            self.rate = None  # back to full speed
        else:
            self.rate = raised if self.ceiling is None else min(raised, self.ceiling)

    def _achieved(self) -> float:
        if len(self._recent) < 2:
            return 10.0
        span = self._recent[-1] - self._recent[0]
        return (len(self._recent) - 1) / span if span > 0 else 1000.0
