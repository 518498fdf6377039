"""`notifier demo`: the whole pipeline on a SQLite file, a local mail catcher and a
simulated timeline (demo_data.py) — three customers in three languages walking the whole
journey — ending with a summary, a table of which message kind went in which language, and
every message saved as an .eml file.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shlex
import shutil
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from notifier.config.settings import Secret, Settings
from notifier.config.shipped import shipped
from notifier.db.engine import init_db, make_engine
from notifier.db.events import SOURCES
from notifier.db.schema import Case, Customer, Order, OrderItem, Product, ProductTranslation
from notifier.db.store.reports import sent_per_template_and_locale
from notifier.run.daemon import Pipeline
from notifier.tools.catcher import MailCatcher
from notifier.tools.demo_data import (
    CASES,
    CUSTOMERS,
    ORDERS,
    PAST_ORDERS,
    PRICES,
    PRODUCTS,
    START,
    TIMELINE,
    TRANSLATIONS,
)


def _seed(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(Customer.__table__), CUSTOMERS)  # type: ignore[attr-defined]
        conn.execute(sa.insert(Product.__table__), PRODUCTS)  # type: ignore[attr-defined]
        conn.execute(sa.insert(ProductTranslation.__table__), TRANSLATIONS)  # type: ignore[attr-defined]
        conn.execute(
            sa.insert(Case.__table__),  # type: ignore[attr-defined]
            [
                {**case, "status": "open", "priority": "high", "opened_at": _utc(case["opened_at"])}
                for case in CASES
            ],
        )
        for order in [*PAST_ORDERS, *ORDERS]:
            prices = PRICES[order["currency"]]
            total = sum(prices[pid] * qty for pid, qty in order["items"])
            conn.execute(
                sa.insert(Order.__table__).values(  # type: ignore[attr-defined]
                    id=order["id"],
                    customer_id=order["customer_id"],
                    placed_at=order["placed_at"],
                    status="delivered" if order in PAST_ORDERS else "placed",
                    total=total,
                    currency=order["currency"],
                    ship_to_name=order["ship_to_name"],
                    ship_to_address=order["ship_to_address"],
                    promised_date=order["promised_date"],
                )
            )
            conn.execute(
                sa.insert(OrderItem.__table__),  # type: ignore[attr-defined]
                [
                    {"order_id": order["id"], "product_id": pid, "quantity": qty, "unit_price": prices[pid]}
                    for pid, qty in order["items"]
                ],
            )


def _utc(when: str) -> datetime:
    return datetime.fromisoformat(when).replace(tzinfo=UTC)


def demo_rules(out: Path) -> tuple[Path, list[str]]:
    """The shipped rules.yaml with every rule that ships off turned on, so the demo shows every
    message it can send; returns the copy and the names turned on. Line for line the same file."""
    lines = _shipped_file("rules.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    turned_on: list[str] = []
    name = ""
    for number, line in enumerate(lines):
        found = re.match(r"\s*- name:\s*(\S+)", line)
        name = found.group(1) if found else name
        if re.match(r"\s+enabled:\s*false\b", line):
            lines[number] = line.replace("false", "true ", 1)
            turned_on.append(name)
    copy = out / "rules.yaml"
    copy.write_text("".join(lines), encoding="utf-8")
    return copy, turned_on


def _shipped_file(name: str) -> Path:
    """rules.yaml / templates from the working directory (after `notifier init`, or in a
    checkout), else the ones the package carries."""
    here = Path(name)
    return here if here.exists() else shipped(name)


def this_command() -> str:
    """How to run this same notifier again, as typed in this working directory: `notifier`
    when that is on the PATH and is this one, else the path of the running executable."""
    running = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if running is None or running.name in ("__main__.py", "-c") or not running.exists():
        return f"{shlex.quote(sys.executable)} -m notifier"
    on_path = shutil.which("notifier")
    if on_path is not None and Path(on_path).resolve() == running.resolve():
        return "notifier"
    try:
        shown = running.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return shlex.quote(str(running.resolve()))
    return shlex.quote(str(shown))


class SimulatedClock:
    """The demo's time: moved forward step by step instead of waiting days."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def _play(settings: Settings, engine: sa.Engine, clock: SimulatedClock, console: Console) -> None:
    async with Pipeline(settings, engine=engine, clock=clock) as pipeline:
        for when, source, subject_id, kind, data in TIMELINE:
            clock.now = datetime.fromisoformat(when).replace(tzinfo=UTC)
            if kind:
                table, column = SOURCES[source]
                with engine.begin() as conn:
                    conn.execute(
                        sa.insert(table).values(
                            {column: subject_id, "type": kind, "occurred_at": clock.now, "data": data}
                        )
                    )
            result = await pipeline.cycle()
            # A step without an event says what the time is for, when the timeline names it.
            note = f"({(data or {}).get('note', 'time passes')})"
            what = f"{source} {subject_id} {kind:<13}" if kind else f"{note:<20}"
            skipped = f", {result.skipped} not needed any more" if result.skipped else ""
            console.print(f"  {clock.now:%a %d %b %H:%M} UTC  {what} -> {result.sent} email(s) sent{skipped}")


def run_demo(out: Path, console: Console) -> int:
    """Run the demo into `out`; returns the exit code."""
    # The timeline and the summary say what happens; per-message log lines would drown them.
    if logging.getLogger().level < logging.WARNING:
        logging.getLogger("notifier").setLevel(logging.WARNING)
    if out.exists():
        shutil.rmtree(out)
    (out / "mail").mkdir(parents=True)
    database = out / "demo.db"
    engine = make_engine(f"sqlite:///{database}")
    init_db(engine)
    _seed(engine)
    rules, turned_on = demo_rules(out)
    templates = _shipped_file("templates")
    console.print(
        f"[bold]notifier demo[/bold]: {len(CUSTOMERS)} customers, {len(ORDERS)} orders, database {database}"
    )
    if turned_on:
        console.print(f"rules that ship off, on for the demo ({rules}): {', '.join(turned_on)}")
    with MailCatcher(out_dir=out / "mail") as catcher:
        settings = replace(
            Settings(),
            database_url=Secret(f"sqlite:///{database}"),
            smtp_url=Secret(catcher.url),
            rules=rules,
            templates=templates,
            secret_key=Secret(secrets.token_hex(16)),
        )
        asyncio.run(_play(settings, engine, SimulatedClock(START), console))
        _summary(console, catcher, out)
        with engine.connect() as conn:
            _matrix(console, sent_per_template_and_locale(conn), _languages(templates))
        return 0 if catcher.messages else 1


def _summary(console: Console, catcher: MailCatcher, out: Path) -> None:
    table = Table(title=f"{len(catcher.messages)} emails caught")
    for column in ("#", "to", "subject"):
        table.add_column(column)
    for number, message in enumerate(catcher.messages, 1):
        table.add_row(str(number), ", ".join(message.rcpt_tos), message.subject)
    console.print(table)
    console.print(f"messages saved as .eml files in {out / 'mail'}; database in {out / 'demo.db'}")
    console.print(
        f"try: {this_command()} --database-url sqlite:///{out / 'demo.db'} history --order 1042",
        markup=False,
        highlight=False,
    )


def _languages(templates: Path) -> set[tuple[str, str]]:
    """(template, locale) of every message the templates can write."""
    return {(file.parent.name, file.name.split(".")[0]) for file in templates.glob("*/*.subject.txt")}


def _matrix(console: Console, sent: dict[tuple[str, str], int], written: set[tuple[str, str]]) -> None:
    """Which message kind went in which language, and how many: 0 is a message the templates
    have and the demo never sent, "-" one with no template in that language (the team's, in en)."""
    kinds = written | set(sent)
    locales = sorted({locale for _, locale in kinds}, key=lambda loc: (loc != "en", loc))
    table = Table(title="sent, by message kind and language")
    table.add_column("message kind")
    for locale in locales:
        table.add_column(locale, justify="right")
    for template in sorted({template for template, _ in kinds}):
        cells = [str(sent.get((template, loc), 0 if (template, loc) in written else "-")) for loc in locales]
        table.add_row(template, *cells)
    console.print(table)
