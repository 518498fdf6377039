"""The commands for what comes back: `bounces listen | poll` and `suppressions list | add |
remove | import`. Thin: parse, call, print."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from notifier.cli.options import read_settings
from notifier.cli.output import errors, print_json, say
from notifier.errors import EXIT_INVALID, ConfigError

bounces_app = typer.Typer(
    help="Bounce reports and spam complaints that come back later.", no_args_is_help=True
)
suppressions_app = typer.Typer(
    help="The suppression list: addresses that get no marketing mail.", no_args_is_help=True
)


@bounces_app.command("listen")
def listen_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (route the bounce domain here).")] = 2525,
) -> None:
    """Take bounce reports and complaints by SMTP until SIGTERM/SIGINT: a small mail server
    that the relay's bounce domain (NOTIFIER_BOUNCE_DOMAIN) is routed to."""
    from notifier.db.engine import make_engine
    from notifier.tools.bounces import BounceListener

    settings = read_settings()
    if not settings.bounce_domain:
        errors.print("note: NOTIFIER_BOUNCE_DOMAIN is not set, so mail to any address is taken as a report")
    engine = make_engine(settings.database_url.reveal())
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        listener = BounceListener(engine, settings, host=host, port=port)
        listener.start()
    except OSError as exc:
        errors.print(f"[red]cannot listen on {host}:{port}:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from exc
    domain = f" for @{settings.bounce_domain}" if settings.bounce_domain else ""
    say(f"taking bounce reports on {host}:{listener.port}{domain}")
    try:
        stop.wait()
    finally:
        listener.stop()
        engine.dispose()
    say(listener.taken.words())


@bounces_app.command("poll")
def poll_command(
    every: Annotated[
        str | None, typer.Option(help="Poll again at this interval (e.g. 1m) until SIGTERM; once without.")
    ] = None,
) -> None:
    """Take bounce reports and complaints from the IMAP mailbox of NOTIFIER_BOUNCE_IMAP_URL."""
    from notifier.core.timing import parse_duration
    from notifier.db.engine import make_engine
    from notifier.tools.bounce_mailbox import poll_mailbox

    settings = read_settings()
    try:
        interval = parse_duration(every) if every else None
    except ValueError as exc:
        errors.print(f"[red]--every:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    engine = make_engine(settings.database_url.reveal())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while True:
            say(poll_mailbox(engine, settings).words())
            if interval is None or stop.wait(interval.total_seconds()):
                break
    except ConfigError as exc:
        errors.print(f"[red]cannot poll the bounce mailbox:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from exc
    except OSError as exc:  # imaplib's errors (IMAP4.error) and the network's
        errors.print(f"[red]cannot poll the bounce mailbox:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from exc
    finally:
        engine.dispose()


@suppressions_app.command("list")
def list_command(
    reason: Annotated[str | None, typer.Option(help="Only this reason, e.g. 'hard bounce'.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every suppressed address, with its reason and since when (oldest first)."""
    from notifier.db.engine import connect
    from notifier.db.store.suppressions import list_suppressions

    with connect(read_settings()) as conn:
        found = list_suppressions(conn, reason=reason)
    if as_json:
        print_json([item.as_dict() for item in found])
        return
    for item in found:
        say(f"{item.since:%Y-%m-%d %H:%M} UTC  {item.address:<40} {item.reason}")
    say(f"{len(found)} address(es) suppressed")


@suppressions_app.command("add")
def add_command(
    address: Annotated[str, typer.Argument(help="The email address.")],
    reason: Annotated[str, typer.Option(help="Why, in words kept with it.")] = "added by hand",
) -> None:
    """Put an address on the suppression list: it gets no more marketing mail."""
    from notifier.db.store.suppressions import add_suppression

    checked = _checked(address)
    with _writing() as (conn, now):
        added = add_suppression(conn, checked, reason, now)
    say(f"{checked} suppressed ({reason})" if added else f"{checked} was suppressed already; left as it was")


@suppressions_app.command("remove")
def remove_command(address: Annotated[str, typer.Argument(help="The email address.")]) -> None:
    """Take an address off the suppression list, e.g. when the customer has given consent again
    after unsubscribing. Marketing mail reaches it again if the customer is opted in."""
    from notifier.db.store.suppressions import remove_suppression

    with _writing() as (conn, _now):
        removed = remove_suppression(conn, address)
    if removed is None:
        say(f"{address.strip().lower()} is not on the suppression list; nothing to remove")
        return
    say(f"{removed.address} removed (was: {removed.reason}, since {removed.since:%Y-%m-%d %H:%M} UTC)")


@suppressions_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="A text file, one address per line, or CSV lines 'address,reason' (a header line "
            "'address,reason' is skipped; empty lines and lines starting with # are ignored). "
            "Nothing is imported if any line is not a usable address."
        ),
    ],
    reason: Annotated[str, typer.Option(help="The reason for lines that give none.")] = "imported",
) -> None:
    """Put every address of a file on the suppression list (addresses already there stay as they were)."""
    from notifier.db.store.suppressions import add_suppression
    from notifier.tools.suppression_file import read_suppression_file

    try:
        entries, problems = read_suppression_file(file, reason)
    except (OSError, UnicodeDecodeError) as exc:
        errors.print(f"[red]cannot read {file}:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from exc
    if problems:
        errors.print(f"[red]{file}: nothing imported, {len(problems)} line(s) to correct first:[/red]")
        for problem in problems:
            errors.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(EXIT_INVALID)
    with _writing() as (conn, now):
        added = sum(add_suppression(conn, address, why, now) for address, why in entries)
    say(f"{added} address(es) suppressed, {len(entries) - added} already were")


def _checked(address: str) -> str:
    from notifier.core.addresses import InvalidAddress, check_address

    try:
        return check_address(address).lower()
    except InvalidAddress as exc:
        errors.print(f"[red]not an address notifier can use:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from exc


class _writing:
    """A write transaction on the configured database, and now."""

    def __enter__(self):  # type: ignore[no-untyped-def]
        from notifier.core.timing import utcnow
        from notifier.db.engine import make_engine

        self.engine = make_engine(read_settings().database_url.reveal())
        self._tx = self.engine.begin()
        return self._tx.__enter__(), utcnow()

    def __exit__(self, *exc: object) -> None:
        try:
            self._tx.__exit__(*exc)  # type: ignore[arg-type]
        finally:
            self.engine.dispose()
