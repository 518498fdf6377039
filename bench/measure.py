"""How the benchmarks time a program: a child process, its own rusage, and the sink's count.

`run_child` starts a command, waits for it with os.wait4 (so CPU time is that child's and
its workers', not every child's this process ever had), samples the peak RSS of the child
and its descendants from /proc and sums them (with `--workers` notifier is several
processes), stops it with SIGTERM
at a time bound, and returns the wall time. `notifier_once` is notifier end to end: `notifier
run --once` over a database of `order.placed` events, timed from process start to exit, and
checked against the sink. `backlog` does the same over a million-event database, bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sink import Sink

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
NOTIFIER = Path(sys.executable).parent / "notifier"


@dataclass
class Figure:
    """One row of the table."""

    name: str
    rate: float | None = None  # emails per second
    cpu_ms: float | None = None  # CPU (user + system) milliseconds per email
    rss_mb: float | None = None  # peak resident set of the process measured
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Child:
    returncode: int
    wall: float
    cpu: float  # user + system seconds, of the child and every process it waited for
    rss_mb: float  # the sum of the peak resident sets of the child and its descendants
    timed_out: bool
    stdout: str


class TreePeak:
    """Peak resident set of a process and all its descendants, summed: `--workers` runs
    several processes, and wait4 only gives the largest one's peak."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peaks: dict[int, int] = {}  # pid -> VmHWM in kB

    def sample(self) -> None:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        family, grew = {self.root}, True
        while grew:
            more = {pid for pid, parent in parents.items() if parent in family} - family
            family |= more
            grew = bool(more)
        for pid in family:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peaks[pid] = max(self.peaks.get(pid, 0), int(line.split()[1]))

    @property
    def mb(self) -> float:
        return sum(self.peaks.values()) / 1024


def run_child(
    command: list[str], *, timeout: float, env: dict[str, str] | None = None, log: str = "child",
    watch: Callable[[float], None] | None = None,
) -> Child:
    """Run `command` to its end (or SIGTERM it after `timeout` s), with its own rusage."""
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{log}.out", "w+") as out, open(OUT / f"{log}.err", "w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        tree = TreePeak(process.pid)
        timed_out, stop_at, last_watch, last_sample = False, started + timeout, started, started
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            now = time.perf_counter()
            if pid:
                break
            if now - last_sample >= 0.25:
                tree.sample()
                last_sample = now
            if watch is not None and now - last_watch >= 1.0:
                watch(now - started)
                last_watch = now
            if now > stop_at:
                process.send_signal(signal.SIGTERM if not timed_out else signal.SIGKILL)
                timed_out, stop_at = True, now + 30
            time.sleep(0.005)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return Child(
            returncode=process.returncode, wall=now - started, cpu=usage.ru_utime + usage.ru_stime,
            # Not usage.ru_maxrss: Linux carries the high-water mark of the image exec replaced
            # (this benchmark process, forked) into the child's, so a bench process that had
            # just built a million-row database would be reported as the child's peak.
            rss_mb=tree.mb or usage.ru_maxrss / 1024, timed_out=timed_out, stdout=out.read(),
        )


def reap(process: subprocess.Popen[bytes], timeout: float) -> tuple[float, float]:
    """Wait for a signalled child (SIGKILL after `timeout` s): its CPU seconds and peak RSS MB."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
        if time.monotonic() > deadline:
            process.kill()
        time.sleep(0.02)


def notifier_env(**settings: str) -> dict[str, str]:
    """The environment without any NOTIFIER_* of the caller's, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update({f"NOTIFIER_{k.upper()}": v for k, v in settings.items()})
    return env


def notifier_command(url: str, port: int, *args: str) -> list[str]:
    return [str(NOTIFIER), "--database-url", url, "--smtp-url", f"smtp://127.0.0.1:{port}",
            "--rules", str(ROOT / "rules.yaml"), "--templates", str(ROOT / "templates"), "-q", *args]


def notifier_once(name: str, url: str, n: int, sink: Sink, env: dict[str, str], timeout: float) -> Figure:
    """`notifier run --once` until it exits; the sink must then hold n messages."""
    sink.reset()
    child = run_child(notifier_command(url, sink.port, "run", "--once"), timeout=timeout, env=env,
                      log=name.replace(" ", "_"))
    got = sink.count()
    note = "evaluate + send, process start to exit"
    if child.returncode != 0 or got != n:
        note = f"INCOMPLETE: exit {child.returncode}, {got} of {n} accepted; " + note
    return Figure(name, rate=got / child.wall, cpu_ms=1000 * child.cpu / max(got, 1), rss_mb=child.rss_mb,
                  note=note, extra={"n": n, "accepted": got, "seconds": child.wall, "cpu_seconds": child.cpu,
                                    "exit": child.returncode})


def backlog(path: Path, n: int, sink: Sink, env: dict[str, str], bound: float,
            name: str = "backlog drain") -> Figure:
    """Drain a database of n order.placed events with `run --once`, for at most `bound` s."""
    sink.reset()
    progress: list[tuple[float, int]] = []
    first: list[float] = []

    def watch(elapsed: float) -> None:
        count = sink.count()
        progress.append((round(elapsed, 1), count))
        if count and not first:
            first.append(elapsed)

    child = run_child(notifier_command(f"sqlite:///{path}", sink.port, "run", "--once"), timeout=bound,
                      env=env, log="backlog", watch=watch)
    got = sink.count()
    sending = child.wall - (first[0] if first else child.wall)
    note = (f"{got:,} of {n:,} sent in {child.wall:.0f} s"
            + (f" (stopped at the {bound:.0f} s bound)" if child.timed_out else "")
            + (f"; first email after {first[0]:.0f} s, {got / sending:,.0f}/s once sending" if first and
               sending > 0 else ""))
    return Figure(name, rate=got / child.wall, cpu_ms=1000 * child.cpu / max(got, 1),
                  rss_mb=child.rss_mb, note=note,
                  extra={"n": n, "accepted": got, "seconds": child.wall, "timed_out": child.timed_out,
                         "first_email_after": first[0] if first else None, "progress": progress,
                         "exit": child.returncode})
