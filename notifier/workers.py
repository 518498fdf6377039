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
the main process only; a worker whose main process has gone away stops by itself. A worker
that dies is replaced at once; one that keeps dying soon after it starts, after a growing
delay (see _Slot).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
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
QUICK_DEATH = 60.0  # seconds: a worker that dies sooner after its start may die at every start
RESTART_DELAY = 5.0  # seconds before the next start after the second quick death in a row...
RESTART_DELAY_MAX = 300.0  # ...doubled after each further one, up to this


@dataclass(slots=True)
class _Slot:
    """When the next worker of one number may start. A worker that dies at every start (a
    bad setting, a missing library, a crash in C code) would otherwise be started again at
    every poll interval, forever, with an error logged each time: a crash loop that burns CPU
    and floods the log. So the first death is replaced at once (a kill or the OOM killer is no
    loop), then each quick death in a row waits longer: 5 s, 10 s, 20 s ... up to 5 min. The
    times are clock readings (time.monotonic: wall-clock changes do not move them)."""

    started: float = 0.0  # when its current worker started
    quick_deaths: int = 0  # deaths in a row, each within QUICK_DEATH of its start
    next_start: float | None = None  # None while its worker runs, as far as we know

    def start(self, now: float) -> None:
        self.started, self.next_start = now, None

    def died(self, now: float) -> float:
        """Count the death of its worker, seen at `now`; the seconds until the next start.
        (Seen, not happened: deaths are noticed once per poll interval.)"""
        if now - self.started >= QUICK_DEATH:
            self.quick_deaths = 0  # it ran for a while: whatever ended it is no crash loop
        else:
            self.quick_deaths += 1
        delay = 0.0
        if self.quick_deaths > 1:
            # The exponent bounded: a loop can go on for days, and 2.0 ** 1024 overflows.
            delay = min(RESTART_DELAY * 2.0 ** min(self.quick_deaths - 2, 16), RESTART_DELAY_MAX)
        self.next_start = now + delay
        return delay

    def due(self, now: float) -> bool:
        """Its worker has died and the next may start now."""
        return self.next_start is not None and now >= self.next_start


@dataclass(slots=True)
class _Worker:
    number: int
    process: BaseProcess
    results: Connection  # the worker sends (exit code, totals) here as it ends
    slot: _Slot  # handed on to the worker that replaces this one


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
    clock: Callable[[], float] = time.monotonic  # for the restart delays; a test's own clock

    @classmethod
    def start(
        cls, settings: Settings, *, once: bool, clock: Callable[[], float] = time.monotonic
    ) -> Workers:
        if settings.workers <= 1:
            return cls(settings, once)
        context = multiprocessing.get_context("spawn")
        workers = cls(settings, once, context.Event(), clock=clock)
        for number in range(1, settings.workers):
            workers.running.append(workers._spawn(number, _Slot()))
        if workers.running:
            log.info("%d extra sending process(es) started", len(workers.running))
        return workers

    def _spawn(self, number: int, slot: _Slot) -> _Worker:
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
        slot.start(self.clock())
        return _Worker(number, process, receive, slot)

    def finished_reading(self) -> None:
        if self.reading_done is not None:
            self.reading_done.set()

    def replace_dead(self) -> None:
        """Daemon: start a new worker in place of one that died (its leases run out and its
        messages are claimed again; nothing is lost): at once, or, if it keeps dying soon after
        it starts, once its slot's delay has passed."""
        now = self.clock()
        for index, worker in enumerate(self.running):
            slot = worker.slot
            if slot.next_start is None:  # running when we last looked
                if worker.process.is_alive():
                    continue
                delay = slot.died(now)
                if delay == 0:
                    log.error(
                        "worker %d stopped unexpectedly (exit %s); starting another",
                        worker.number,
                        worker.process.exitcode,
                    )
                else:
                    log.error(
                        "worker %d stopped unexpectedly (exit %s) %d times in a row within a "
                        "minute of starting; next start in %g s",
                        worker.number,
                        worker.process.exitcode,
                        slot.quick_deaths,
                        delay,
                    )
            if slot.due(now):
                self.running[index] = self._spawn(worker.number, slot)

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
