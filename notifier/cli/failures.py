"""The one place where an error that reached the command line becomes plain words.

A user's mistake (a file that is not there, a database URL that is not one, a database that
does not answer, a template that fails) is told in a line or two: what is wrong and what to
do, with the exit code README documents. Anything else is a bug: one line saying so, and `-v`
prints the traceback for the report.

    1   invalid input (settings, rules, templates, a file that cannot be read)
    70  an unexpected error in notifier itself (a bug: run again with -v and report it)
    75  the database does not answer (nothing is lost: try again when it is up)
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

import sqlalchemy as sa

from notifier.cli.output import errors, print_problems
from notifier.config.settings import DATABASE_URL_HINT
from notifier.errors import EXIT_INVALID, ConfigError, DatabaseUnavailable, NotifierError, RulesError

EXIT_BUG = 70  # EX_SOFTWARE
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL: also `run --once` when the SMTP server cannot be reached
EXIT_INTERRUPTED = 130


class Verbosity:
    """-v, set by the global options; how much a failure shows."""

    level = 0


def guarded(run: Callable[[], object]) -> None:
    """Run the command line; turn any error that escapes it into words and an exit code."""
    try:
        run()
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    code, words = explain(exc)
    if isinstance(exc, RulesError):
        print_problems(exc)
    else:
        errors.print(words, markup=False, highlight=False)
    if Verbosity.level > 0:
        traceback.print_exception(exc, file=sys.stderr)
    elif code == EXIT_BUG:
        errors.print("run the same command with -v to see the traceback, and include it in a bug report")
    sys.exit(code)


def explain(exc: BaseException) -> tuple[int, str]:
    """(exit code, what is wrong and what to do) for an error that reached the command line."""
    if isinstance(exc, RulesError):
        return EXIT_INVALID, "the rules or templates are not valid"
    if isinstance(
        exc, DatabaseUnavailable | sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.ProgrammingError
    ):
        return _database(exc)
    if isinstance(exc, sa.exc.ArgumentError):
        return EXIT_INVALID, (
            f"the database URL cannot be read ({_first_line(exc)}); {DATABASE_URL_HINT}"
        )
    if isinstance(exc, ConfigError):
        return EXIT_INVALID, f"configuration error: {exc}"
    if isinstance(exc, NotifierError):
        return EXIT_INVALID, str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return EXIT_INVALID, f"{exc.filename}: {exc.strerror or exc}"
    return EXIT_BUG, f"notifier failed unexpectedly: {type(exc).__name__}: {_first_line(exc)}"


def _database(exc: BaseException) -> tuple[int, str]:
    cause = _first_line(getattr(exc, "orig", None) or exc)
    postgres = "relation" in cause and "does not exist" in cause
    missing = postgres or ("Table" in cause and "doesn't exist" in cause)  # MySQL
    if "no such table" in cause or missing:
        return EXIT_INVALID, (
            f"the database does not have notifier's tables ({cause}): is --database-url the order "
            "system's database? notifier init-db creates the tables"
        )
    if "Unknown database" in cause:  # MariaDB / MySQL: the server answers, the database is not there
        return EXIT_INVALID, (
            f"the database named in --database-url does not exist ({cause}): create it "
            "(CREATE DATABASE name CHARACTER SET utf8mb4), then notifier init-db"
        )
    if "unable to open database file" in cause:
        return EXIT_INVALID, (
            f"the SQLite database cannot be opened ({cause}): check the folder in --database-url "
            "exists and can be written"
        )
    return EXIT_TEMPFAIL, (
        f"the database does not answer: {cause}. Check it is running and that --database-url "
        "(or NOTIFIER_DATABASE_URL) points at it; nothing was lost, try again"
    )


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
