"""Where `notifier run --once` spends its time: a cProfile of every thread, N events.

    .venv/bin/python bench/profile_notifier.py [--n 20000] [--top 25]

Builds the same shop as bench/run.py (N order.placed events, SQLite), starts the sink, and
runs `notifier ... run --once` under cProfile in a child process. `python -m cProfile` alone
would only see the event loop's thread, while notifier reads, renders and records in worker
threads (asyncio.to_thread); so the child installs a profiler in every thread it starts
(threading.setprofile) and merges them into bench/out/notifier.prof. Every profiler counts its
own thread's CPU time (time.thread_time), so waiting (epoll, the executor's queue, the GIL)
costs nothing and the figures add up to where the CPU goes. Prints the top entries by
cumulative and by own time (also written to bench/out/notifier_profile.txt).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PROFILE = OUT / "notifier.prof"


def child(argv: list[str]) -> None:
    """Run notifier's command line with a profiler in this thread and every new thread."""
    from notifier.cli import main as notifier_main

    profiles: list[cProfile.Profile] = []

    def start(frame: Any, event: str, arg: Any) -> None:
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start)
    main = cProfile.Profile(time.thread_time)
    main.enable()
    try:
        sys.argv = ["notifier", *argv]
        notifier_main()
    except SystemExit:
        pass
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        stats = pstats.Stats(main)
        for profile in profiles:
            profile.create_stats()
            stats.add(profile)
        stats.dump_stats(PROFILE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=25)
    args, rest = parser.parse_known_args()
    if rest and rest[0] == "--child":
        child(rest[1:])
        return
    import dataset
    from measure import notifier_command, notifier_env
    from sink import Sink

    work = OUT / "profile"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "shop.db"
    dataset.build(f"sqlite:///{db}", args.n)
    sink = Sink()
    try:
        command = notifier_command(f"sqlite:///{db}", sink.port, "run", "--once")[1:]
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", *command], env=notifier_env(), cwd=ROOT,
                       check=True)
        seconds = time.perf_counter() - started
        sent = sink.count()
    finally:
        sink.close()
    report = io.StringIO()
    report.write(f"{sent:,} of {args.n:,} sent in {seconds:.1f} s under the profiler\n")
    for order in ("cumulative", "tottime"):
        report.write(f"\n=== top {args.top} by {order} ===\n")
        pstats.Stats(str(PROFILE), stream=report).strip_dirs().sort_stats(order).print_stats(args.top)
    (OUT / "notifier_profile.txt").write_text(report.getvalue())
    print(report.getvalue())


if __name__ == "__main__":
    main()
