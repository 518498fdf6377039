"""The command line (SPEC §6). Thin: parse options, call the pipeline, print.

Exit codes: 0 done; 1 invalid input (rules, templates, settings); 2 bad usage;
75 SMTP unavailable during `run --once` (nothing lost, run again later).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from rich.console import Console
from rich.table import Table

from notifier import __version__
from notifier.errors import ConfigError, NotifierError, RulesError
from notifier.settings import Settings, load_settings

app = typer.Typer(
    help="notifier: tells customers what is happening with their orders before they ask.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

EXIT_INVALID = 1


class State:
    """Global options, kept between the callback and the command it precedes."""

    overrides: ClassVar[dict[str, Any]] = {}
    config_file: ClassVar[Path | None] = None


def _settings() -> Settings:
    try:
        return load_settings(State.overrides, config_file=State.config_file)
    except ConfigError as exc:
        errors.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(EXIT_INVALID) from exc


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("apscheduler", "mail.log", "alembic"):  # other libraries' chatter
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose < 2 else logging.DEBUG)


def _version(value: bool) -> None:
    if value:
        console.print(f"notifier {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (env NOTIFIER_DATABASE_URL).")
    ] = None,
    smtp_url: Annotated[str | None, typer.Option(help="SMTP URL (env NOTIFIER_SMTP_URL).")] = None,
    rules: Annotated[Path | None, typer.Option(help="Rules file (env NOTIFIER_RULES).")] = None,
    templates: Annotated[Path | None, typer.Option(help="Templates folder (env NOTIFIER_TEMPLATES).")] = None,
    config: Annotated[Path | None, typer.Option(help="A notifier.toml to read settings from.")] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log detail.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    State.overrides = {
        "database_url": database_url,
        "smtp_url": smtp_url,
        "rules": rules,
        "templates": templates,
    }
    State.config_file = config
    _setup_logging(verbose, quiet)


def _print_problems(exc: RulesError) -> None:
    errors.print(f"[red]{len(exc.problems)} problem(s):[/red]")
    for problem in exc.problems:
        errors.print(f"  {problem}", markup=False, highlight=False)


@app.command("init-db")
def init_db_command(
    notify_trigger: Annotated[
        bool,
        typer.Option(
            "--notify-trigger",
            help="PostgreSQL: also install a trigger on the event tables that wakes running daemons "
            "the moment an event commits (LISTEN/NOTIFY).",
        ),
    ] = False,
) -> None:
    """Create the integration tables and notifier's own tables where missing; upgrade notifier's."""
    from notifier.database import init_db, make_engine, schema_revision

    settings = _settings()
    engine = make_engine(settings.database_url.reveal())
    created = init_db(engine)
    if created:
        console.print(f"created {len(created)} table(s): {', '.join(created)}")
    else:
        console.print("all tables already exist; nothing to create")
    console.print(f"notifier tables at revision {schema_revision(engine)}")
    if notify_trigger:
        if engine.dialect.name != "postgresql":
            errors.print("--notify-trigger needs PostgreSQL; SQLite daemons poll")
            raise typer.Exit(2)
        from notifier.wakeup import install_trigger

        console.print(f"wake-up trigger installed on {', '.join(install_trigger(engine))}")
    engine.dispose()


@app.command("run")
def run_command(
    once: Annotated[bool, typer.Option("--once", help="Do everything due now, then exit.")] = False,
    poll_interval: Annotated[str | None, typer.Option(help="How often to look for work, e.g. 2s.")] = None,
) -> None:
    """Run the daemon: poll events, evaluate rules, send what is due, until SIGTERM/SIGINT."""
    from notifier.daemon import run_forever, run_once

    if poll_interval is not None:
        State.overrides["poll_interval"] = poll_interval
    settings = _settings()
    try:
        if once:
            code, total = asyncio.run(run_once(settings))
            console.print(
                f"{total.events} event(s) read, {total.sent} sent, {total.retrying} to retry, "
                f"{total.failed} failed, {total.skipped} skipped"
            )
            raise typer.Exit(code)
        raise typer.Exit(asyncio.run(run_forever(settings)))
    except RulesError as exc:
        errors.print("[red]notifier cannot start: the rules or templates are not valid[/red]")
        _print_problems(exc)
        raise typer.Exit(EXIT_INVALID) from exc
    except (ConfigError, NotifierError) as exc:
        errors.print(f"[red]notifier cannot start:[/red] {exc}")
        raise typer.Exit(EXIT_INVALID) from exc


@app.command("check")
def check_command() -> None:
    """Validate rules.yaml and render every template in every locale with sample data."""
    from notifier.checking import check_all

    settings = _settings()
    problems, summary = check_all(settings.rules, settings.templates)
    for line in summary:
        console.print(line, markup=False, highlight=False)
    if problems:
        _print_problems(RulesError(problems))
        raise typer.Exit(EXIT_INVALID)
    console.print("[green]OK[/green]")


@app.command("preview")
def preview_command(
    template: Annotated[str, typer.Argument(help="Template name, e.g. order_confirmation.")],
    locale: Annotated[str, typer.Option(help="en, zh-CN or zh-TW.")] = "en",
    order: Annotated[int | None, typer.Option(help="Use this real order instead of sample data.")] = None,
    case: Annotated[int | None, typer.Option(help="Use this real case.")] = None,
    product: Annotated[int | None, typer.Option(help="Use this real product.")] = None,
    html: Annotated[
        bool, typer.Option("--html", help="Print the HTML part instead of the text part.")
    ] = False,
) -> None:
    """Render one message and print its subject and text (or HTML) part."""
    from notifier.checking import preview

    settings = _settings()
    try:
        rendered = preview(settings, template, locale=locale, order=order, case=case, product=product)
    except (NotifierError, LookupError, ValueError) as exc:
        errors.print(f"[red]cannot preview {template}:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from exc
    console.print(f"Subject: {rendered.subject}", markup=False, highlight=False)
    console.print()
    console.print(rendered.html if html else rendered.text, markup=False, highlight=False)


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="Folder for the demo database and the .eml files.")] = Path(
        "demo-out"
    ),
) -> None:
    """Run the embedded demo: sample orders in three languages, a local mail catcher, a summary."""
    from notifier.demo import run_demo

    raise typer.Exit(run_demo(out, console))


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What is queued, sent, retrying, failed; the rules file in force."""
    from notifier.database import connect
    from notifier.inspection import status
    from notifier.timing import utcnow

    settings = _settings()
    now = utcnow()
    with connect(settings) as conn:
        report = status(conn, now)
    if as_json:
        print(json.dumps({**report.as_dict(), "settings": settings.describe()}, indent=2))
        return
    table = Table(title="notifications by state")
    table.add_column("state")
    table.add_column("count", justify="right")
    for state, count in report.by_state.items():
        table.add_row(state, str(count))
    console.print(table)
    rules = Table(title="by rule")
    rules.add_column("rule")
    states = list(report.by_state)
    for state in states:
        rules.add_column(state, justify="right")
    for rule, counts in sorted(report.by_rule.items()):
        rules.add_row(rule, *(str(counts.get(state, 0)) for state in states))
    console.print(rules)
    age = _age(now, report.oldest_queued_due)
    console.print(f"oldest due message waiting: {age}; sent in the last minute: {report.sent_last_minute}")
    for key, value in sorted(report.published.items()):
        console.print(f"{key}: {value or '-'}", markup=False, highlight=False)
    console.print(f"database: {settings.describe()['database_url']}", markup=False, highlight=False)
    console.print(f"smtp: {settings.describe()['smtp_url']}", markup=False, highlight=False)


def _age(now: datetime, moment: datetime | None) -> str:
    if moment is None:
        return "none"
    seconds = int((now - moment).total_seconds())
    return f"{seconds // 3600}h {seconds % 3600 // 60}m {seconds % 60}s"


@app.command("history")
def history_command(
    customer: Annotated[str | None, typer.Option(help="The customer's email address.")] = None,
    order: Annotated[int | None, typer.Option(help="An order id.")] = None,
    case: Annotated[int | None, typer.Option(help="A case id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What a customer, order or case was sent, when, and why a rule did not send."""
    from notifier.database import connect
    from notifier.inspection import history

    if sum(x is not None for x in (customer, order, case)) != 1:
        errors.print("give exactly one of --customer EMAIL, --order ID, --case ID")
        raise typer.Exit(2)
    settings = _settings()
    with connect(settings) as conn:
        entries = history(conn, order=order, case=case, customer_email=customer)
    if as_json:
        print(json.dumps([entry.as_dict() for entry in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        console.print("nothing was sent or planned for that yet")
        return
    for entry in entries:
        _print_entry(entry)


def _print_entry(entry: Any) -> None:
    """Two lines per notification: what and when, then the why (or the server's reply)."""
    state = entry.state + (f" ({entry.reason})" if entry.reason else "")
    console.print(
        f"{entry.due_at:%Y-%m-%d %H:%M} UTC  {entry.rule:<22} {state:<22} to {entry.recipient or '-'}"
        f"  [{entry.event}]",
        markup=False,
        highlight=False,
    )
    if entry.state == "sent":
        why = f"sent {entry.sent_at:%Y-%m-%d %H:%M:%S} UTC, {entry.smtp_reply or ''}, {entry.message_id}"
    elif entry.state == "queued":
        why = f"waiting until {entry.due_at:%Y-%m-%d %H:%M} UTC"
    else:
        why = entry.detail or entry.smtp_reply or ""
    if entry.subject:
        why = f'"{entry.subject}" - {why}'
    console.print(f"{'':22}{why}", markup=False, highlight=False)


@app.command("web")
def web_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8025,
) -> None:
    """Serve the links in emails (one-click unsubscribe, "not solved") and the preview pages."""
    from notifier.web import serve

    serve(_settings(), host, port)


def main() -> None:
    app()
