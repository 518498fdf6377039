"""Peak memory of `notifier run --once` draining a large backlog, to the end.

    .venv/bin/python bench/memory.py [--events 1000000] [--workers 1]

Builds a SQLite shop with that many `order.placed` events (bench/dataset.py, in SQL), starts
the sink, runs `notifier run --once` with the shipped rules and templates until every event
is evaluated and every message sent, and prints the peak resident set (the sum over the
process and its workers, sampled from /proc, and the kernel's own maximum for the main
process) every 30 s and at the end. Exits 1 if fewer messages arrived than events or the
peak passed --limit (200 MB). A million events take about half an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import dataset
from measure import notifier_command, notifier_env, run_child
from sink import Sink


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1", help="NOTIFIER_WORKERS (default 1)")
    parser.add_argument("--limit", type=float, default=200.0, help="peak RSS allowed, MB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="notifier-memory-") as folder:
        database = Path(folder) / "backlog.db"
        started = time.monotonic()
        print(f"building a shop with {args.events:,} order.placed events …", flush=True)
        dataset.build_backlog(str(database), args.events)
        print(f"built in {time.monotonic() - started:.0f} s; draining with run --once …", flush=True)
        sink = Sink()
        last = [0.0]

        def report(elapsed: float) -> None:
            if elapsed - last[0] >= 30:
                last[0] = elapsed
                print(f"  {elapsed:6.0f} s  {sink.count():>9,} sent", flush=True)

        try:
            child = run_child(
                notifier_command(f"sqlite:///{database}", sink.port, "run", "--once"),
                timeout=24 * 3600,
                env=notifier_env(workers=args.workers),
                log="memory",
                watch=report,
            )
            sent = sink.count()
        finally:
            sink.close()
    rate = sent / child.wall if child.wall else 0.0
    print(
        f"{sent:,} of {args.events:,} sent in {child.wall:,.0f} s ({rate:,.0f}/s), exit {child.returncode}; "
        f"peak RSS {child.rss_mb:.0f} MB (limit {args.limit:.0f} MB)"
    )
    ok = child.returncode == 0 and sent == args.events and child.rss_mb <= args.limit
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
