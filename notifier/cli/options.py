"""The global options (before the command), and the settings every command reads through them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

from notifier import __version__
from notifier.cli.failures import Verbosity
from notifier.cli.output import console, errors
from notifier.config.settings import Settings, load_settings
from notifier.errors import EXIT_INVALID, ConfigError

_VALUE_NAMES = {"int": "N", "list[int]": "N", "Path": "PATH", "float": "NUMBER"}  # else TEXT


def _tidy(params: list[Any]) -> None:
    """Help without type noise: a flag takes no value, so none is shown after it ('<bool>'),
    and a value is named for what it is (ID, FILE) rather than its Python type ('<str>').
    (Typer carries its own copy of click, so the parameters are told apart by their fields.)"""
    for param in params:
        if param.param_type_name == "argument":
            param.metavar = param.metavar or param.name.upper()  # 'Usage: notifier preview TEMPLATE'
            # Its name says what it is; Typer would add '<str>' beside it (no setting for that).
            param.display_type_rich = lambda ctx: None
            continue
        if param.metavar is not None:
            continue
        if param.is_flag or param.count:
            param.metavar = ""
            param.show_default = False
        else:
            param.metavar = _VALUE_NAMES.get(param.bare_type(), "TEXT")


class HelpCommand(TyperCommand):
    """A command whose --help shows values by name and flags bare (see _tidy)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _tidy([option] if option is not None else [])
        return option


class HelpGroup(TyperGroup):
    """A group (`notifier`, `notifier bounces`, ...): its options shown the same way, and the
    commands of a Typer app added to it (add_typer) made HelpCommands, so they are too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self.params)
        for command in self.commands.values():
            if type(command) is TyperCommand:  # same fields, only the help differs
                command.__class__ = HelpCommand
                _tidy(command.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _tidy([option] if option is not None else [])
        return option


class State:
    """Global options, kept between the callback and the command it precedes."""

    overrides: ClassVar[dict[str, Any]] = {}
    config_file: ClassVar[Path | None] = None


def read_settings() -> Settings:
    """The settings: these options over the environment over notifier.toml; exit 1 if invalid."""
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


def main_options(
    database_url: Annotated[
        str | None, typer.Option(metavar="URL", help="Database URL (env NOTIFIER_DATABASE_URL).")
    ] = None,
    smtp_url: Annotated[
        str | None, typer.Option(metavar="URL", help="SMTP URL (env NOTIFIER_SMTP_URL).")
    ] = None,
    rules: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Rules file (env NOTIFIER_RULES).")
    ] = None,
    templates: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Templates folder (env NOTIFIER_TEMPLATES).")
    ] = None,
    capture: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Capture mapping: shop changes -> events (env NOTIFIER_CAPTURE)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(metavar="FILE", help="A notifier.toml to read settings from.")
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail: -v, or -vv for debug logs.")
    ] = 0,
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
        "capture": capture,
    }
    State.config_file = config
    Verbosity.level = verbose
    _setup_logging(verbose, quiet)


def order_id(settings: Settings, given: str) -> int:
    """The order id for `--order`, an id or the shop's order number (db.order_number.find_order);
    a number read as an id is said in one line, on stderr so that --json stays JSON."""
    from notifier.db.engine import connect
    from notifier.db.order_number import find_order

    with connect(settings) as conn:
        found = find_order(conn, given)
    if found.note:
        errors.print(found.note, markup=False, highlight=False)
    if found.id is None:
        raise typer.Exit(EXIT_INVALID)
    return found.id
