"""More sending processes for one daemon: `--workers N` (NOTIFIER_WORKERS).

Python renders on one core at a time. With N workers, N-1 extra processes run beside the
main one, and each claims, renders, sends and records batches exactly as a second daemon on
the same database would, with its own database and SMTP connections. Only the main process
reads events and fires calendar rules. Claims are taken one process at a time (SQLite's
write lock, PostgreSQL's advisory lock), so one order's messages still reach SMTP in event
order, and a worker killed mid-batch loses nothing: its leases run out and are claimed again.

Workers are fresh interpreters (`python -c ...`, nothing half-made is inherited from the
main process's threads and connections), started as plain subprocesses rather than through
multiprocessing, whose spawn start method adds a resource-tracker process (~13 MB) per
daemon. Each worker reads its settings from its stdin, and later one byte: the main process
has read every event (`run --once`); end of file means the main process has gone, and the
worker stops. Before it loads the rules and templates it waits for the digest of the files the
main process checked (ACCEPTED): files with that digest it takes without checking them again
(a second full check costs each worker about a second of CPU at start); others it checks itself.
It writes its exit code and totals to its stdout as it ends. The main process
stops workers with SIGTERM, which they take like a daemon does: finish the messages on the
wire, hand the rest of the batch back, record, exit. Workers run in a session of their own,
so Ctrl-C reaches the main process only. A worker that dies is replaced at once; one that
keeps dying soon after it starts, after a growing delay (see _Slot).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from notifier import logs
from notifier.config.settings import Settings
from notifier.run.results import EXIT_OK, EXIT_SMTP_UNAVAILABLE, EXIT_WORKER_FAILED, CycleResult

if TYPE_CHECKING:
    from notifier.run.pipeline import Pipeline

# This module is imported before the pipeline's (heavy) modules, so that `run` can start its
# workers first and they come up while the main process loads: notifier.run.pipeline is
# imported where it is used. It never imports the daemon (the daemon imports it).

log = logging.getLogger("notifier.run.workers")

IDLE_PAUSE_ONCE = 0.1  # `run --once`: how long an idle worker waits before looking again
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


READING_DONE = b"R"  # main to worker: every event has been read (`run --once`)
ACCEPTED = b"A"  # main to worker: then 64 hex digits, the digest of the files it checked
WORKER = "from notifier.run.workers import worker_process; worker_process()"


@dataclass(slots=True)
class _Worker:
    number: int
    process: subprocess.Popen[bytes]  # stdin: settings, then READING_DONE; stdout: the outcome
    slot: _Slot  # handed on to the worker that replaces this one

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def tell(self, data: bytes) -> None:
        """Write to the worker's stdin; a worker that has ended is past telling."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def outcome(self) -> tuple[int, CycleResult] | None:
        """What an ended worker wrote to its stdout: (exit code, totals), or None."""
        assert self.process.stdout is not None
        try:
            code, counts = pickle.loads(self.process.stdout.read())
        except Exception:
            return None
        return code, CycleResult(**counts)

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


@dataclass(slots=True)
class Workers:
    """The extra sending processes of one daemon or `run --once`."""

    settings: Settings
    once: bool
    running: list[_Worker] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic  # for the restart delays; a test's own clock
    command: tuple[str, ...] = (sys.executable, "-c", WORKER)  # what a worker runs
    accepted: str = ""  # the digest of the files the main process has in force, once it has

    @classmethod
    def start(
        cls,
        settings: Settings,
        *,
        once: bool,
        clock: Callable[[], float] = time.monotonic,
        command: tuple[str, ...] | None = None,
    ) -> Workers:
        workers = cls(settings, once, clock=clock)
        if command is not None:
            workers.command = command
        for number in range(1, settings.workers):
            workers.running.append(workers._spawn(number, _Slot()))
        if workers.running:
            log.info("%d extra sending process(es) started", len(workers.running))
        return workers

    def _spawn(self, number: int, slot: _Slot) -> _Worker:
        process = subprocess.Popen(
            [*self.command, str(number), "once" if self.once else "daemon",
             str(logging.getLogger().level)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in a terminal is the main process's to handle
        )
        worker = _Worker(number, process, slot)
        settings = pickle.dumps(self.settings)
        worker.tell(len(settings).to_bytes(8, "big") + settings)
        if self.accepted:
            worker.tell(ACCEPTED + self.accepted.encode("ascii"))
        slot.start(self.clock())
        return worker

    def accept(self, digest: str) -> None:
        """The main process has these files in force: workers starting from now on hear it
        (a running worker has loaded its files already and ignores it)."""
        digest = digest or "-" * 64  # no digest: a word all the same, that no files match
        if digest != self.accepted:
            self.accepted = digest
            for worker in self.running:
                worker.tell(ACCEPTED + digest.encode("ascii"))

    def finished_reading(self) -> None:
        for worker in self.running:
            worker.tell(READING_DONE)

    def replace_dead(self) -> None:
        """Daemon: start a new worker in place of one that died (its leases run out and its
        messages are claimed again; nothing is lost): at once, or, if it keeps dying soon after
        it starts, once its slot's delay has passed."""
        now = self.clock()
        for index, worker in enumerate(self.running):
            slot = worker.slot
            if slot.next_start is None:  # running when we last looked
                if worker.alive:
                    continue
                delay = slot.died(now)
                if delay == 0:
                    log.error(
                        "worker %d stopped unexpectedly (exit %s); starting another",
                        worker.number,
                        worker.process.returncode,
                    )
                else:
                    log.error(
                        "worker %d stopped unexpectedly (exit %s) %d times in a row within a "
                        "minute of starting; next start in %g s",
                        worker.number,
                        worker.process.returncode,
                        slot.quick_deaths,
                        delay,
                    )
            if slot.due(now):
                worker.close()
                self.running[index] = self._spawn(worker.number, slot)

    def stop(self) -> None:
        """Ask every worker to finish its batch and exit (SIGTERM)."""
        for worker in self.running:
            if worker.alive:
                worker.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        for worker in self.running:
            if worker.alive:
                worker.process.kill()

    def reap(self) -> None:
        """After the main process failed to start: stop the workers (SIGTERM) and wait for
        them, without asking what they did."""
        self.stop()
        for worker in self.running:
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            worker.close()

    async def wait(self) -> tuple[int, CycleResult]:
        """Wait for every worker to end: the worst exit code and everything they did."""
        code, total = EXIT_OK, CycleResult()
        for worker in self.running:
            await asyncio.to_thread(worker.process.wait)
            outcome = worker.outcome()
            worker.close()
            if outcome is None:
                log.error("worker %d ended with exit code %s", worker.number, worker.process.returncode)
                code = max(code, EXIT_WORKER_FAILED)
                continue
            code = max(code, outcome[0])
            total.merge(outcome[1])
        return code, total


# --- inside a worker -------------------------------------------------------------------------


def worker_process() -> None:
    """A worker's life: `python -c WORKER <number> once|daemon <log level>`."""
    from notifier.run.pipeline import use_one_malloc_arena

    use_one_malloc_arena()
    number, mode, log_level = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    # The outcome goes to the real stdout; anything else that would print goes to stderr.
    results = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    logs.configure(log_level, worker=number)
    # Unbuffered reads from fd 0: a buffered reader could swallow READING_DONE with the settings.
    stdin = sys.stdin.fileno()
    settings = pickle.loads(_read_exactly(stdin, int.from_bytes(_read_exactly(stdin, 8), "big")))
    main = _MainProcess(stdin)
    code, total = asyncio.run(_send_until_done(settings, mode == "once", main))
    results.write(pickle.dumps((code, asdict(total))))
    results.close()


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise SystemExit("the main process went away before the worker started")
        data += chunk
    return data


class _MainProcess:
    """What the worker hears from the main process on its stdin."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.reading_done = False
        self.gone = False
        self.accepted = ""

    def wait_accepted(self) -> None:
        """Wait for the digest of the files the main process checked (or for its end)."""
        while not self.gone and not self.accepted:
            byte = os.read(self._fd, 1)
            if not byte:
                self.gone = True
            elif byte == READING_DONE:
                self.reading_done = True
            elif byte == ACCEPTED:
                self.accepted = _read_exactly(self._fd, 64).decode("ascii")

    def listen(self) -> None:
        """Take in what has arrived, without waiting."""
        while not self.gone and select.select([self._fd], [], [], 0)[0]:
            byte = os.read(self._fd, 1)
            if not byte:
                self.gone = True
            elif byte == READING_DONE:
                self.reading_done = True


async def _send_until_done(settings: Settings, once: bool, main: _MainProcess) -> tuple[int, CycleResult]:
    pipeline = await _pipeline(settings, once, main)
    if pipeline is None:
        return EXIT_OK, CycleResult()
    async with pipeline:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, pipeline.stopping.set)
        total = CycleResult()
        pause = IDLE_PAUSE_ONCE if once else settings.poll_interval.total_seconds()
        while not pipeline.stopping.is_set():
            main.listen()
            if main.gone:
                log.warning("the main process is gone; stopping")
                break
            # Read before the cycle: if the main process had read everything by then, a cycle
            # that finds nothing to claim means there is nothing left for this worker.
            all_read = main.reading_done
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


async def _pipeline(settings: Settings, once: bool, main: _MainProcess) -> Pipeline | None:
    """This worker's pipeline. A worker started while the rules or templates on disk are
    broken (one that replaces a dead worker after a refused edit; the main process keeps the
    last good ones) waits for a good edit instead of dying and being started again and
    again. None if the main process went away meanwhile."""
    from notifier.errors import EXIT_INVALID, RulesError
    from notifier.run.pipeline import Pipeline

    main.wait_accepted()
    while True:
        if main.gone:
            return None
        try:
            return Pipeline(settings, reads_events=False, accepted=main.accepted)
        except RulesError as exc:
            if once:  # the main process, which checked the same files, says what is wrong
                raise SystemExit(EXIT_INVALID) from exc
            log.error(
                "cannot start: the rules or templates are not valid (%s); trying again in %s",
                "; ".join(str(problem) for problem in exc.problems),
                settings.poll_interval,
            )
        await asyncio.sleep(settings.poll_interval.total_seconds())
        main.listen()


async def _pause(pipeline: Pipeline, seconds: float) -> None:
    """Wait `seconds`, or less if the worker is told to stop."""
    try:
        await asyncio.wait_for(pipeline.stopping.wait(), timeout=seconds)
    except TimeoutError:
        pass
