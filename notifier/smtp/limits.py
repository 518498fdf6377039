"""How many connections may be in use at once: the configured number, lowered to what the
relay allows once it says so.

Relays limit connections per client and say it in the greeting ("421 4.7.0 too many
connections"). That 421 is not the server going away while another connection works: the
pool then keeps to the connections it has (`Capacity.lower`), and the message that met
the 421 waits for one of them instead of stalling sending. A limit can be a busy hour's:
every ten minutes one more connection is allowed again, up to the configured number, and
a relay still at its limit lowers it again with its next 421.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

__all__ = ["REGROW_AFTER", "Capacity"]

REGROW_AFTER = 600.0  # seconds after a lowering (or the last regrowth) until one more is allowed


class Capacity:
    """A semaphore whose limit can be lowered while it is held (asyncio's cannot).

        async with capacity:      # waits while `limit` are in use
            ...
    """

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = limit  # as configured
        self.limit = limit
        self.in_use = 0
        self._clock = clock
        self._changed_at = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def lower(self, allowed: int) -> bool:
        """At most `allowed` (never fewer than 1) from now on; whether that is lower."""
        allowed = max(1, allowed)
        if allowed >= self.limit:
            return False
        self.limit = allowed
        self._changed_at = self._clock()
        return True

    def follow(self, limit: int) -> None:
        """Take another Capacity's limit (the pool's, for the messages waiting to go)."""
        if limit != self.limit:
            self.limit = limit
            self._wake()
        self._changed_at = self._clock()  # it regrows with the one it follows, not alone

    def _regrow(self) -> None:
        if self.limit < self.ceiling and self._clock() - self._changed_at >= REGROW_AFTER:
            self.limit += 1
            self._changed_at = self._clock()
            self._wake()

    async def acquire(self) -> None:
        self._regrow()
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the one releasing hands its place over (see _wake)
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed over just as it was cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_use < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
