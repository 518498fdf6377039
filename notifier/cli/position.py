"""`notifier position show` and `notifier position set SOURCE ID`: how far each event table
has been read, and moving that on purpose (after switching from views to trigger tables, say)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from notifier.cli.options import read_settings
from notifier.cli.output import errors, print_json, say
from notifier.errors import EXIT_INVALID

if TYPE_CHECKING:
    from sqlalchemy import Connection

EXIT_USAGE = 2
SOURCES = ("order", "product", "case")

app = typer.Typer(
    help="Each event table's read position: show it, or move it on purpose.", no_args_is_help=True
)


def _source(text: str) -> str:
    """'order', 'order.', or the table's name 'order_events' -> 'order'."""
    name = text.strip().lower().removesuffix("_events").removesuffix(".")
    if name not in SOURCES:
        errors.print(
            f"there is no event source {text!r}; use one of {', '.join(SOURCES)} "
            "(or its table: order_events, product_events, case_events)",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_USAGE)
    return name


def _ready(conn: Connection) -> None:
    import sqlalchemy as sa

    present = sa.inspect(conn).has_table("notifier_cursors")
    conn.rollback()  # the look is a transaction of its own; `set` begins its own after
    if not present:
        errors.print("notifier's tables are not there yet: run notifier init-db first")
        raise typer.Exit(EXIT_INVALID)


@app.command("show")
def show_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per event table: the read position, the highest id present, unread events and open gaps."""
    from notifier.db.engine import connect
    from notifier.db.positions import positions

    with connect(read_settings()) as conn:
        _ready(conn)
        found = positions(conn)
    if as_json:
        print_json([p.as_dict() for p in found])
        return
    for p in found:
        if not p.present:
            say(f"{p.source}: no {p.table} table or view here; position {p.position}")
            continue
        highest = "empty" if p.highest is None else f"highest id {p.highest}"
        read = (
            "not looked at yet" if p.updated_at is None else f"last looked {p.updated_at:%Y-%m-%d %H:%M} UTC"
        )
        behind = (
            " - ABOVE every id present: new events with lower ids are never read"
            if (p.highest is not None and p.position > p.highest)
            else ""
        )
        say(
            f"{p.source}: read up to id {p.position} ({read}); {p.table} {highest}; "
            f"{p.unread} unread, {p.gaps} gap(s) looked for again{behind}"
        )


@app.command("set")
def set_command(
    source: Annotated[str, typer.Argument(help="order, product or case (or order_events, ...).")],
    event_id: Annotated[
        int, typer.Argument(metavar="ID", help="The new position: ids up to it count as read.")
    ],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say how many events would be skipped or read again; change nothing."),
    ] = False,
) -> None:
    """Move a read position: forward skips events for good; back reads them again."""
    from notifier.core.timing import utcnow
    from notifier.db.engine import connect
    from notifier.db.positions import move, plan_move

    name = _source(source)
    if event_id < 0:
        errors.print("the position is an event id: 0 or more (0 reads the table from its start)")
        raise typer.Exit(EXIT_USAGE)
    with connect(read_settings()) as conn:
        _ready(conn)
        if dry_run:
            planned = plan_move(conn, name, event_id)
            conn.rollback()
        else:
            with conn.begin():
                planned = move(conn, name, event_id, utcnow())
    prefix = "would move" if dry_run else "moved"
    say(f"{prefix} the {name} read position from {planned.old} to {planned.new}")
    if planned.forward:
        say(
            f"{planned.skipped} event(s) in {planned.table} with ids {planned.old + 1}-{planned.new} "
            f"{'would be' if dry_run else 'are'} skipped: never evaluated, no email for them"
        )
    elif planned.new < planned.old:
        say(
            f"warning: {planned.reread} event(s) in {planned.table} with ids {planned.new + 1}-{planned.old} "
            f"{'would be' if dry_run else 'are'} read again. Rules that already decided them send no repeat "
            "(the outbox keeps one notification per rule and event); a rule added or renamed since "
            "decides them now and may send, unless max_age finds them too old"
        )
    if planned.highest is not None and planned.new > planned.highest:
        say(f"note: {planned.new} is above the highest id in {planned.table} ({planned.highest})")
    if dry_run:
        say("dry run: nothing changed")
