"""The global options (before the command), and the settings every command reads through them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer

from notifier import __version__
from notifier.cli.failures import Verbosity
from notifier.cli.output import console, errors
from notifier.config.settings import Settings, load_settings
from notifier.errors import EXIT_INVALID, ConfigError


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
    Verbosity.level = verbose
    _setup_logging(verbose, quiet)
