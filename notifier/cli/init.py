"""`notifier init [DIR]`: start a new deployment (tools/starter.py writes the files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from notifier.cli.output import console, errors
from notifier.errors import EXIT_INVALID


def init_command(
    folder: Annotated[
        Path, typer.Argument(help="Where to write rules.yaml, templates/ and notifier.toml.")
    ] = Path("."),
) -> None:
    """Start a deployment: the shipped rules.yaml and templates/, and a commented notifier.toml.

    Never overwrites: if any of the three exists, nothing is written."""
    from notifier.tools.starter import start_deployment

    started = start_deployment(folder)
    if started.in_the_way:
        names = ", ".join(str(path) for path in started.in_the_way)
        errors.print(
            f"[red]nothing written:[/red] {names} already exist(s). "
            "Move them aside, or give another folder: notifier init DIR",
            highlight=False,
        )
        raise typer.Exit(EXIT_INVALID)
    for path in started.written:
        console.print(f"wrote {path}{'/' if path.is_dir() else ''}", markup=False, highlight=False)
    where = "" if folder.resolve() == Path.cwd().resolve() else f"cd {folder} && "
    console.print(
        f"next: {where}notifier check   (then edit rules.yaml and templates/; "
        "notifier.toml says where the database and the SMTP server are)",
        markup=False,
        highlight=False,
    )
