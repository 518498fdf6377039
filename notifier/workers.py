"""More sending processes for one daemon: `--workers N` (NOTIFIER_WORKERS).

Python renders on one core at a time. With N workers, N-1 extra processes run beside the
main one, and each claims, renders, sends and records batches exactly as a second daemon on
the same database would, with its own database and SMTP connections. Only the main process
reads events and fires calendar rules. Claims are taken one process at a time (SQLite's
write lock, PostgreSQL's advisory lock), so one order's messages still reach SMTP in event
order, and a worker killed mid-batch loses nothing: its leases run out and are claimed again.

Workers start with `spawn` (a fresh interpreter: nothing half-made is inherited from the
main process's threads and connections). The main process stops them with SIGTERM, which
they take like a daemon does: finish the batch in flight, record it, exit. Ctrl-C reaches
the main process only; a worker whose main process has gone away stops by itself.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent

from notifier import logs
from notifier.daemon import EXIT_OK, EXIT_SMTP_UNAVAILABLE, CycleResult, Pipeline
from notifier.errors import RulesError
from notifier.settings import Settings

log = logging.getLogger("notifier.workers")

IDLE_PAUSE_ONCE = 0.1  # `run --once`: how long an idle worker waits before looking again
EXIT_WORKER_FAILED = 70  # EX_SOFTWARE: a worker ended without saying how it went


@dataclass(slots=True)
class _Worker:
    number: int
    process: BaseProcess
    results: Connection  # the worker sends (exit code, totals) here as it ends


@dataclass(slots=True)
class Workers:
    """The extra sending processes of one daemon or `run --once`."""

    settings: Settings
    once: bool
    # `run --once`: the main process has evaluated every event. None without workers: a
    # process-shared Event would start multiprocessing's resource tracker (a process of
    # its own, ~13 MB) for nothing.
    reading_done: ProcessEvent | None = None
    running: list[_Worker] = field(default_factory=list)

    @classmethod
    def start(cls, settings: Settings, *, once: bool) -> Workers:
        if settings.workers <= 1:
            return cls(settings, once)
        context = multiprocessing.get_context("spawn")
        workers = cls(settings, once, context.Event())
        for number in range(1, settings.workers):
            workers.running.append(workers._spawn(number))
        if workers.running:
            log.info("%d extra sending process(es) started", len(workers.running))
        return workers

    def _spawn(self, number: int) -> _Worker:
        assert self.reading_done is not None
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker_main,
            args=(self.settings, number, self.once, self.reading_done, send, os.getpid(),
                  logging.getLogger().level),
            name=f"notifier-worker-{number}",
        )
        process.start()
        send.close()
        return _Worker(number, process, receive)

    def finished_reading(self) -> None:
        if self.reading_done is not None:
            self.reading_done.set()

    def replace_dead(self) -> None:
        """Daemon: start a new worker in place of one that died (its leases run out and its
        messages are claimed again; nothing is lost)."""
        for index, worker in enumerate(self.running):
            if not worker.process.is_alive():
                log.error(
                    "worker %d stopped unexpectedly (exit %s); starting another",
                    worker.number,
                    worker.process.exitcode,
                )
                self.running[index] = self._spawn(worker.number)

    def stop(self) -> None:
        """Ask every worker to finish its batch and exit (SIGTERM)."""
        for worker in self.running:
            if worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        for worker in self.running:
            if worker.process.is_alive():
                worker.process.kill()

    async def wait(self) -> tuple[int, CycleResult]:
        """Wait for every worker to end: the worst exit code and everything they did."""
        code, total = EXIT_OK, CycleResult()
        for worker in self.running:
            await asyncio.to_thread(worker.process.join)
            outcome = _read_outcome(worker)
            if outcome is None:
                log.error("worker %d ended with exit code %s", worker.number, worker.process.exitcode)
                code = max(code, EXIT_WORKER_FAILED)
                continue
            code = max(code, outcome[0])
            total.merge(outcome[1])
        return code, total


def _read_outcome(worker: _Worker) -> tuple[int, CycleResult] | None:
    try:
        if not worker.results.poll():
            return None
        code, counts = worker.results.recv()
    except (EOFError, OSError):
        return None
    return code, CycleResult(**counts)


# --- inside a worker -------------------------------------------------------------------------


def _worker_main(
    settings: Settings,
    number: int,
    once: bool,
    reading_done: ProcessEvent,
    results: Connection,
    parent: int,
    log_level: int,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    logs.configure(log_level, worker=number)
    code, total = asyncio.run(_send_until_done(settings, once, reading_done, parent))
    results.send((code, asdict(total)))
    results.close()


async def _send_until_done(
    settings: Settings, once: bool, reading_done: ProcessEvent, parent: int
) -> tuple[int, CycleResult]:
    pipeline = await _pipeline(settings, once, parent)
    if pipeline is None:
        return EXIT_OK, CycleResult()
    async with pipeline:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, pipeline.stopping.set)
        total = CycleResult()
        pause = IDLE_PAUSE_ONCE if once else settings.poll_interval.total_seconds()
        while not pipeline.stopping.is_set():
            if os.getppid() != parent:
                log.warning("the main process is gone; stopping")
                break
            # Read before the cycle: if the main process had read everything by then, a cycle
            # that finds nothing to claim means there is nothing left for this worker.
            all_read = reading_done.is_set()
            try:
                result = await pipeline.cycle()
            except Exception:
                if once:
                    raise
                # As the main process does: a lost database is waited out, not a reason to die.
                log.exception("cycle failed; trying again in %s", settings.poll_interval)
                await _pause(pipeline, pause)
                continue
            total.merge(result)
            if once and pipeline.dispatcher.stalled is not None:
                return EXIT_SMTP_UNAVAILABLE, total
            if result.handled:
                continue
            if once and all_read:
                break
            await _pause(pipeline, pause)
        return EXIT_OK, total


async def _pipeline(settings: Settings, once: bool, parent: int) -> Pipeline | None:
    """This worker's pipeline. A worker started while the rules or templates on disk are
    broken (one that replaces a dead worker after a refused edit; the main process keeps the
    last good ones) waits for a good edit instead of dying and being started again and
    again. None if the main process went away meanwhile."""
    while True:
        try:
            return Pipeline(settings, reads_events=False)
        except RulesError as exc:
            if once:
                raise
            log.error(
                "cannot start: the rules or templates are not valid (%s); trying again in %s",
                "; ".join(str(problem) for problem in exc.problems),
                settings.poll_interval,
            )
        if os.getppid() != parent:
            return None
        await asyncio.sleep(settings.poll_interval.total_seconds())


async def _pause(pipeline: Pipeline, seconds: float) -> None:
    """Wait `seconds`, or less if the worker is told to stop."""
    try:
        await asyncio.wait_for(pipeline.stopping.wait(), timeout=seconds)
    except TimeoutError:
        pass
