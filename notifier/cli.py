"""The command line (SPEC §6). Thin: parse options, call the pipeline, print.

Exit codes:

    0   done (also: nothing matched, nothing to do)
    1   invalid input: rules, templates or settings (the message says which file, which
        line and why), an id that is not what the command needs, or a question answered no
    2   bad usage: an unknown option, a missing or malformed argument
    75  `run --once` could not reach the SMTP server (nothing lost: the messages stay queued)

Output is for people on a terminal (Rich tables, colours only when stdout is a terminal);
every `--json` prints plain JSON on stdout and nothing else there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from notifier import __version__
from notifier.config.settings import Settings, load_settings
from notifier.errors import EXIT_INVALID, ConfigError, NotifierError, RulesError

app = typer.Typer(
    help="notifier: tells customers what is happening with their orders before they ask.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

EXIT_USAGE = 2
CONFIRM_ABOVE = 5  # retry and resend ask before touching more than this many notifications


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
    from notifier.logs import configure

    configure(logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO))


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
    from notifier.db.engine import init_db, make_engine, schema_revision

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
        from notifier.db.wakeup import install_trigger

        console.print(f"wake-up trigger installed on {', '.join(install_trigger(engine))}")
    engine.dispose()


@app.command("run")
def run_command(
    once: Annotated[bool, typer.Option("--once", help="Do everything due now, then exit.")] = False,
    poll_interval: Annotated[str | None, typer.Option(help="How often to look for work, e.g. 2s.")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port at /metrics (docs/metrics.md).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Sending processes (env NOTIFIER_WORKERS, default 1): one per core sends faster."),
    ] = None,
) -> None:
    """Run the daemon: poll events, evaluate rules, send what is due, until SIGTERM/SIGINT."""
    from notifier.run.workers import Workers

    if poll_interval is not None:
        State.overrides["poll_interval"] = poll_interval
    if workers is not None:
        State.overrides["workers"] = str(workers)
    settings = _settings()
    # The workers first: they load (a second or two) while this process does.
    helpers = Workers.start(settings, once=once)
    from notifier.run.daemon import run_forever, run_once, use_one_malloc_arena

    use_one_malloc_arena()
    try:
        if metrics_port is not None:
            from notifier.db.engine import make_engine
            from notifier.run.metrics import serve_metrics

            serve_metrics(metrics_port, engine=make_engine(settings.database_url.reveal()))
    except BaseException:
        helpers.reap()
        raise
    try:
        if once:
            code, total = asyncio.run(run_once(settings, helpers))
            console.print(
                f"{total.events} event(s) read, {total.sent} sent, {total.retrying} to retry, "
                f"{total.failed} failed, {total.skipped} skipped"
            )
            raise typer.Exit(code)
        raise typer.Exit(asyncio.run(run_forever(settings, helpers)))
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
    from notifier.compose.contract import customer_locales
    from notifier.tools.checking import check_all

    settings = _settings()
    # The languages customers actually use, when the database can be read; else the shipped ones.
    locales = customer_locales(settings.database_url.reveal())
    problems, summary = check_all(settings.rules, settings.templates, locales=locales)
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
    from notifier.tools.checking import preview

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
    from notifier.tools.demo import run_demo

    raise typer.Exit(run_demo(out, console))


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What is queued, sent, retrying, failed; SMTP health; the rules in force and the last reload."""
    from notifier.core.timing import utcnow
    from notifier.db.engine import connect
    from notifier.tools.status import status

    settings = _settings()
    now = utcnow()
    with connect(settings) as conn:
        report = status(conn, now)
    if as_json:
        _print_json({**report.as_dict(), "settings": settings.describe()})
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
    _say(f"oldest due message waiting: {age}; sent in the last minute: {report.sent_last_minute}")
    if report.rule_errors_line:
        _say(report.rule_errors_line)
    _say(_smtp_line(report.as_dict()["smtp"]))
    for line in _config_lines(report.as_dict(), settings):
        _say(line)
    _say("settings:")
    for key, value in settings.describe().items():
        _say(f"  {key}: {value}")


def _say(text: str) -> None:
    """Print text as it is: values from the database are never read as Rich markup."""
    console.print(text, markup=False, highlight=False)


def _print_json(data: Any) -> None:
    """Plain JSON on stdout: no colours, no markup, whatever the terminal."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _smtp_line(smtp: dict[str, Any]) -> str:
    last = smtp["last_attempt"]
    tried = f"last hand-over {last['at']}: {last['outcome']} {last['code'] or ''}".rstrip() if last else ""
    if smtp["healthy"] is False:
        return f"SMTP: UNUSABLE since {smtp['last_error_at']}: {smtp['last_error']}" + (
            f" ({tried})" if tried else ""
        )
    if smtp["healthy"] is None:
        return "SMTP: nothing handed over yet"
    error = f"; last error {smtp['last_error_at']}: {smtp['last_error']}" if smtp["last_error"] else ""
    return f"SMTP: ok ({tried}){error}"


def _config_lines(report: dict[str, Any], settings: Settings) -> list[str]:
    rules, reload = report["rules"], report["reload"]
    if rules["path"] is None:
        return [
            f"rules in force: no daemon has started on this database yet (configured: {settings.rules}, "
            f"templates {settings.templates})"
        ]
    lines = [
        f"rules in force: {rules['path']} (digest {rules['digest']}, {rules['count']} rules); "
        f"templates: {rules['templates']}"
    ]
    if reload["ok"]:
        lines.append(f"last reload: ok ({reload['at']})")
    else:
        lines.append(
            f"last reload: FAILED ({reload['at']}); the last good rules stay in force:\n{reload['error']}"
        )
    return lines


def _age(now: datetime, moment: datetime | None) -> str:
    if moment is None:
        return "none"
    seconds = int((now - moment).total_seconds())
    return f"{seconds // 3600}h {seconds % 3600 // 60}m {seconds % 60}s"


def _rules_to_explain(settings: Settings) -> Any:
    """The rules file as written (templates not checked), or None with a note when unreadable."""
    from notifier.config.rules_file import load_rules

    try:
        return load_rules(settings.rules, template_exists=lambda _name: True)
    except (RulesError, OSError) as exc:
        errors.print(
            f"note: {settings.rules} could not be read, so rules that planned nothing are not listed: {exc}",
            markup=False,
            highlight=False,
        )
        return None


@app.command("history")
def history_command(
    customer: Annotated[str | None, typer.Option(help="The customer's email address.")] = None,
    order: Annotated[int | None, typer.Option(help="An order id.")] = None,
    case: Annotated[int | None, typer.Option(help="A case id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What a customer, order or case was sent, when, and why each rule did or did not send."""
    from notifier.core.timing import utcnow
    from notifier.db.engine import connect
    from notifier.tools.history import history

    if sum(x is not None for x in (customer, order, case)) != 1:
        errors.print("give exactly one of --customer EMAIL, --order ID, --case ID")
        raise typer.Exit(EXIT_USAGE)
    settings = _settings()
    rules = _rules_to_explain(settings)
    with connect(settings) as conn:
        entries = history(conn, order=order, case=case, customer_email=customer, rules=rules, now=utcnow())
    if as_json:
        _print_json([entry.as_dict() for entry in entries])
        return
    if not entries:
        _say("nothing was sent or planned for that yet")
        return
    for entry in entries:
        _print_entry(entry)


def _print_entry(entry: Any) -> None:
    """Two lines per rule and event: what and when, then the why (or the server's reply)."""
    state = entry.state + (f" ({entry.reason})" if entry.reason else "")
    moment = f"{entry.moment:%Y-%m-%d %H:%M} UTC" if entry.moment else "-"
    _say(
        f"{moment:<20}  {entry.rule:<22} {state:<22} to {entry.recipient or '-'}"
        f"  [{entry.event or 'no event yet'}]"
    )
    why = entry.explanation
    if entry.subject:
        why = f'"{entry.subject}" - {why}'
    _say(f"{'':22}{why}")


def _since(text: str, now: datetime) -> datetime:
    from notifier.tools.replay import parse_since

    try:
        return parse_since(text, now)
    except ValueError as exc:
        errors.print(f"--since: {exc}", markup=False, highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc


def _confirmed(count: int, question: str, yes: bool) -> bool:
    """Ask before touching more than CONFIRM_ABOVE notifications, unless --yes."""
    if count <= CONFIRM_ABOVE or yes:
        return True
    return typer.confirm(question, default=False)


@app.command("retry")
def retry_command(
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="A failed notification's id (repeat for more).")
    ] = None,
    rule: Annotated[str | None, typer.Option(help="Only failed notifications of this rule.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only those that failed within this long (2d, 12h) or since a date.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be re-queued; change nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before re-queueing more than 5.")
    ] = False,
) -> None:
    """Put failed notifications back in the queue to go out at once (the same message again)."""
    from notifier.core.timing import utcnow
    from notifier.db import store
    from notifier.db.engine import connect
    from notifier.tools.status import failed_notifications, notifications_by_id

    now = utcnow()
    start = _since(since, now) if since is not None else None
    settings = _settings()
    with connect(settings) as conn:
        chosen = failed_notifications(conn, ids=ids or (), rule=rule, since=start)
        missing = sorted(set(ids or ()) - {item.id for item in chosen})
        others = notifications_by_id(conn, missing)
        conn.rollback()
        for wrong in missing:
            found = others.get(wrong)
            if found is None:
                errors.print(f"there is no notification {wrong}")
            elif found.state == "sent":
                errors.print(
                    f"notification {wrong} was sent, not failed; to send it again: notifier resend {wrong}"
                )
            elif found.state == "failed":
                errors.print(f"notification {wrong} failed but does not match --rule/--since")
            else:
                errors.print(f"notification {wrong} is {found.state}, not failed")
        if not chosen:
            _say("no failed notification matches; nothing changed")
            raise typer.Exit(EXIT_INVALID if missing else 0)
        for item in chosen:
            why = item.detail or item.reason
            _say(f"  #{item.id} {item.rule} to {item.recipient or '-'} [{item.event}]: {why}")
        if dry_run:
            _say(f"would re-queue {len(chosen)} failed notification(s) (dry run: nothing changed)")
            return
        if not _confirmed(len(chosen), f"Re-queue these {len(chosen)} failed notifications?", yes):
            _say("nothing changed")
            raise typer.Exit(EXIT_INVALID)
        with conn.begin():
            count = store.requeue_failed(conn, [item.id for item in chosen], now)
    _say(f"re-queued {count} failed notification(s); they go out on the daemon's next poll")


@app.command("resend")
def resend_command(
    ids: Annotated[list[int], typer.Argument(help="The id(s) of sent notifications to send again.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be resent; change nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before resending more than 5.")
    ] = False,
) -> None:
    """Send a fresh copy of sent notifications on purpose (rendered again, with a new Message-ID)."""
    from notifier.core.timing import utcnow
    from notifier.db import store
    from notifier.db.engine import connect
    from notifier.tools.status import notifications_by_id

    now = utcnow()
    settings = _settings()
    with connect(settings) as conn:
        found = notifications_by_id(conn, ids)
        conn.rollback()
        wrong = False
        for wanted in dict.fromkeys(ids):
            item = found.get(wanted)
            if item is None:
                errors.print(f"there is no notification {wanted}")
                wrong = True
            elif item.state != "sent":
                hint = f"; to try it again: notifier retry --id {wanted}" if item.state == "failed" else ""
                errors.print(
                    f"notification {wanted} is {item.state}, not sent: only a sent one is resent{hint}"
                )
                wrong = True
        if wrong:
            raise typer.Exit(EXIT_INVALID)
        chosen = [found[i] for i in dict.fromkeys(ids)]
        for item in chosen:
            _say(f"  #{item.id} {item.rule} to {item.recipient or '-'} [{item.event}], sent {item.at}")
        if dry_run:
            _say(f"would resend {len(chosen)} notification(s) (dry run: nothing changed)")
            return
        if not _confirmed(len(chosen), f"Resend these {len(chosen)} notifications?", yes):
            _say("nothing changed")
            raise typer.Exit(EXIT_INVALID)
        with conn.begin():
            made = [(item, store.insert_resend(conn, item.id, now)) for item in chosen]
    for item, new in made:
        _say(f"queued #{new}: a resend of #{item.id} ({item.rule} to {item.recipient or '-'})")
    _say(f"{len(made)} resend(s) queued; they go out on the daemon's next poll")


@app.command("simulate")
def simulate_command(
    rules: Annotated[Path, typer.Option("--rules", help="The candidate rules file to try.")],
    since: Annotated[str, typer.Option(help="How far back to replay: 30d, 12h, or a date.")] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Replay past events against candidate rules: what WOULD have been sent, beside what WAS.

    Reads only: nothing is written to the database and nothing is sent."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from notifier.config.live import load_checked
    from notifier.core.timing import utcnow
    from notifier.tools.replay import count_events, read_only, simulate

    now = utcnow()
    start = _since(since, now)
    settings = _settings()
    try:
        candidate, _renderer = load_checked(rules, settings.templates)
    except RulesError as exc:
        errors.print(f"[red]the candidate rules are not valid:[/red] {rules}")
        _print_problems(exc)
        raise typer.Exit(EXIT_INVALID) from exc
    current = _rules_to_explain(settings)
    with read_only(settings.database_url.reveal()) as conn:
        total = count_events(conn, start)
        columns = (TextColumn("replaying events"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        quiet = as_json or not errors.is_terminal
        with Progress(*columns, console=errors, transient=True, disable=quiet) as progress:
            task = progress.add_task("replay", total=total)
            replay = simulate(
                conn,
                candidate,
                since=start,
                now=now,
                batch_size=settings.batch_size,
                current=current,
                progress=lambda n: progress.advance(task, n),
            )
    if as_json:
        _print_json(replay.as_dict())
        return
    _print_replay(replay)


def _print_replay(replay: Any) -> None:
    _say(
        f"{replay.events} event(s) from {replay.since:%Y-%m-%d %H:%M} to {replay.until:%Y-%m-%d %H:%M} UTC "
        f"against {replay.rules_file}"
    )
    per_rule = Table(title="per rule: would send (candidate) beside was sent (in force)")
    per_rule.add_column("rule", no_wrap=True)
    per_rule.add_column("candidate", no_wrap=True)
    for name in ("would send", "not due yet", "would skip", "was sent"):
        per_rule.add_column(name, justify="right")
    for name, tally in sorted(replay.rules.items()):
        per_rule.add_row(
            name,
            replay.status.get(name, ""),
            str(tally.would_send),
            str(tally.not_due_yet),
            str(tally.would_skip),
            str(tally.sent),
        )
    console.print(per_rule)
    for name, tally in sorted(replay.rules.items()):
        if tally.skip_reasons:
            reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(tally.skip_reasons.items()))
            _say(f"  {name} would skip: {reasons}")
    per_day = Table(title="per day (UTC)")
    per_day.add_column("day", no_wrap=True)
    per_day.add_column("rule", no_wrap=True)
    for name in ("would send", "would skip", "was sent"):
        per_day.add_column(name, justify="right")
    for (day, rule), tally in sorted(replay.days.items()):
        if tally.would_send or tally.would_skip or tally.sent:
            per_day.add_row(str(day), rule, str(tally.would_send), str(tally.would_skip), str(tally.sent))
    console.print(per_day)


@app.command("report")
def report_command(
    since: Annotated[str, typer.Option(help="The period: 30d, 12h, or a date.")] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per rule: sent, failed, and for order rules how often a case followed within 7 days -
    with the message, and for orders of the same kind without it."""
    from notifier.core.timing import utcnow
    from notifier.tools.replay import read_only
    from notifier.tools.report import report

    now = utcnow()
    start = _since(since, now)
    settings = _settings()
    rules = _rules_to_explain(settings)
    with read_only(settings.database_url.reveal()) as conn:
        rows = report(conn, rules, since=start, now=now)
    if as_json:
        _print_json(
            {"since": start.isoformat(), "until": now.isoformat(), "rules": [r.as_dict() for r in rows]}
        )
        return
    _say(f"since {start:%Y-%m-%d %H:%M} UTC; 'case in 7d': a case opened about the same order within 7 days")
    _say("after the message (told), or after the rule's event for orders that got no such message (not told)")
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("rule", no_wrap=True)
    for name in ("sent", "failed", "told", "case in 7d", "not told", "case in 7d"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row.rule,
            str(row.sent),
            str(row.failed),
            _count(row.messaged_orders),
            _share(row.messaged_with_case, row.rate_with),
            _count(row.unmessaged_orders),
            _share(row.unmessaged_with_case, row.rate_without),
        )
    console.print(table)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _share(count: int | None, rate: float | None) -> str:
    if count is None:
        return "-"
    return f"{count} ({rate:.0%})" if rate is not None else str(count)


@app.command("web")
def web_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8025,
    preview: Annotated[
        bool | None,
        typer.Option(
            "--preview/--no-preview",
            help="Serve the template gallery at /preview. It shows customer data and can send test "
            "mail, so by default it is on only when listening on a loopback address.",
        ),
    ] = None,
) -> None:
    """Serve the links in emails (one-click unsubscribe, "not solved"), /metrics, and the
    template gallery for marketing (/preview)."""
    import ipaddress

    from notifier.tools.web import serve

    if preview is None:
        try:
            preview = ipaddress.ip_address(host).is_loopback
        except ValueError:
            preview = host == "localhost"
    serve(_settings(), host, port, preview=preview)


def main() -> None:
    app()
