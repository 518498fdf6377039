"""The contract between rules and templates, checked statically (without rendering).

Ops edit rules.yaml and marketing edits the templates, each on their own. A rule's trigger
decides what a template can use: an `order.placed` message has no case, a product event has
no order, a case may or may not be about an order. `SUPPLIES` writes down, per event type,
every name the template context holds, which of them are always present, which may be None
and which are None, and the attributes each has (the contract documented in rendering.py;
the event keys come from events.VOCABULARY, so the two cannot drift).

`check_contract` walks the Jinja syntax tree of every file of every template a rule names,
following `{% extends %}`, `{% include %}` and `{% import %}` into the shared files and
values passed into macros, and reports each use the rule's trigger cannot supply, with the
file and line. Rendering with sample data cannot find these: a sample context may hold a
case where the real one has none, and a branch the sample never enters is never rendered.

Understood, so not reported: names made by `{% set %}` (and `namespace()`), `{% for %}`
targets and `loop`, macro parameters and `caller`, `{% with %}` and `{% call(x) %}`
names, import aliases (`m.button`), Jinja's globals, and guards: `{% if order %}`,
`{% if order is not none %}`, `x and x.y`, `x.y if x`, the `else` of `{% if not x %}`,
`x is defined` and `x|default(...)` (which tolerate a missing value on purpose).

`condition_problems` walks a rule's `when:` or `send_at:` expression the same way, against
what the rule's conditions see (core.supply.condition_supply: an audience rule's conditions
have no customer), so a name used only in a branch the sample data never takes is found too.

`locale_report` warns when a rule's template lacks a locale its customers use (they get
the English version), and fails when it lacks English itself. The caller reads those
locales (notifier.db.locales.customer_locales): compose never opens the database.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from jinja2.parser import Parser

from notifier.compose.rendering import Renderer
from notifier.compose.samples import SAMPLE_TRIGGER_OF_TEMPLATE
from notifier.compose.tree import Sources, parse_env
from notifier.compose.walker import Walker
from notifier.core.locale import FALLBACK_LOCALE, LOCALES, message_locale, normalize_locale
from notifier.core.rules import Rule, RuleSet
from notifier.core.supply import SUPPLIES, Shape, Supply, supply_for
from notifier.errors import Problem

__all__ = [
    "SUPPLIES",
    "Shape",
    "Supply",
    "check_contract",
    "condition_problems",
    "contract_report",
    "locale_report",
    "supply_for",
]


# -- the checks ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Found:
    lines: set[int] = field(default_factory=set)
    rules: dict[str, None] = field(default_factory=dict)  # ordered sets
    notes: dict[str, None] = field(default_factory=dict)
    via: dict[str, None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Use:
    supply: Supply
    rules: tuple[str, ...]  # "'order-confirmation'", "'thanks' (disabled)"
    note: str = ""  # for a template no rule names


def _message_files(folder: Path) -> list[str]:
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
    except OSError:
        return []
    return [name for name in names if name.endswith((".html", ".htm", ".txt"))]


def _listed(values: Iterable[str], limit: int = 4) -> str:
    values = list(values)
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _rules_named(names: Iterable[str]) -> str:
    names = list(names)
    return ("rule " if len(names) == 1 else "rules ") + _listed(names)


def _uses(rules: RuleSet, templates: Path) -> dict[tuple[str, str, str], _Use]:
    """(template, trigger, variant) -> what it is checked against, and for whom."""
    grouped: dict[tuple[str, str, str], tuple[Supply, list[str]]] = {}
    for rule in rules.rules:
        supply = supply_for(rule)
        label = repr(rule.name) + ("" if rule.enabled else " (disabled)")
        grouped.setdefault((rule.template, supply.event_type, supply.variant), (supply, []))[1].append(label)
    uses = {key: _Use(supply, tuple(names)) for key, (supply, names) in grouped.items()}
    named = {rule.template for rule in rules.rules}
    for template in Renderer(templates).template_names():
        trigger = SAMPLE_TRIGGER_OF_TEMPLATE.get(template)
        if template not in named and trigger in SUPPLIES:
            note = f"no rule uses {template}; checked as for {trigger}"
            uses[(template, trigger, "")] = _Use(SUPPLIES[trigger], (), note)
    return uses


def check_contract(rules: RuleSet, templates: Path) -> list[Problem]:
    """Every use, in a template a rule names, of something the rule's trigger cannot supply:
    one problem per file and reason, at its first line (later lines are listed)."""
    templates = Path(templates)
    sources = Sources(templates)
    found: dict[tuple[str, str], _Found] = {}
    for (template, _, _), use in _uses(rules, templates).items():
        for filename in _message_files(templates / template):
            top = f"{template}/{filename}"

            def report(
                file: str, line: int | None, message: str, *, _top: str = top, _use: _Use = use
            ) -> None:
                entry = found.setdefault((file, message), _Found())
                if line is not None:
                    entry.lines.add(line)
                entry.rules.update(dict.fromkeys(_use.rules))
                if _use.note:
                    entry.notes[_use.note] = None
                if file != _top:
                    entry.via[_top] = None

            Walker(sources, supply=use.supply, report=report).walk_template(top, None, True)
    problems = []
    for (file, message), entry in found.items():
        lines = sorted(entry.lines)
        text = message
        if len(lines) > 1:
            text += f" (also on line{'s' if len(lines) > 2 else ''} {', '.join(map(str, lines[1:]))})"
        who = [_rules_named(entry.rules)] if entry.rules else []
        who.extend(entry.notes)
        if entry.via:
            who.append(f"used by {_listed(entry.via)}")
        problems.append(
            Problem((templates / file).as_posix(), lines[0] if lines else None, f"{text} [{'; '.join(who)}]")
        )
    return sorted(problems, key=lambda p: (p.path, p.line or 0, p.message))


def locale_report(
    rules: RuleSet, renderer: Renderer, templates: Path, locales: Iterable[str | None] | None = None
) -> tuple[list[Problem], list[str]]:
    """Problems (a rule's template has no "en") and warning lines (a locale its customers
    use, or the rule's own `locale:`, is missing, so they get English).

    `locales` are the customers' locales as stored (None: the shipped LOCALES)."""
    spelled: dict[str, set[str]] = {}
    for raw in LOCALES if locales is None else locales:
        spelled.setdefault(normalize_locale(raw), set()).add(raw or FALLBACK_LOCALE)
    by_template: dict[str, list[Rule]] = {}
    for rule in rules.rules:
        by_template.setdefault(rule.template, []).append(rule)
    problems: list[Problem] = []
    warnings: list[str] = []
    for template, group in sorted(by_template.items()):
        shown = (Path(templates) / template).as_posix()
        names = ", ".join(rule.name for rule in group)
        if FALLBACK_LOCALE not in renderer.locales_of(template):
            problems.append(
                Problem(shown, None, f"no 'en' version, which every customer falls back to (rules: {names})")
            )
            continue
        missing: dict[str, dict[str, list[str]]] = {}  # locale -> why -> rule names
        for rule in group:
            wanted = {normalize_locale(rule.locale): {rule.locale}} if rule.locale else spelled
            for code, spellings in wanted.items():
                if message_locale(renderer.locales_of(template), code) != code:
                    why = (
                        "the rule's own locale"
                        if rule.locale
                        else f"customers use {', '.join(sorted(spellings))}"
                    )
                    missing.setdefault(code, {}).setdefault(why, []).append(repr(rule.name))
        for code, whys in sorted(missing.items()):
            reasons = "; ".join(f"{why}: {_rules_named(names)}" for why, names in whys.items())
            warnings.append(f"  warning: {shown}: no {code} version, so en is sent instead [{reasons}]")
    return problems, warnings


def contract_report(
    rules: RuleSet, renderer: Renderer, templates: Path, locales: Iterable[str | None] | None = None
) -> tuple[list[Problem], list[str]]:
    """For `notifier check`: the contract's problems and its summary (and warning) lines."""
    problems = check_contract(rules, templates)
    locale_problems, warnings = locale_report(rules, renderer, templates, locales)
    source = "the shipped locales" if locales is None else "the customers' locales"
    found = len(problems) + len(locale_problems)
    summary = [
        f"  contract: {len(rules.rules)} rules checked against what their events supply "
        f"and against {source}: {found} problem(s), {len(warnings)} warning(s)",
        *warnings,
    ]
    return problems + locale_problems, summary


def condition_problems(source: str, supply: Supply) -> list[str]:
    """Each use, in a `when:` or `send_at:` expression, of a name the rule's context cannot
    supply (or a value that is None there), in every branch, not only the one a sample takes;
    in plain words, without duplicates. A syntax error is compile_expression's business."""
    environment = parse_env()
    try:
        expression = Parser(environment, source, state="variable").parse_expression()
    except jinja2.TemplateSyntaxError:
        return []
    found: dict[str, None] = {}
    walker = Walker(Sources(Path(".")), supply, lambda _file, _line, message: found.setdefault(message))
    walker.walk_expression(expression)
    return list(found)
