"""`notifier capture install | check | remove`: the database triggers that write notifier's
event rows from changes in the shop's own tables, made from the capture mapping
(NOTIFIER_CAPTURE, default capture.yaml; README: Capture: events from the shop's own tables)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from notifier.cli.options import read_settings
from notifier.cli.output import errors, print_problems, say
from notifier.errors import EXIT_INVALID, RulesError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from notifier.core.capture import CaptureMap
    from notifier.db.capture.triggers import Standing

app = typer.Typer(
    help="Triggers that turn changes in the shop's own tables into notifier's events.",
    no_args_is_help=True,
)

MYSQL = ("mysql", "mariadb")  # SQLAlchemy's names for MySQL's and MariaDB's dialects
_DRY_RUN = typer.Option("--dry-run", help="Print the SQL it would run; change nothing.")


def _mapping(path: Path, *, required: bool) -> CaptureMap | None:
    """The mapping; exit 1 with every problem (file:line) when it is not valid, and when there
    is none but one is `required`."""
    from notifier.config.capture_reader import load_capture

    try:
        mapping = load_capture(path)
    except RulesError as exc:
        errors.print(f"[red]the capture mapping {path} is not valid[/red]", highlight=False)
        print_problems(exc)
        raise typer.Exit(EXIT_INVALID) from exc
    if mapping is None and required:
        errors.print(
            f"there is no capture mapping at {path}: write one (README: Capture: events from the "
            "shop's own tables), or name it with --capture or NOTIFIER_CAPTURE",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_INVALID)
    return mapping


def _print_sql(conn: Connection, statements: list[str]) -> None:
    if conn.dialect.name in MYSQL:
        # For the mysql client, whose ';' would otherwise end a trigger's body early.
        say("DELIMITER $$")
        for statement in statements:
            say(f"{statement}$$\n")
        say("DELIMITER ;")
        return
    for statement in statements:
        say(f"{statement};\n")


def _run(conn: Connection, statements: list[str]) -> None:
    """Run them; a refusal (no TRIGGER privilege, say) in words, not as a database that is down."""
    import sqlalchemy as sa

    from notifier.db.capture import triggers

    mysql = conn.dialect.name in MYSQL
    try:
        triggers.run(conn, statements)
    except sa.exc.DBAPIError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        kept = " beyond the triggers made before it (MySQL commits each one)" if mysql else ""
        errors.print(
            f"the database refused the capture triggers: {cause}. The user needs the privileges README "
            f"lists (Capture: events from the shop's own tables); nothing was changed{kept}",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_INVALID) from exc


def _mismatch(path: Path, exc: RulesError) -> typer.Exit:
    errors.print(f"[red]the capture mapping {path} does not fit this database[/red]", highlight=False)
    print_problems(exc)
    return typer.Exit(EXIT_INVALID)


@app.command("install")
def install_command(dry_run: Annotated[bool, _DRY_RUN] = False) -> None:
    """Install the mapping's triggers: add what is missing, replace what is stale, drop what is extra."""
    from notifier.db.capture import triggers
    from notifier.db.engine import connect

    settings = read_settings()
    mapping = _mapping(settings.capture, required=True)
    assert mapping is not None
    with connect(settings) as conn:
        try:
            found = triggers.standing(conn, mapping)
            statements = triggers.install_statements(conn, mapping)
        except triggers.DatabaseMismatch as exc:
            raise _mismatch(settings.capture, exc) from exc
        if dry_run:
            conn.rollback()
            if statements:
                _print_sql(conn, statements)
            say(f"dry run: nothing changed ({_counts(found)})")
            return
        _run(conn, statements)
        mysql = conn.dialect.name in MYSQL
    states = Counter(item.state.value for item in found)
    if not statements:
        say(f"the triggers of {settings.capture} are installed and matching already: nothing to do")
        return
    say(
        f"installed {states['missing']} trigger(s), replaced {states['stale']}, removed "
        f"{states['extra']}; {states['matching']} matched already ({settings.capture})"
    )
    if mysql:
        say("(MySQL/MariaDB commit each trigger on its own: if this stopped half-way, run install again)")


def _counts(found: list[Standing]) -> str:
    states = Counter(item.state.value for item in found)
    return ", ".join(f"{count} {state}" for state, count in sorted(states.items())) or "no triggers"


@app.command("check")
def check_command() -> None:
    """Say whether the installed triggers match the mapping; exit 1 when they do not."""
    from notifier.core.capture import CaptureMap
    from notifier.db.capture import triggers
    from notifier.db.engine import connect

    settings = read_settings()
    mapping = _mapping(settings.capture, required=False) or CaptureMap(str(settings.capture))
    with connect(settings) as conn:
        try:
            found = triggers.standing(conn, mapping)
        except triggers.DatabaseMismatch as exc:
            raise _mismatch(settings.capture, exc) from exc
        conn.rollback()
    for item in found:
        say(item.words(str(settings.capture)))
    wrong = [item for item in found if item.state != triggers.State.MATCHING]
    if not found:
        say(f"no capture mapping at {settings.capture} and no capture triggers here: nothing to check")
    elif wrong:
        errors.print(
            f"the installed triggers do not match {settings.capture} ({_counts(found)}): "
            "notifier capture install puts them right",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_INVALID)
    else:
        say(f"OK: the {len(found)} trigger(s) of {settings.capture} are installed and matching")


@app.command("remove")
def remove_command(dry_run: Annotated[bool, _DRY_RUN] = False) -> None:
    """Remove every capture trigger from the database (the mapping file is left as it is)."""
    from notifier.db.capture import triggers
    from notifier.db.engine import connect

    settings = read_settings()
    with connect(settings) as conn:
        installed = triggers.dialect_for(conn).installed(conn)
        statements = triggers.remove_statements(conn)
        if dry_run:
            conn.rollback()
            if statements:
                _print_sql(conn, statements)
            say(f"dry run: nothing changed ({len(installed)} capture trigger(s) here)")
            return
        _run(conn, statements)
    if not installed:
        say("there are no capture triggers here: nothing to remove")
        return
    say(f"removed {len(installed)} capture trigger(s): {', '.join(name for name, _ in installed)}")
