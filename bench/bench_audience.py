"""How long planning one price-change warning for a large audience takes, and its peak memory.

    .venv/bin/python bench/bench_audience.py [--customers N] [--db PATH] [--analyze] [--explain]

Builds a SQLite database (in a temporary folder unless --db names a file) with N customers
(default 1,000,000), each with one order of the product placed in the last 240 days, about
70% of them opted in to marketing mail and 1% (all opted in) unsubscribed since; then
plans the `price-rise-warning` rule of SPEC §4 for one `product.price_change` event with
`notifier.db.fanout.plan_audience`, in a fresh process, so the peak RSS it reports is the
planning's (plus the interpreter and imports, shown separately as "before planning").
Target: under 60 s and under 200 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENT_AT = "2026-02-10 09:00:00"
RULES = """\
version: 1
defaults:
  from: "Blossom & Co <care@blossom.example>"
rules:
  - name: price-rise-warning
    on: product.price_change
    when: "event.new_price > event.old_price"
    send_at: "event.effective_at - 21d"
    audience: { ordered_product_within: 365d }
    category: marketing
    template: price_change_warning
"""
PRICE_CHANGE = {"old_price": "59.00", "new_price": "65.00", "currency": "USD", "effective_at": "2026-04-01"}


def build(path: Path, customers: int, analyze: bool) -> float:
    """Create the tables with init-db, then fill them in bulk. Returns seconds taken.

    Without ANALYZE (as most order systems leave SQLite) the query starts from the
    order_items index on product_id; with it, SQLite knows every customer bought the
    product and scans customers instead. Both stay inside the targets."""
    from notifier.db.engine import init_db, make_engine

    started = time.perf_counter()
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    engine.dispose()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-65536")
    numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)"
    db.execute("BEGIN")
    db.execute(
        "INSERT INTO products (id, sku, name, tags, price, currency) "
        "VALUES (1, 'ROSES-12', 'Twelve red roses', 'roses', 59.00, 'USD')"
    )
    db.execute(
        f"INSERT INTO customers (id, email, name, locale, timezone, marketing_opt_in) {numbers} "
        "SELECT i, 'customer' || i || '@example.com', 'Customer ' || i, 'en', 'Asia/Taipei', "
        "(i % 10) < 7 FROM n",
        {"count": customers},
    )
    db.execute(
        f"INSERT INTO orders (id, customer_id, placed_at, status, total, currency, ship_to_name, "
        f"ship_to_address, promised_date) {numbers} "
        "SELECT i, i, datetime('2025-06-01 10:00:00', '+' || (i % 240) || ' days'), 'delivered', "
        "59.00, 'USD', 'Customer ' || i, i || ' Flower Street', NULL FROM n",
        {"count": customers},
    )
    db.execute(
        f"INSERT INTO order_items (id, order_id, product_id, quantity, unit_price) {numbers} "
        "SELECT i, i, 1, 1, 59.00 FROM n",
        {"count": customers},
    )
    db.execute(
        f"INSERT INTO notifier_suppressions (address, reason, created_at) {numbers} "
        "SELECT 'customer' || (i * 100) || '@example.com', 'unsubscribed', '2026-01-01 00:00:00' FROM n",
        {"count": max(customers // 100 - 1, 0)},
    )
    db.execute(
        "INSERT INTO product_events (product_id, type, occurred_at, data) VALUES (1, 'price_change', ?, ?)",
        (EVENT_AT, json.dumps(PRICE_CHANGE)),
    )
    db.execute("COMMIT")
    if analyze:
        db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - started


def expected(customers: int) -> int:
    """Opted-in customers whose address is not unsubscribed (what the audience must be)."""
    opted_in = {i for i in range(1, customers + 1) if i % 10 < 7}
    unsubscribed = {i * 100 for i in range(1, customers // 100)}
    return len(opted_in - unsubscribed)


def peak_rss_mb() -> float:
    """This process's peak resident memory. (ru_maxrss is KB on Linux and carries over the
    parent's peak through fork and exec: the parent here stays small for that reason.)"""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plan(path: Path, explain: bool) -> dict[str, object]:
    """Plan the price-change event once (run in a fresh process). Returns the figures."""
    import sqlalchemy as sa

    from notifier.config.rules_file import load_rules
    from notifier.core.context import brand_of
    from notifier.core.timing import utcnow
    from notifier.db.engine import make_engine
    from notifier.db.events import read_ids
    from notifier.db.fanout import plan_audience
    from notifier.db.subjects import load_subjects

    rules = load_rules(Path("bench-rules.yaml"), template_exists=lambda _name: True, text=RULES)
    rule = rules.by_name("price-rise-warning")
    assert rule is not None and rule.audience is not None
    engine = make_engine(f"sqlite:///{path}")
    before = peak_rss_mb()
    started = time.perf_counter()
    with engine.begin() as conn:
        [event] = read_ids(conn, "product", [1])
        subject = load_subjects(conn, [("product", 1)])[("product", 1)]
        now = utcnow()
        if explain:
            _print_query_plan(engine)
        planned = plan_audience(conn, rule, event, rules, subject=subject, brand=brand_of(rules), now=now)
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM notifier_notifications")).scalar_one()
    engine.dispose()
    return {
        "planned": planned,
        "stored": stored,
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _print_query_plan(engine: Any) -> None:
    """Show SQLite's plan for the audience INSERT ... SELECT when it runs."""
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "before_cursor_execute")
    def explain(_conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO notifier_notifications"):
            for row in cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall():
                print("  query plan:", row[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="the SQLite file to build (default: a temporary one)")
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE after building")
    parser.add_argument("--explain", action="store_true", help="print SQLite's plan for the audience query")
    parser.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)  # child processes
    parser.add_argument("--plan-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        print(f"  built in {build(args.build_only, args.customers, args.analyze):.1f} s", flush=True)
        return
    if args.plan_only:
        print(json.dumps(plan(args.plan_only, args.explain)))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = args.db or Path(folder) / "audience.db"
        if path.exists():
            sys.exit(f"{path} exists; give a new file")
        print(f"building {path} with {args.customers:,} customers ...", flush=True)
        # Build and plan in separate processes, so each one's peak memory is its own.
        subprocess.run(
            [sys.executable, __file__, "--build-only", str(path), "--customers", str(args.customers)]
            + (["--analyze"] if args.analyze else []),
            check=True,
        )
        command = [sys.executable, __file__, "--plan-only", str(path)]
        command += ["--explain"] if args.explain else []
        child = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        *explained, last = child.stdout.rstrip().splitlines()
        for line in explained:
            print(line)
        figures = json.loads(last)
    want = expected(args.customers)
    print(f"planned:       {figures['planned']:,} notifications (expected {want:,})")
    print(f"stored:        {figures['stored']:,} rows in notifier_notifications")
    print(f"seconds:       {figures['seconds']:.2f}  (target < 60)")
    print(f"peak RSS:      {figures['peak_rss_mb']:.1f} MB in the planning process  (target < 200)")
    print(f"  of which {figures['rss_before_mb']:.1f} MB before planning (interpreter and imports)")
    ok = figures["planned"] == want and float(figures["seconds"]) < 60 and float(figures["peak_rss_mb"]) < 200
    print("OK" if ok else "MISSED THE TARGET")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
