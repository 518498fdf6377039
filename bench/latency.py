"""Latency under steady load: from the order system's commit to the SMTP server's acceptance.

A fresh SQLite shop (customers, orders and items, no events yet) and the daemon (`notifier
run`, default poll interval 2 s) sending to the sink. This process plays the order system:
it inserts one `order.placed` event per transaction at a steady rate (200/s) for a while
(60 s), noting the time each commit returned. notifier's Message-ID is a hash of the
notification key (`order-confirmation:order:<event id>`) with the database's own random id
(`notifier_state` `database.id`), so each message the sink records maps back to its event:
latency = sink arrival - commit. Then SIGTERM stops the daemon.
"""

from __future__ import annotations

import signal
import sqlite3
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import dataset
from measure import ROOT, Figure, notifier_command, reap
from sink import Sink

from notifier.compose.mail import make_message_id
from notifier.db.store.identity import DATABASE_ID


def _started(db: Path, timeout: float) -> bool:
    """The daemon has published its rules (it does so once it is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                if conn.execute("SELECT count(*) FROM notifier_state").fetchone()[0]:
                    return True
        except sqlite3.Error:
            pass
        time.sleep(0.1)
    return False


def _by_message_id(db: Path, committed: dict[int, float]) -> dict[str, float]:
    """Commit times by the Message-ID each event's confirmation carries: the notification key and
    the database's own random id (made when the daemon first claims), as the daemon makes it."""
    with sqlite3.connect(db, timeout=30) as conn:
        row = conn.execute("SELECT value FROM notifier_state WHERE key = ?", (DATABASE_ID,)).fetchone()
    database = str(row[0]) if row else ""
    return {
        make_message_id(f"order-confirmation:order:{event}", "blossom.example", database): at
        for event, at in committed.items()
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(db: Path, sink: Sink, env: dict[str, str], rate: int, seconds: int) -> Figure:
    total = rate * seconds
    dataset.build(f"sqlite:///{db}", total, events=False)
    log = open(ROOT / "bench" / "out" / "latency.err", "w")  # closed below
    daemon = subprocess.Popen(notifier_command(f"sqlite:///{db}", sink.port, "run"), env=env, cwd=ROOT,
                              stdout=log, stderr=log)
    try:
        if not _started(db, 60):
            return Figure("latency (daemon)", note="INCOMPLETE: the daemon did not start")
        sink.reset()
        sink.ask("record on")
        shop = sqlite3.connect(db, isolation_level=None, timeout=30)  # autocommit: one event, one commit
        committed: dict[int, float] = {}  # event id -> when its commit returned
        started = time.monotonic()
        for k in range(total):
            pause = started + k / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            cursor = shop.execute(
                "INSERT INTO order_events (order_id, type, occurred_at) VALUES (?, 'placed', ?)",
                (k + 1, stamp),
            )
            at = time.time()
            committed[cursor.lastrowid or 0] = at
        inserting = time.monotonic() - started
        shop.close()
        deadline = time.monotonic() + 60
        while sink.count() < total and time.monotonic() < deadline:
            time.sleep(0.2)
        records = sink.records()
        sink.ask("record off")
        by_message_id = _by_message_id(db, committed)
    finally:
        daemon.send_signal(signal.SIGTERM)
        cpu, rss = reap(daemon, 60)
        log.close()
    waits = [arrival - by_message_id[mid] for arrival, mid in records if mid in by_message_id]
    if not waits:
        return Figure("latency (daemon)", note="INCOMPLETE: no message arrived")
    p50, p99, worst = _percentile(waits, 0.50), _percentile(waits, 0.99), max(waits)
    missing = total - len(waits)
    note = (f"commit -> SMTP accept: p50 {p50:.2f} s, p99 {p99:.2f} s, max {worst:.2f} s; "
            f"offered {rate}/s for {seconds} s, poll 2 s" + (f"; {missing} not delivered" if missing else ""))
    return Figure("latency (daemon)", rate=len(waits) / inserting, cpu_ms=1000 * cpu / len(waits), rss_mb=rss,
                  note=note,
                  extra={"p50": p50, "p99": p99, "max": worst, "mean": statistics.fmean(waits),
                         "events": total, "delivered": len(waits), "insert_seconds": inserting,
                         "exit": daemon.returncode})
