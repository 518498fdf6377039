"""Where `notifier run --once` spends its time: a cProfile of every thread, N events.

    .venv/bin/python bench/profile_notifier.py [--n 20000] [--top 25] [--postgres] [--statements]

Builds the same shop as bench/run.py (N order.placed events, SQLite, or with --postgres a fresh
database on 127.0.0.1:5432, dropped afterwards), starts the sink, and
runs `notifier ... run --once` under cProfile in a child process. `python -m cProfile` alone
would only see the event loop's thread, while notifier reads, renders and records in worker
threads (asyncio.to_thread); so the child installs a profiler in every thread it starts
(threading.setprofile) and merges them into bench/out/notifier.prof. Every profiler counts its
own thread's CPU time (time.thread_time), so waiting (epoll, the executor's queue, the GIL)
costs nothing and the figures add up to where the CPU goes. Prints the top entries by
cumulative and by own time (also written to bench/out/notifier_profile.txt). With
--statements, no profiler: it counts the SQL statements (and executemany rows) notifier sends,
by their first words, to see the round trips a batch costs.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import pstats
import secrets
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


def count_statements(argv: list[str]) -> None:
    """Run notifier's command line counting every statement sent to the database."""
    import sqlalchemy as sa

    from notifier.cli import main as notifier_main

    counts: collections.Counter[str] = collections.Counter()
    rows: collections.Counter[str] = collections.Counter()
    seconds: collections.Counter[str] = collections.Counter()
    began: dict[int, float] = {}

    @sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        key = " ".join(statement.split()[:4])[:60]
        counts[key] += 1
        rows[key] += len(parameters) if many else 1
        began[id(cursor)] = time.perf_counter()

    @sa.event.listens_for(sa.engine.Engine, "after_cursor_execute")
    def done(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        key = " ".join(statement.split()[:4])[:60]
        seconds[key] += time.perf_counter() - began.pop(id(cursor), time.perf_counter())

    try:
        sys.argv = ["notifier", *argv]
        notifier_main()
    except SystemExit:
        pass
    finally:
        print(f"{sum(counts.values()):,} statements, {sum(seconds.values()):.2f} s waiting for them")
        for key, count in counts.most_common(30):
            print(f"{count:8,} {rows[key]:8,} rows {seconds[key]:7.2f} s  {key}")


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
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL shop at 127.0.0.1:5432")
    parser.add_argument("--statements", action="store_true", help="count SQL statements, no profile")
    args, rest = parser.parse_known_args()
    if rest and rest[0] in ("--child", "--count"):
        (child if rest[0] == "--child" else count_statements)(rest[1:])
        return
    import dataset
    from measure import notifier_command, notifier_env
    from sink import Sink

    work = OUT / "profile"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    url, drop = f"sqlite:///{work / 'shop.db'}", lambda: None
    if args.postgres:
        url, drop = _postgres()
    try:
        dataset.build(url, args.n)
        sink = Sink()
        try:
            mode = "--count" if args.statements else "--child"
            command = notifier_command(url, sink.port, "run", "--once")[1:]
            started = time.perf_counter()
            subprocess.run([sys.executable, __file__, mode, *command], env=notifier_env(), cwd=ROOT,
                           check=True)
            seconds = time.perf_counter() - started
            sent = sink.count()
        finally:
            sink.close()
    finally:
        drop()
    if args.statements:
        print(f"{sent:,} of {args.n:,} sent in {seconds:.1f} s")
        return
    report = io.StringIO()
    report.write(f"{sent:,} of {args.n:,} sent in {seconds:.1f} s under the profiler\n")
    for order in ("cumulative", "tottime"):
        report.write(f"\n=== top {args.top} by {order} ===\n")
        pstats.Stats(str(PROFILE), stream=report).strip_dirs().sort_stats(order).print_stats(args.top)
    (OUT / "notifier_profile.txt").write_text(report.getvalue())
    print(report.getvalue())


def _postgres() -> tuple[str, Any]:
    """A fresh database on the local server, and how to drop it."""
    import psycopg

    server = "postgresql://postgres@127.0.0.1:5432"
    database = f"notifier_profile_{secrets.token_hex(4)}"
    admin = psycopg.connect(f"{server}/postgres", connect_timeout=3, autocommit=True)
    admin.execute(f'CREATE DATABASE "{database}"')

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()

    return f"{server}/{database}", drop


if __name__ == "__main__":
    main()
