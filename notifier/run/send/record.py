"""Record: what became of each message, stored within moments of the server's reply.

A recorder runs beside the sending. Every settled message is queued to it, and it writes what
is pending once the first of it has waited GROUP_WAIT (a tenth of a second), or GROUP_MAX are
pending, or the batch is done: at high throughput a group is a hundred messages or more and one
transaction, at low throughput each message is recorded within a tenth of a second of the
server's reply. So a SIGKILL loses the record of at most the messages on the wire and those
answered in the last tenth of a second: the only window for a duplicate. A write that fails on a
lost database connection is tried again (RECORD_TRIES, about a minute): an unrecorded message
would be sent again when its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from notifier.core.gates import Decided
from notifier.core.retry import Settled, Verdict
from notifier.core.values import State
from notifier.db import store
from notifier.run import metrics
from notifier.run.results import BatchResult

log = logging.getLogger("notifier.run.send")

RECORD_TRIES = 6  # about a minute of retries before a group's outcomes are given up
GROUP_WAIT = 0.1  # seconds: the longest a settled message waits for its group to be written
GROUP_MAX = 250  # a group this large is written at once


def decided_verdict(item: Decided) -> Settled:
    """A gate's (or a failed render's) decision, as the store takes it."""
    verdict = Verdict(state=item.state, reason=item.reason, detail=item.detail, next_attempt_at=item.until)
    return Settled(claimed=item.claimed, verdict=verdict)


class Recorder:
    """Group commit of settled messages for one batch."""

    def __init__(
        self,
        engine: Engine,
        *,
        worker: str,
        clock: Callable[[], datetime],
        written: Callable[[list[Settled]], None] = lambda group: None,
    ) -> None:
        self.engine = engine
        self.worker = worker
        self.clock = clock
        self.written = written  # told of each group once it is stored
        self.summary = BatchResult()
        self._pending: list[Settled] = []
        self._first_at = 0.0  # when the oldest pending message was settled (time.monotonic)
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Future[None] | None = None
        self._conn: sa.Connection | None = None

    def start(self) -> Recorder:
        self._task = asyncio.ensure_future(self._run())
        return self

    def put(self, items: Iterable[Settled]) -> None:
        if not self._pending:
            self._first_at = time.monotonic()
            self._wake.set()  # the recorder starts the group's clock
        self._pending.extend(items)
        if len(self._pending) >= GROUP_MAX:
            self._wake.set()

    def _due(self) -> bool:
        """Write now: something is pending and the batch is done, the group is full, or its
        first message has waited GROUP_WAIT."""
        if not self._pending:
            return False
        full = len(self._pending) >= GROUP_MAX
        return self._closing or full or time.monotonic() >= self._first_at + GROUP_WAIT

    async def close(self) -> BatchResult:
        """Write what is still pending, then stop. Raises if a write was given up."""
        self._closing = True
        self._wake.set()
        assert self._task is not None
        await self._task
        return self.summary

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._drop_connection()

    async def _run(self) -> None:
        while True:
            left = self._first_at + GROUP_WAIT - time.monotonic() if self._pending else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=None if left is None else max(left, 0.0))
            except TimeoutError:
                pass  # the group's first message has waited long enough
            self._wake.clear()
            while self._due():
                group, self._pending = self._pending, []
                await self._write_surely(group)
                self._count(group)
                self.written(group)
            if self._closing:
                await asyncio.to_thread(self._drop_connection)
                return

    async def _write_surely(self, group: list[Settled]) -> None:
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                await asyncio.to_thread(self._write, group)
                return
            except sa.exc.OperationalError as exc:
                if attempt == RECORD_TRIES:
                    raise
                log.warning(
                    "recording %d outcome(s) failed (%s); trying again",
                    len(group),
                    str(exc).splitlines()[0],
                )
                await asyncio.sleep(min(2.0**attempt, 30.0))

    def _write(self, group: list[Settled]) -> None:
        now = self.clock()
        # One connection for the batch's groups (one write at a time): a group is often a
        # message or two, and a pool checkout (and its rollback on return) each time would
        # cost more than the write.
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
        conn = self._conn
        try:
            with conn.begin():
                store.record_settled(conn, group, worker=self.worker, now=now)
        except BaseException:
            self._drop_connection()
            raise
        metrics.recorded(group, now=now)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already gone with the database; nothing to hand back
                pass
            self._conn = None

    def _count(self, group: list[Settled]) -> None:
        summary = self.summary
        for item in group:
            state, verdict = item.verdict.state, item.verdict
            summary.sent += state is State.SENT
            summary.failed += state is State.FAILED
            summary.skipped += state is State.SKIPPED
            summary.retrying += state is State.RETRYING
            summary.released += verdict.released
            summary.deferred += state is State.QUEUED and not verdict.released
            _log(item)


def _log(item: Settled) -> None:
    claimed, verdict, reply = item.claimed, item.verdict, item.reply
    if verdict.released:
        return
    if reply is None:
        verb = {State.SKIPPED: "skipped", State.FAILED: "failed"}.get(verdict.state, "deferred")
        log.info(
            "%s %s #%s to %s: %s (%s)",
            verb, claimed.rule, claimed.id, claimed.recipient, verdict.reason, verdict.detail,
        )
    elif verdict.state is State.SENT:
        log.info(
            "sent %s #%s to %s (%s): %s %s",
            claimed.rule, claimed.id, claimed.recipient, claimed.thread, reply.code, reply.reply[:80],
        )
    elif verdict.state is State.RETRYING:
        log.warning(
            "retrying %s #%s to %s at %s: %s",
            claimed.rule, claimed.id, claimed.recipient, verdict.next_attempt_at, verdict.detail,
        )
    else:
        log.warning(
            "failed %s #%s to %s: %s (%s)", claimed.rule, claimed.id, claimed.recipient, verdict.detail,
            verdict.reason,
        )
