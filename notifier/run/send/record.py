"""Record: what became of each message, stored within moments of the server's reply.

A recorder runs beside the sending. Every settled message is queued to it, and it writes
whatever is pending as soon as its previous write has finished (no timer): at high
throughput the groups are large and cheap, at low throughput each message is recorded at
once. So a SIGKILL loses at most the messages on the wire and one group being written. A
write that fails on a lost database connection is tried again (RECORD_TRIES, about a
minute): an unrecorded message would be sent again when its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
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
        on_wire: Callable[[], int] = lambda: 0,
    ) -> None:
        self.engine = engine
        self.worker = worker
        self.clock = clock
        self.written = written  # told of each group once it is stored
        self.on_wire = on_wire  # how many messages the server is still answering
        self.summary = BatchResult()
        self._pending: list[Settled] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Future[None] | None = None
        self._conn: sa.Connection | None = None

    def start(self) -> Recorder:
        self._task = asyncio.ensure_future(self._run())
        return self

    def put(self, items: Iterable[Settled]) -> None:
        self._pending.extend(items)
        if self._due():  # else the recorder would wake only to find the group still short
            self._wake.set()

    def _due(self) -> bool:
        """Write now: there is something to write, and a group at least as large as the
        messages still on the wire (whose replies are moments away), or the batch is done.
        One message at a time is written at once; many at a time, in groups."""
        return bool(self._pending) and (self._closing or len(self._pending) >= self.on_wire())

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
            await self._wake.wait()
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
