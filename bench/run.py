"""notifier's speed beside its peers, all measured in one run so the ratios are fair.

    .venv/bin/python bench/run.py [--n 20000] [--quick] [--backlog 1000000] [--skip-backlog]

One local SMTP sink (bench/sink.py, its own process) receives everything. In order:
  1. the sink's ceiling: raw pipelining clients, and 4 aiosmtplib connections;
  2. notifier end to end, `notifier run --once` over N order.placed events, SQLite, then
     PostgreSQL when one answers at 127.0.0.1:5432 (a fresh database, dropped afterwards);
  3. the peers on the same shop and the same order confirmation: a naive loop (sqlite3,
     Jinja, EmailMessage, smtplib) and django-post-office (in bench/.venv, send phase timed);
  4. latency under steady load: the daemon, events committed at 200/s for 60 s;
  5. a 1,000,000-event backlog drained by `run --once` with the same workers, bounded at 15 minutes.
Prints a table and writes every figure to bench/out/results.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import dataset
import peer_post_office
from latency import latency
from measure import OUT, ROOT, Figure, backlog, notifier_env, notifier_once, run_child
from rich.console import Console
from rich.table import Table
from sink import Sink, blast, blast_aiosmtplib

BENCH = ROOT / "bench"
PEER_VENV = BENCH / ".venv"
PG = "postgresql://postgres@127.0.0.1:5432"


def ceiling(sink: Sink, count: int) -> list[Figure]:
    sink.reset()
    raw = blast(sink.port, count)
    sink.reset()
    client = blast_aiosmtplib(sink.port, count // 4)
    sink.reset()
    return [Figure("sink ceiling", rate=raw, note="raw clients, 4 connections, pipelined, ~5 KB messages"),
            Figure("sink via aiosmtplib", rate=client,
                   note="4 aiosmtplib connections in one process: the client library's own limit")]


def postgres(
    n: int, sink: Sink, env: dict[str, str], timeout: float, name: str = "notifier PostgreSQL"
) -> Figure:
    try:
        import psycopg
    except ImportError:
        return Figure(name, note="skipped: psycopg is not installed")
    database = f"notifier_bench_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(f"{PG}/postgres", connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        return Figure(name, note=f"skipped: no PostgreSQL at 127.0.0.1:5432 ({exc})")
    try:
        admin.execute(f'CREATE DATABASE "{database}"')
        dataset.build(f"{PG}/{database}", n)
        return notifier_once(name, f"{PG}/{database}", n, sink, env, timeout)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def naive(shop: Path, n: int, sink: Sink) -> Figure:
    sink.reset()
    child = run_child([sys.executable, str(BENCH / "peer_naive.py"), "--db", str(shop), "--port",
                       str(sink.port)], timeout=max(900, n / 20), log="naive")
    got = sink.count()
    note = "sqlite3 + Renderer + EmailMessage + smtplib, one at a time; process start to exit"
    if child.returncode != 0 or got != n:
        note = f"INCOMPLETE: exit {child.returncode}, {got} of {n}; " + note
    return Figure("naive loop", rate=got / child.wall, cpu_ms=1000 * child.cpu / max(got, 1),
                  rss_mb=child.rss_mb, note=note, extra={"accepted": got, "seconds": child.wall})


def peer_python() -> Path:
    """bench/.venv with Django and django-post-office, made on first use."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import django, post_office, jinja2"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "django", "django-post-office",
                        "jinja2"], check=True)
    return python


def post_office(shop: Path, n: int, sink: Sink) -> Figure:
    try:
        python = peer_python()
    except (subprocess.CalledProcessError, OSError) as exc:
        return Figure("django-post-office", note=f"skipped: could not set up bench/.venv ({exc})")
    templates, work = OUT / "post_office_templates", OUT / "post_office"
    shutil.rmtree(work, ignore_errors=True)
    peer_post_office.write_templates(templates)
    sink.reset()
    child = run_child([str(python), str(BENCH / "peer_post_office.py"), "--db", str(shop), "--port",
                       str(sink.port), "--templates", str(templates), "--workdir", str(work)],
                      timeout=max(900, n / 20), log="post_office")
    got = sink.count()
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        return Figure("django-post-office", note=f"INCOMPLETE: exit {child.returncode}, see bench/out/")
    result = json.loads(lines[-1])
    whole = got / (result["queue_seconds"] + result["send_seconds"])
    note = (f"send phase only (queueing renders, untimed); queue + send: {whole:,.0f}/s"
            + ("" if got == n else f"; INCOMPLETE: {got} of {n}"))
    return Figure("django-post-office", rate=got / result["send_seconds"],
                  cpu_ms=1000 * result["send_cpu_seconds"] / max(got, 1), rss_mb=child.rss_mb, note=note,
                  extra={**result, "accepted": got, "queue_and_send_rate": whole})


def ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value and base else "—"


def table(figures: list[Figure], title: str) -> Table:
    by = {f.name: f for f in figures}
    naive_rate = by["naive loop"].rate if "naive loop" in by else None
    po = by.get("django-post-office")
    po_send, po_whole = (po.rate, po.extra.get("queue_and_send_rate")) if po else (None, None)
    top = by["sink ceiling"].rate if "sink ceiling" in by else None
    grid = Table(title=title, title_justify="left")
    for column in ("", "emails/s", "CPU ms/email", "peak RSS MB", "vs naive",
                   "vs post-office send / queue+send", "of sink ceiling", "notes"):
        grid.add_column(column, justify="left" if column in ("", "notes") else "right")
    for f in figures:
        peers = f.name.startswith(("notifier", "backlog")) or f.name in ("naive loop", "django-post-office")
        grid.add_row(
            f.name, f"{f.rate:,.0f}" if f.rate else "—", f"{f.cpu_ms:.2f}" if f.cpu_ms else "—",
            f"{f.rss_mb:.0f}" if f.rss_mb else "—",
            ratio(f.rate, naive_rate) if peers else "—",
            f"{ratio(f.rate, po_send)} / {ratio(f.rate, po_whole)}" if peers else "—",
            f"{f.rate / top:.1%}" if peers and f.rate and top else "—", f.note,
        )
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="orders and events for the end-to-end rows")
    parser.add_argument("--quick", action="store_true", help="latency 15 s, backlog 100,000, bound 5 min")
    parser.add_argument("--backlog", type=int, default=None, help="events in the backlog (1,000,000)")
    parser.add_argument("--skip-backlog", action="store_true")
    parser.add_argument("--skip", action="append", default=[], help="sqlite, postgres, naive, post-office, "
                        "latency or backlog (repeatable)")
    parser.add_argument("--connections", default="4", help="NOTIFIER_SMTP_CONNECTIONS (default 4)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="NOTIFIER_WORKERS for the extra rows (default: the number of cores)")
    parser.add_argument("--backlog-workers", type=int, default=None,
                        help="NOTIFIER_WORKERS for the backlog drain (default: --workers)")
    parser.add_argument("--keep", action="store_true", help="keep the databases in bench/out/work")
    args = parser.parse_args()
    if args.backlog_workers is None:
        args.backlog_workers = args.workers
    skip = set(args.skip) | ({"backlog"} if args.skip_backlog else set())
    n, quick = args.n, args.quick
    backlog_n = args.backlog or (100_000 if quick else 1_000_000)
    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    env = notifier_env(smtp_connections=args.connections)
    many = notifier_env(smtp_connections=args.connections, workers=str(args.workers))
    workers = f"{args.workers} workers"
    timeout = max(600.0, n / 20)
    console = Console(width=None if sys.stdout.isatty() else 220)
    figures: list[Figure] = []
    started = time.monotonic()
    sink = Sink()
    try:
        console.print("sink ceiling …")
        figures += ceiling(sink, 20_000 if quick else 100_000)
        shop = work / "shop.db"
        dataset.build(f"sqlite:///{shop}", n)
        if "sqlite" not in skip:
            console.print(f"notifier SQLite, {n:,} events …")
            shutil.copy(shop, work / "notifier.db")
            figures.append(notifier_once("notifier SQLite", f"sqlite:///{work / 'notifier.db'}", n, sink, env,
                                         timeout))
            if args.workers > 1:
                console.print(f"notifier SQLite, {workers} …")
                url = f"sqlite:///{shutil.copy(shop, work / 'workers.db')}"
                figures.append(notifier_once(f"notifier SQLite, {workers}", url, n, sink, many, timeout))
        if "postgres" not in skip:
            console.print("notifier PostgreSQL …")
            figures.append(postgres(n, sink, env, timeout))
            if args.workers > 1:
                console.print(f"notifier PostgreSQL, {workers} …")
                figures.append(postgres(n, sink, many, timeout, f"notifier PostgreSQL, {workers}"))
        if "naive" not in skip:
            console.print("naive loop …")
            figures.append(naive(shop, n, sink))
        if "post-office" not in skip:
            console.print("django-post-office …")
            figures.append(post_office(shop, n, sink))
        if "latency" not in skip:
            seconds = 15 if quick else 60
            console.print(f"latency, 200 events/s for {seconds} s …")
            figures.append(latency(work / "latency.db", sink, env, 200, seconds))
        if "backlog" not in skip:
            console.print(f"backlog of {backlog_n:,} events: building …")
            dataset.build_backlog(str(work / "backlog.db"), backlog_n)
            drain = f"{args.backlog_workers} workers" if args.backlog_workers > 1 else "one process"
            console.print(f"backlog: draining ({drain}) …")
            figures.append(backlog(work / "backlog.db", backlog_n, sink,
                                   notifier_env(smtp_connections=args.connections,
                                                workers=str(args.backlog_workers)),
                                   300 if quick else 900, f"backlog drain, {drain}"))
    finally:
        sink.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)  # the backlog database alone is several GB
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"notifier benchmark, {when}; {machine}; N = {n:,}" + (" (--quick)" if quick else "")
    console.print(table(figures, title))
    results = {"date": when, "machine": machine, "n": n, "quick": quick, "backlog": backlog_n,
               "connections": args.connections, "seconds": time.monotonic() - started,
               "figures": [asdict(f) for f in figures]}
    (OUT / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    console.print(f"figures written to {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
