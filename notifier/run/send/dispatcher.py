"""The send side, one batch at a time, as stages: claim -> load -> judge -> render -> send -> record.

Each stage takes a list and returns the ones that go on plus the ones it decided on, each
with a `Reason`; the decided ones go straight to the recorder. Claiming leases the messages
to this process; the lease is renewed while any of them is still unrecorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from notifier.compose.signing import load_signer
from notifier.config.live import LiveConfig
from notifier.config.settings import Settings
from notifier.core.gates import Decided
from notifier.core.retry import Settled, after_reply
from notifier.core.timing import utcnow
from notifier.core.values import Claimed, SendResult
from notifier.db import store
from notifier.db.store.bounces import verp_of
from notifier.db.store.identity import database_id
from notifier.run.recent import Recent
from notifier.run.results import BatchResult
from notifier.run.send.judge import judged
from notifier.run.send.load import load
from notifier.run.send.record import Recorder, decided_verdict
from notifier.run.send.render import Ready, rendered
from notifier.run.send.transmit import Transmitter
from notifier.smtp.pool import Sender

log = logging.getLogger("notifier.run.send")


class Dispatcher:
    """Owns the send side of the pipeline for one daemon (or one `run --once`)."""

    def __init__(
        self,
        *,
        engine: Engine,
        config: LiveConfig,
        sender: Sender,
        settings: Settings,
        worker: str,
        clock: Callable[[], datetime] = utcnow,
        claim_limit: int | None = None,
        stopping: asyncio.Event | None = None,
        recent: Recent | None = None,
    ) -> None:
        self.engine = engine
        self.claim_limit = claim_limit or settings.batch_size
        self.config = config
        self.settings = settings
        self.worker = worker
        self.clock = clock
        self.stopping = stopping or asyncio.Event()  # set: start no new SMTP transaction
        self.recent = recent or Recent()  # what this process's intake read this turn
        # The DKIM key is read here, at start: a bad one stops the daemon with a ConfigError.
        signer = load_signer(settings.dkim_key_file, settings.dkim_selector, settings.dkim_domain)
        self.transmitter = Transmitter(sender, rate=settings.smtp_rate, clock=clock, signer=signer)
        self._database_id: str | None = None  # read once, at the first batch

    @property
    def stalled(self) -> SendResult | None:
        return self.transmitter.stalled

    async def smtp_usable(self) -> bool:
        return await self.transmitter.usable()

    async def dispatch_once(self) -> BatchResult:
        """Claim, prepare, send and record one batch. Returns what happened."""
        recent = self.recent.take()  # this turn's, used now or never (kept, it would go stale)
        if self.stopping.is_set() or not await self.smtp_usable():
            return BatchResult()
        now = self.clock()
        claimed = await asyncio.to_thread(self._claim, now)
        if not claimed:
            return BatchResult()
        unrecorded = {item.id for item in claimed}
        recorder = Recorder(
            self.engine,
            worker=self.worker,
            clock=self.clock,
            written=lambda group: unrecorded.difference_update(item.claimed.id for item in group),
        ).start()
        renewal = asyncio.ensure_future(self._keep_leases(unrecorded))
        try:
            ready, decided = await asyncio.to_thread(self._prepare, claimed, now, recent)
            recorder.put(decided_verdict(item) for item in decided)

            def settle(item: Ready, result: SendResult | None) -> None:
                verdict = after_reply(
                    item.claimed,
                    result,
                    now=self.clock(),
                    retry_for=self.settings.retry_for,
                    first_backoff=self.settings.retry_backoff,
                )
                settled = Settled(
                    claimed=item.claimed,
                    verdict=verdict,
                    reply=result,
                    built=item.built,
                    occurred_at=item.occurred_at,
                )
                recorder.put([settled])

            await self.transmitter.send(ready, stopping=self.stopping, settle=settle)
            summary = await recorder.close()
        except BaseException:
            recorder.cancel()
            raise
        finally:
            renewal.cancel()
        summary.claimed = len(claimed)
        if self.stalled is not None or summary.sent:
            await asyncio.to_thread(self._publish_health)
        return summary

    # --- the stages before sending, in one worker thread ------------------------------------

    def _claim(self, now: datetime) -> list[Claimed]:
        with self.engine.begin() as conn:
            if self._database_id is None:  # in the claim's write, never while preparing
                self._database_id = database_id(conn, now)
                self.transmitter.verp = verp_of(conn, self.settings.bounce_domain, now)
            return store.claim_due(
                conn, now=now, limit=self.claim_limit, worker=self.worker, lease=self.settings.lease
            )

    def _prepare(
        self, claimed: list[Claimed], now: datetime, recent: Recent | None = None
    ) -> tuple[list[Ready], list[Decided]]:
        """Load, judge and render. Reads in one read-only transaction, renders outside it: on
        SQLite a write transaction would hold up the order system's writes meanwhile."""
        rules = self.config.rules
        has_secret = self.settings.secret_key is not None
        loaded, readable, unreadable = load(
            self.engine, claimed, rules, has_secret=has_secret, recent=recent
        )
        wanted, decided = judged(readable, rules, loaded.facts, now=now)
        assert self._database_id is not None, "a batch is claimed (and the id read) before it is prepared"
        ready, failed = rendered(
            wanted,
            loaded,
            rules=rules,
            renderer=self.config.renderer,
            settings=self.settings,
            now=now,
            database_id=self._database_id,
        )
        return ready, unreadable + decided + failed

    # --- leases and health ---------------------------------------------------------------------

    async def _keep_leases(self, unrecorded: set[int]) -> None:
        """Renew the lease every third of its length while any message is unrecorded, so a
        slow SMTP server never lets another daemon take over messages still in flight."""
        period = max(self.settings.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(period)
            if unrecorded:
                until = self.clock() + self.settings.lease
                await asyncio.to_thread(self._extend, list(unrecorded), until)

    def _extend(self, ids: list[int], until: datetime) -> None:
        with self.engine.begin() as conn:
            store.extend_lease(conn, ids, self.worker, until)

    def _publish_health(self) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            error = self.stalled.reply if self.stalled is not None else ""  # "": healthy again
            store.publish(conn, {"smtp.last_error": error}, now)
