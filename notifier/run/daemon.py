"""The daemon: APScheduler runs one cycle every poll interval — reload, intake, dispatch.

One job, not three, so intake and dispatch never race each other and an event can go out
in the same cycle that reads it. SIGTERM/SIGINT stop claiming new work and start no new SMTP
transaction: the messages already on the wire are finished and recorded, the rest of the batch
goes back to the queue at once; then the scheduler is shut down and the process exits 0.
A second signal exits at once: every write is transactional, and a claimed notification whose
lease runs out is picked up again by the next daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from notifier.config.settings import Settings
from notifier.db.wakeup import listen
from notifier.run.pipeline import Pipeline, use_one_malloc_arena, worker_name
from notifier.run.results import EXIT_OK, EXIT_SMTP_UNAVAILABLE, CycleResult
from notifier.run.workers import Workers

__all__ = [
    "EXIT_OK", "EXIT_SMTP_UNAVAILABLE", "CycleResult", "Pipeline", "run_forever", "run_once",
    "use_one_malloc_arena", "worker_name",
]

log = logging.getLogger("notifier.run.daemon")


async def _start(
    settings: Settings, workers: Workers | None, *, once: bool, **kwargs: object
) -> tuple[Workers, Pipeline]:
    """The workers (started here unless the command line already has) and this process's
    pipeline; if the pipeline cannot start (bad rules, no database), the workers stop."""
    workers = workers or Workers.start(settings, once=once)
    try:
        pipeline = Pipeline(settings, **kwargs)  # type: ignore[arg-type]
    except BaseException:
        await asyncio.to_thread(workers.reap)
        raise
    workers.accept(pipeline.config.accepted)  # they wait for it to load the same files
    return workers, pipeline


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
                    workers.accept(pipeline.config.accepted)  # for workers started after a reload
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
