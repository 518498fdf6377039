"""The daemon: APScheduler runs one cycle every poll interval — reload, intake, dispatch.

One job, not three, so intake and dispatch never race each other and an event can go out
in the same cycle that reads it. SIGTERM/SIGINT stop claiming new work; the batch in flight
finishes its sends and records them; then the scheduler is shut down and the process exits 0.
A second signal exits at once: every write is transactional, and a claimed notification whose
lease runs out is picked up again by the next daemon.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine

from notifier.config.live import LiveConfig
from notifier.config.settings import Settings
from notifier.core.timing import utcnow
from notifier.db import store
from notifier.db.engine import make_engine
from notifier.db.wakeup import listen
from notifier.run import metrics
from notifier.run.dispatch import BatchResult, Dispatcher
from notifier.run.intake import IntakeResult, intake
from notifier.run.schedules import fire_due
from notifier.smtp.pool import Sender
from notifier.smtp.url import SmtpConfig

if TYPE_CHECKING:
    from notifier.run.workers import Workers

log = logging.getLogger("notifier.run.daemon")

EXIT_OK = 0
EXIT_SMTP_UNAVAILABLE = 75  # EX_TEMPFAIL: `run --once` could not reach SMTP; nothing was lost


def worker_name() -> str:
    """host:pid:random — unique per process, readable in `status` and lease owners."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


@dataclass(slots=True)
class CycleResult:
    events: int = 0
    planned: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retrying: int = 0
    read_all: bool = False  # every event waiting when the cycle began has been evaluated

    def add(self, batch: BatchResult) -> None:
        self.sent += batch.sent
        self.failed += batch.failed
        self.skipped += batch.skipped
        self.retrying += batch.retrying

    def merge(self, other: CycleResult) -> None:
        for name in ("events", "planned", "sent", "failed", "skipped", "retrying"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def handled(self) -> int:
        """Messages whose turn came in this cycle, whatever became of them."""
        return self.sent + self.failed + self.skipped + self.retrying


class Pipeline:
    """Everything one daemon (or one `run --once`, or the demo) needs to do its work."""

    def __init__(
        self,
        settings: Settings,
        *,
        config: LiveConfig | None = None,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = utcnow,
        reads_events: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.reads_events = reads_events  # False in the extra sending processes (notifier.run.workers)
        self.worker = worker_name()
        self._owns_engine = engine is None
        self.engine = engine or make_engine(settings.database_url.reveal())
        self.config = config or LiveConfig(settings.rules, settings.templates)
        smtp = SmtpConfig.from_url(
            settings.smtp_url.reveal(),
            connections=settings.smtp_connections,
            timeout=settings.smtp_timeout.total_seconds(),
        )
        self.sender = Sender(smtp)
        self.dispatcher = Dispatcher(
            engine=self.engine,
            config=self.config,
            sender=self.sender,
            settings=settings,
            worker=self.worker,
            clock=clock,
            claim_limit=_claim_limit(settings, reads_events),
        )
        self.stopping = asyncio.Event()

    async def __aenter__(self) -> Pipeline:
        await self.sender.__aenter__()
        if self.reads_events:
            self.publish_config()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sender.__aexit__(*exc)
        if self._owns_engine:
            self.engine.dispose()

    def publish_config(self) -> None:
        rules = self.config.rules
        with self.engine.begin() as conn:
            store.publish(
                conn,
                {
                    "rules.path": str(self.config.rules_path),
                    "rules.digest": rules.digest,
                    "rules.count": str(len(rules.rules)),
                    "templates.path": str(self.config.templates),
                    "reload.error": self.config.last_error or "",
                    "reload.at": self.clock().isoformat(),
                },
                self.clock(),
            )

    async def cycle(self) -> CycleResult:
        """Reload if edited, evaluate new events, send everything due, until idle or stopping."""
        result = CycleResult()
        reloaded = self.config.reload_if_changed()
        if reloaded.changed:
            metrics.reloaded(reloaded.error is None)
            if self.reads_events:
                await asyncio.to_thread(self.publish_config)
        if self.reads_events:
            result.planned += await asyncio.to_thread(
                fire_due, self.engine, self.config.rules, clock=self.clock
            )
        while not self.stopping.is_set():
            # Read a batch of events, then send a batch: a long backlog starts going out at once.
            taken = await self._read_batch()
            result.events += taken.events
            result.planned += taken.planned
            result.read_all = not taken.more
            batch = await self.dispatcher.dispatch_once()
            result.add(batch)
            if batch.released or (not taken.more and batch.claimed == 0):
                break
        return result

    async def _read_batch(self) -> IntakeResult:
        if not self.reads_events:
            return IntakeResult(0, 0)
        return await asyncio.to_thread(
            intake,
            self.engine,
            self.config.rules,
            clock=self.clock,
            batch_size=self.settings.batch_size,
            gap_timeout=self.settings.gap_timeout,
            # A batch for every sending process (this one and its workers) per turn.
            max_batches=self.settings.workers,
        )


def _claim_limit(settings: Settings, reads_events: bool) -> int:
    """How many messages a process claims at a time. With workers, the main process also
    reads and plans every event (about a third of the work per email): it claims a batch of
    batch_size / (workers + 1), so that it does not hold the workers back. With 2 processes
    and equal batches the main process was the busier one by half, and the worker waited."""
    if not reads_events or settings.workers <= 1:
        return settings.batch_size
    return max(1, settings.batch_size // (settings.workers + 1))


M_ARENA_MAX = -8  # glibc's mallopt() parameter


def use_one_malloc_arena() -> None:
    """Ask glibc's malloc for one arena in this process, unless MALLOC_ARENA_MAX says otherwise.

    By default glibc gives a thread that allocates while another holds the arena's lock an
    arena of its own, up to 8 per core, and each keeps the memory it once held. notifier's
    threads (the event loop, database and SMTP work) take turns under Python's GIL anyway;
    with one arena a process peaks about 10 MB lower at the same speed. Call it before
    threads start. Other C libraries than glibc have no mallopt, and nothing changes.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass


async def _start(
    settings: Settings, workers: Workers | None, *, once: bool, **kwargs: object
) -> tuple[Workers, Pipeline]:
    """The workers (started here unless the command line already has) and this process's
    pipeline; if the pipeline cannot start (bad rules, no database), the workers stop."""
    from notifier.run.workers import Workers

    workers = workers or Workers.start(settings, once=once)
    try:
        return workers, Pipeline(settings, **kwargs)  # type: ignore[arg-type]
    except BaseException:
        await asyncio.to_thread(workers.reap)
        raise


async def run_once(
    settings: Settings, workers: Workers | None = None, **kwargs: object
) -> tuple[int, CycleResult]:
    """`notifier run --once`: everything due now, then exit (with its workers, if any: the
    command line starts them first, so that they load while this process does)."""
    workers, pipeline = await _start(settings, workers, once=True, **kwargs)
    async with pipeline:
        try:
            code, total = await _run_once(pipeline, workers)
        except BaseException:
            workers.stop()
            raise
        finally:
            workers.finished_reading()
        helped_code, helped = await workers.wait()
        total.merge(helped)
        return max(code, helped_code), total


async def _run_once(pipeline: Pipeline, workers: Workers) -> tuple[int, CycleResult]:
    total = CycleResult()
    while True:
        result = await pipeline.cycle()
        total.merge(result)
        if result.read_all:
            workers.finished_reading()
        if pipeline.dispatcher.stalled is not None:
            log.error(
                "SMTP server unusable: %s; %s",
                pipeline.dispatcher.stalled.reply,
                "the messages stay queued for the next run",
            )
            return EXIT_SMTP_UNAVAILABLE, total
        if result.events == 0 and result.handled == 0:
            return EXIT_OK, total


async def run_forever(settings: Settings, workers: Workers | None = None) -> int:
    """`notifier run`: the daemon, until SIGTERM or SIGINT."""
    workers, pipeline = await _start(settings, workers, once=False)
    async with pipeline:
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal(signum: int) -> None:
            nonlocal signals
            signals += 1
            if signals > 1:
                log.warning(
                    "second %s: exiting now; claimed messages go back to the queue when their lease runs out",
                    signal.Signals(signum).name,
                )
                workers.kill()
                os._exit(128 + signum)
            log.info("%s: finishing the messages in flight, then stopping", signal.Signals(signum).name)
            pipeline.stopping.set()
            workers.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        running: set[asyncio.Task[CycleResult]] = set()
        busy = asyncio.Lock()
        again = asyncio.Event()

        async def tick() -> None:
            """One cycle; if woken while one runs, run again right after it."""
            if pipeline.stopping.is_set():
                return
            if busy.locked():
                again.set()
                return
            workers.replace_dead()
            async with busy:
                while not pipeline.stopping.is_set():
                    again.clear()
                    task = asyncio.ensure_future(pipeline.cycle())
                    running.add(task)
                    try:
                        await task
                    except Exception:
                        log.exception("cycle failed; trying again in %s", settings.poll_interval)
                    finally:
                        running.discard(task)
                    if not again.is_set():
                        break

        def wake() -> None:
            if busy.locked():
                again.set()
            else:
                scheduler.add_job(tick, id="wake", replace_existing=True, misfire_grace_time=None)

        scheduler = AsyncIOScheduler(event_loop=loop)
        interval = settings.poll_interval.total_seconds()
        scheduler.add_job(
            tick,
            "interval",
            seconds=interval,
            id="cycle",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(interval * 5)),
            next_run_time=datetime.now(),
        )
        listener = None
        if pipeline.engine.dialect.name == "postgresql":
            listener = asyncio.ensure_future(listen(pipeline.engine, wake, pipeline.stopping))
        scheduler.start()
        log.info(
            "notifier running as %s: rules %s (%s), polling every %s",
            pipeline.worker,
            settings.rules,
            pipeline.config.rules.digest,
            settings.poll_interval,
        )
        await pipeline.stopping.wait()
        scheduler.pause()
        # APScheduler's shutdown cancels coroutine jobs still running: wait for ours first.
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        scheduler.shutdown(wait=False)
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await workers.wait()
        log.info("stopped cleanly")
        return EXIT_OK
