"""`notifier check`'s word on the capture mapping (capture.yaml), when there is one: its
problems with file and line; whether it fits the database and the installed triggers match
it; and the rules that can never fire on this database (core.capture.can_never_fire).

A mapping that does not fit the database (a table or column it names is not there) is a
problem; triggers not installed yet are a warning, since `check` runs before deploying and
`notifier capture install` comes after (`notifier capture check` is the one that exits 1).
"""

from __future__ import annotations

import sqlalchemy as sa

from notifier.config.capture_reader import load_capture
from notifier.config.settings import Settings
from notifier.core.capture import OWN_EVENTS, CaptureMap, can_never_fire
from notifier.core.rules import Rule
from notifier.errors import NotifierError, Problem, RulesError

__all__ = ["check_capture"]


def check_capture(settings: Settings) -> tuple[list[Problem], list[str]]:
    """(problems, summary lines with warnings) about the capture mapping; nothing without one."""
    try:
        mapping = load_capture(settings.capture)
    except RulesError as exc:
        return list(exc.problems), []
    if mapping is None:
        return [], []
    summary = [
        f"{settings.capture}: {len(mapping.captures)} capture entries, writing "
        f"{', '.join(sorted(mapping.declared)) or 'nothing'}"
    ]
    from notifier.db.locales import existing_engine

    engine = existing_engine(settings.database_url.reveal())
    if engine is None:
        return [], [*summary, "  capture: no database (yet); the triggers were not checked"]
    try:
        with engine.connect() as conn:
            problems, lines = _against(conn, mapping, _rules(settings))
    except (sa.exc.SQLAlchemyError, NotifierError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [], [*summary, f"  capture: the database could not be read ({first}); triggers not checked"]
    finally:
        engine.dispose()
    return problems, [*summary, *lines]


def _rules(settings: Settings) -> tuple[Rule, ...]:
    from notifier.config.rules_file import load_rules

    try:
        return load_rules(settings.rules, template_exists=lambda _name: True, capture=settings.capture).rules
    except (RulesError, OSError):
        return ()  # the rules' own problems are reported by check_all


def _against(
    conn: sa.Connection, mapping: CaptureMap, rules: tuple[Rule, ...]
) -> tuple[list[Problem], list[str]]:
    from notifier.db.capture import triggers
    from notifier.db.events import types_present

    problems = triggers.problems_here(conn, mapping)
    lines: list[str] = []
    if not problems:
        found = triggers.standing(conn, mapping)
        wrong = [item for item in found if item.state != triggers.State.MATCHING]
        if not wrong:
            lines.append(f"  capture: the {len(found)} trigger(s) are installed and matching")
        for item in wrong:
            lines.append(f"  warning: capture: {item.words(mapping.path)}")
    present = types_present(conn)
    for rule in can_never_fire(rules, mapping.declared, present):
        source = rule.on.split(".", 1)[0]
        why = (
            f"its {source} emails are never sent: nothing writes {source} events"
            if rule.on in OWN_EVENTS
            else f"nothing writes {rule.on} ({mapping.path} does not capture it and {source}_events has none)"
        )
        lines.append(f"  warning: rule {rule.name!r} can never fire on this database: {why}")
    return problems, lines
