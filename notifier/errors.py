"""The exceptions notifier raises on purpose.

    NotifierError                 root; str() falls back to the class docstring
    ├── ConfigError               a setting that cannot be used (NOTIFIER_*, notifier.toml)
    ├── RulesError                rules.yaml is not valid; carries every problem with file:line
    ├── NoDatabase                a command that reads was pointed at a database that is not there
    └── DatabaseUnavailable       the database cannot be reached right now (retry later)

Template problems are `notifier.compose.rendering.TemplateError`; SMTP problems never raise past
`notifier.smtp` (its one table: notifier.smtp.refusals), they become a `SendResult`.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_INVALID = 1  # the exit code of a command whose settings, rules or templates are not valid


class NotifierError(Exception):
    """Something went wrong in notifier."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__ or "")


class ConfigError(NotifierError, ValueError):
    """A setting has a value notifier cannot use."""


class NoDatabase(NotifierError, LookupError):
    """There is no database at that address."""


class DatabaseUnavailable(NotifierError, ConnectionError):
    """The database cannot be reached; notifier will try again."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a file, where it is, and why, in plain words."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class RulesError(NotifierError):
    """The rules file is not valid."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in problems))
