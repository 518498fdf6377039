"""The commands that set up and run notifier: init-db, run, check, preview, demo, web."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from notifier.cli.options import State, order_id, read_settings
from notifier.cli.output import console, errors, print_problems
from notifier.errors import EXIT_INVALID, ConfigError, NotifierError, RulesError


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

    settings = read_settings()
    engine = make_engine(settings.database_url.reveal())
    if notify_trigger and engine.dialect.name != "postgresql":
        errors.print(
            "--notify-trigger needs PostgreSQL (LISTEN/NOTIFY); SQLite and MariaDB / MySQL have "
            "nothing like it, and their daemons poll for new events (poll_interval): nothing was changed"
        )
        raise typer.Exit(2)
    created = init_db(engine)
    if created:
        console.print(f"created {len(created)} table(s): {', '.join(created)}")
    else:
        console.print("all tables already exist; nothing to create")
    console.print(f"notifier tables at revision {schema_revision(engine)}")
    if notify_trigger:
        from notifier.db.wakeup import event_views, install_trigger

        with engine.connect() as conn:
            views = event_views(conn)
        installed = install_trigger(engine)
        if installed:
            console.print(f"wake-up trigger installed on {', '.join(installed)}")
        if views:
            errors.print(
                f"no wake-up trigger on {', '.join(views)}: a view, where a trigger never fires (the order "
                "system writes the tables under it). Put it on those tables: CREATE TRIGGER notifier_wake "
                "AFTER INSERT ON <table> FOR EACH STATEMENT EXECUTE FUNCTION notifier_wake(); "
                "until then the daemons poll",
                markup=False,
                highlight=False,
            )
            engine.dispose()
            raise typer.Exit(EXIT_INVALID)
    engine.dispose()


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
    settings = read_settings()
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
        print_problems(exc)
        raise typer.Exit(EXIT_INVALID) from exc
    except (ConfigError, NotifierError) as exc:
        errors.print(f"[red]notifier cannot start:[/red] {exc}")
        raise typer.Exit(EXIT_INVALID) from exc


def check_command() -> None:
    """Validate rules.yaml and render every template in every locale with sample data."""
    from notifier.db.locales import customer_locales
    from notifier.tools.capture_check import check_capture
    from notifier.tools.checking import check_all, check_database

    settings = read_settings()
    database, notes, readable = check_database(
        settings.database_url.reveal(), settings.rules, settings.capture
    )
    # The languages customers actually use, when the database can be read; else the shipped ones.
    locales = customer_locales(settings.database_url.reveal()) if readable else None
    problems, summary = check_all(
        settings.rules,
        settings.templates,
        locales=locales,
        has_secret=settings.secret_key is not None,
        settings=settings,
    )
    capture_problems, capture_summary = check_capture(settings)
    problems = [*problems, *capture_problems]
    for line in [*summary, *capture_summary, *notes]:
        console.print(line, markup=False, highlight=False)
    if problems:
        print_problems(RulesError(problems))
    if database:
        errors.print(f"[red]{len(database)} problem(s) in the database:[/red]")
        for line in database:
            errors.print(f"  {line}", markup=False, highlight=False)
    if problems or database:
        raise typer.Exit(EXIT_INVALID)
    console.print("[green]OK[/green]")


def preview_command(
    template: Annotated[str, typer.Argument(help="Template name, e.g. order_confirmation.")],
    locale: Annotated[str, typer.Option(help="en, zh-CN or zh-TW.")] = "en",
    order: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Use this real order (its id or the shop's order number)."),
    ] = None,
    case: Annotated[int | None, typer.Option(help="Use this real case.")] = None,
    product: Annotated[int | None, typer.Option(help="Use this real product.")] = None,
    html: Annotated[
        bool, typer.Option("--html", help="Print the HTML part instead of the text part.")
    ] = False,
) -> None:
    """Render one message and print its subject and text (or HTML) part."""
    from notifier.tools.checking import preview

    settings = read_settings()
    _refuse_misspelt_locale(locale)
    order_key = order_id(settings, order) if order is not None else None
    try:
        lacking: list[str] = []
        rendered = preview(
            settings, template, locale=locale, order=order_key, case=case, product=product, warnings=lacking
        )
    except (NotifierError, LookupError, ValueError) as exc:
        errors.print(f"[red]cannot preview {template}:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from exc
    for warning in lacking:
        errors.print(f"warning: {warning}", markup=False, highlight=False)
    console.print(f"Subject: {rendered.subject}", markup=False, highlight=False)
    console.print()
    console.print(rendered.html if html else rendered.text, markup=False, highlight=False)


def _refuse_misspelt_locale(locale: str) -> None:
    """`--locale zh-TV` is a typo for zh-TW, not a wish for zh-CN: say so instead of previewing
    the wrong language. A locale read as written (`zh_TW`, `en-GB`, `fr`) previews as customers get it."""
    from notifier.core.locale import LOCALES, normalize_locale
    from notifier.core.suggest import closest

    near = closest(locale, LOCALES)
    if near is not None and normalize_locale(locale) != near:
        errors.print(f"[red]unknown locale {locale!r}[/red]; did you mean {near!r}?", highlight=False)
        raise typer.Exit(EXIT_INVALID)


def demo_command(
    out: Annotated[Path, typer.Option(help="Folder for the demo database and the .eml files.")] = Path(
        "demo-out"
    ),
) -> None:
    """Run the embedded demo: sample orders in three languages, a local mail catcher, a summary."""
    from notifier.tools.demo import run_demo

    raise typer.Exit(run_demo(out, console))


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
    editor: Annotated[
        bool | None,
        typer.Option(
            "--editor/--no-editor",
            help="Serve the template editor at /edit, behind its own sign-in (env NOTIFIER_EDITOR; off "
            "by default). Refused on a public address without TLS (NOTIFIER_WEB_TLS_CERT/_KEY) or "
            "NOTIFIER_WEB_PROXY_TLS=true.",
        ),
    ] = None,
    add_user: Annotated[
        str | None,
        typer.Option(
            "--add-user",
            metavar="NAME",
            help="Add an editor user (or change their password) in NOTIFIER_EDITOR_USERS, then exit.",
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="With --add-user: read the password from standard input.")
    ] = False,
) -> None:
    """Serve the links in emails (one-click unsubscribe, "not solved"), /metrics, the
    template gallery for marketing (/preview) and, when turned on, the template editor (/edit).

    Example: notifier web --add-user maria && notifier web --editor"""
    import dataclasses
    import ipaddress
    import sys

    from notifier.tools.web import serve
    from notifier.tools.web_auth import add_user as add_editor

    settings = read_settings()
    if add_user is not None:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt(f"Password for {add_user}", hide_input=True, confirmation_prompt=True)
        try:
            new = add_editor(settings.editor_users, add_user, password)
        except ConfigError as exc:
            errors.print(f"[red]not added:[/red] {exc}", highlight=False)
            raise typer.Exit(EXIT_INVALID) from exc
        done = "added" if new else "changed the password of"
        console.print(f"{done} {add_user} in {settings.editor_users}")
        return
    if editor is not None:
        settings = dataclasses.replace(settings, editor=editor)
    if preview is None:
        try:
            preview = ipaddress.ip_address(host).is_loopback
        except ValueError:
            preview = host == "localhost"
    try:
        serve(settings, host, port, preview=preview)
    except ConfigError as exc:
        errors.print(f"[red]cannot start:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from exc
