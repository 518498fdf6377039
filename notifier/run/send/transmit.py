"""Send: hand built messages to SMTP, one order's (or case's) in event order, different orders
at once on the pool's connections; each reply goes to the recorder as soon as it comes.

Once the daemon is stopping, no new SMTP transaction starts: a message waits for a free
connection here (not inside the SMTP client), so the ones not yet started are handed back
at once and only the ones already on the wire are finished. A stalled server, or a failed
message earlier in its thread, hands back the rest of that thread too.

Each message gets its Date (and, when configured, its DKIM signature) once a connection is
free for it, just before it goes (compose/handover.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from notifier.compose.handover import Handover
from notifier.compose.signing import Signer
from notifier.core.bounces import Verp
from notifier.core.timing import utcnow
from notifier.core.values import Outcome, SendResult
from notifier.run.send.render import Ready
from notifier.smtp.limits import Capacity
from notifier.smtp.pacing import Pace
from notifier.smtp.pool import Sender

log = logging.getLogger("notifier.run.send")

Settle = Callable[[Ready, SendResult | None], None]  # None: handed back unsent


class Transmitter:
    """The SMTP side of one dispatcher: the pool, the pace, and whether the server is stalled."""

    def __init__(
        self,
        sender: Sender,
        *,
        rate: float | None,
        clock: Callable[[], datetime] = utcnow,
        signer: Signer | None = None,
    ) -> None:
        self.sender = sender
        self.handover = Handover(clock, signer)
        self.pace = Pace(rate)
        self.clock = clock
        self.stalled: SendResult | None = None
        self.verp: Verp | None = None  # bounce addresses, when NOTIFIER_BOUNCE_DOMAIN is set
        self.on_wire = 0  # messages handed to the server and not answered yet
        # As many on the wire as the pool has connections for (fewer once the relay says).
        self._wire = Capacity(sender.limit)
        self._next_check = datetime.min.replace(tzinfo=UTC)
        self._stall_checks = 0

    async def send(self, ready: list[Ready], *, stopping: asyncio.Event, settle: Settle) -> None:
        """Send `ready`; `settle(item, result)` for every one of them, as soon as it is known."""
        threads: dict[str, list[Ready]] = {}
        for item in ready:
            threads.setdefault(item.claimed.thread, []).append(item)

        def hand_back(items: list[Ready]) -> None:
            for item in items:
                settle(item, None)

        async def send_thread(items: list[Ready]) -> None:
            for position, item in enumerate(items):
                result = await self._send_one(item, stopping)
                if result is None:
                    hand_back(items[position:])
                    return
                settle(item, result)
                if result.outcome is not Outcome.SENT:
                    hand_back(items[position + 1 :])
                    return

        await asyncio.gather(*(send_thread(items) for items in threads.values()))

    async def _send_one(self, item: Ready, stopping: asyncio.Event) -> SendResult | None:
        """The server's reply, or None when the message must not start (stopping, stalled)."""
        if self.stalled is not None or stopping.is_set():
            return None
        await self.pace.wait()
        async with self._wire:
            if self.stalled is not None or stopping.is_set():
                return None
            self.on_wire += 1
            try:
                message = self.handover(item.message)
                result = await self.sender.send(
                    mail_from=self.envelope_sender(item),
                    rcpt_to=item.claimed.recipient or "",
                    message=message,
                )
            finally:
                self.on_wire -= 1
                self._wire.follow(self.sender.limit)  # before leaving lets the next one in
        self._paced(result)
        if result.outcome is Outcome.STALLED:
            self._stall(result)
        return result

    def envelope_sender(self, item: Ready) -> str:
        """The bounce address that names this notification, or the From address without one
        (reports then go to whoever reads From)."""
        return self.verp.address(item.claimed.id) if self.verp is not None else item.mail_from

    def _paced(self, result: SendResult) -> None:
        if result.outcome is Outcome.SENT:
            self.pace.accepted()
        elif result.code == 421:
            before = self.pace.rate
            after = self.pace.slow_down()
            if after != before:  # halved at most once an interval: say it once
                log.warning(
                    "the mail server said 421 (%s); slowing down to %.1f messages/s", result.reply, after
                )

    def _stall(self, result: SendResult) -> None:
        if self.stalled is None:
            log.error("SMTP server unusable: %s; sending paused, nothing is lost", result.reply)
        self.stalled = result
        self._stall_checks = 0
        self._next_check = self.clock()

    async def usable(self) -> bool:
        """False while SMTP is stalled; checks again with growing pauses (at most 1 min)."""
        if self.stalled is None:
            return True
        if self.clock() < self._next_check:
            return False
        result = await self.sender.check()
        if result.outcome is Outcome.SENT:
            log.info("SMTP server is usable again; sending resumes")
            self.stalled = None
            return True
        self._stall_checks += 1
        wait = min(60.0, 2.0**self._stall_checks)
        self._next_check = self.clock() + timedelta(seconds=wait)
        self.stalled = result
        return False
