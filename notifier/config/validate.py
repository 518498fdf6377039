"""The one validation of rules and templates: `notifier check` prints it, the daemon obeys it.

A reload takes exactly what `check` accepts. Both call `validate`, which

1. reads the rules file (every field, and each `when:`/`send_at:` checked statically in every
   branch against what the rule's context supplies) and compiles every template file;
2. renders every message template in every locale with sample data (compose/samples.py),
   within the bounds of every render (compose/budget.py: size, time, iterations), in the
   locale core.locale.message_locale chooses, as the daemon would;
3. checks the static contract between each rule and its templates (compose/contract.py).

Problems refuse the files; warnings (a missing translation, a locale customers use) do not.
`key_problems` is the one word on marketing rules without NOTIFIER_SECRET_KEY: `check` refuses
them, the daemon warns at start (the messages wait for the key, held, rather than go unsigned).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifier.compose.contract import contract_report
from notifier.compose.rendering import Renderer, TemplateError
from notifier.compose.samples import sample_context, trigger_of
from notifier.config.rules_file import load_rules
from notifier.core.context import brand_of
from notifier.core.locale import LOCALES, message_locale
from notifier.core.rules import Category, RuleSet
from notifier.errors import Problem, RulesError


@dataclass(frozen=True, slots=True)
class Validation:
    """What `validate` found: the rules and templates (None when the rules are unreadable),
    the problems that refuse them, and the summary lines `check` prints (warnings among them)."""

    rules: RuleSet | None
    renderer: Renderer
    problems: tuple[Problem, ...]
    summary: tuple[str, ...]


def validate(
    rules_path: Path,
    templates: Path,
    locales: Iterable[str | None] | None = None,
    *,
    capture: Path | None = None,
) -> Validation:
    """Every problem with the rules and templates; `locales` are the customers' (None: the shipped);
    `capture` the capture mapping, whose declared events the rules may name."""
    renderer = Renderer(templates, auto_reload=False)
    if not templates.is_dir():
        return Validation(
            None, renderer, (Problem(str(templates), None, "the templates folder does not exist"),), ()
        )
    problems = [Problem(*split_location(str(error))) for error in renderer.check_syntax()]
    try:
        rules = load_rules(
            rules_path,
            template_exists=renderer.has_template,
            check_context=sample_context,
            template_names=renderer.template_names(),
            capture=capture,
        )
    except RulesError as exc:
        return Validation(None, renderer, (*exc.problems, *problems), ())
    if problems:
        return Validation(rules, renderer, tuple(problems), ())
    summary = [
        f"{rules_path}: {len(rules.rules)} rules "
        f"({sum(r.enabled for r in rules.rules)} enabled), digest {rules.digest}"
    ]
    for template in renderer.template_names():
        rendered, line = _render_samples(renderer, template, rules, templates)
        problems.extend(rendered)
        summary.append(line)
    contract_problems, contract_summary = contract_report(rules, renderer, templates, locales)
    return Validation(rules, renderer, (*problems, *contract_problems), (*summary, *contract_summary))


MAKE_A_KEY = "export NOTIFIER_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"


def key_problems(rules: RuleSet, rules_path: Path, *, has_secret: bool) -> list[Problem]:
    """The enabled marketing rules, when there is no NOTIFIER_SECRET_KEY to sign their links."""
    if has_secret:
        return []
    return [
        Problem(
            str(rules_path),
            rule.line,
            f"rule {rule.name!r} is marketing mail, which waits unsent (held) without "
            f"NOTIFIER_SECRET_KEY, the key that signs its unsubscribe link; make one: {MAKE_A_KEY} "
            "(or secret_key in notifier.toml)",
        )
        for rule in rules.rules
        if rule.enabled and rule.category == Category.MARKETING
    ]


def load_checked(
    rules_path: Path, templates: Path, *, capture: Path | None = None
) -> tuple[RuleSet, Renderer]:
    """The rules and templates if `validate` finds no problem, else RulesError listing them."""
    found = validate(rules_path, templates, capture=capture)
    if found.problems or found.rules is None:
        raise RulesError(list(found.problems))
    return found.rules, found.renderer


def _render_samples(
    renderer: Renderer, template: str, rules: RuleSet, templates: Path
) -> tuple[list[Problem], str]:
    """Render `template` with sample data for every shipped locale; its problems and its summary line."""
    try:
        trigger = trigger_of(template, rules)
    except LookupError as exc:
        return [Problem(str(templates / template), None, str(exc))], f"  {template}: not rendered"
    available = renderer.locales_of(template)
    own = {rule.locale for rule in rules.rules if rule.template == template}
    # A rule's own `locale:` wins over the customer's (core.locale.message_locale): when every
    # rule of this template has one, only those languages are ever sent.
    fixed = bool(own) and None not in own
    wanted = sorted(str(code) for code in own) if fixed else list(LOCALES)
    problems: list[Problem] = []
    rendered: list[str] = []
    for locale in wanted:
        chosen = message_locale(available, locale)
        try:
            message = renderer.render(template, chosen, _sample(trigger, locale, rules))
            rendered.append(chosen)
        except TemplateError as exc:
            problems.append(Problem(exc.file, exc.line, f"{exc.reason} (locale {chosen})"))
            continue
        if message.subject_lines > 1 and chosen == locale:
            problems.append(_multi_line_subject(templates, template, chosen, message.subject_lines))
    fallen = [locale for locale in wanted if message_locale(available, locale) != locale]
    sent = ", ".join(dict.fromkeys(message_locale(available, locale) for locale in wanted))
    missing = f"no {', '.join(fallen)} version" if fallen else ""
    if fixed:
        note = f" (its rules always send in {sent}{'; ' + missing if missing else ''})"
    else:
        note = f" ({missing}: those customers get en)" if missing else ""
    shown = ", ".join(dict.fromkeys(rendered)) or "nothing"
    return problems, f"  {template}: rendered {shown}{note}"


def _multi_line_subject(templates: Path, template: str, locale: str, lines: int) -> Problem:
    """A subject is one line: one of several lines would be joined silently with the next."""
    return Problem(
        str(templates / template / f"{locale}.subject.txt"),
        None,
        f"the subject is {lines} lines; a subject is one line: join them (or trim the line breaks "
        "around tags with {%- -%})",
    )


def _sample(trigger: str, locale: str, rules: RuleSet) -> dict[str, Any]:
    context = sample_context(trigger, locale)
    context["brand"] = brand_of(rules)
    return context


def split_location(text: str) -> tuple[str, int | None, str]:
    """'templates/x/en.html:12: reason' -> (path, 12, reason)."""
    head, _, reason = text.partition(": ")
    path, _, line = head.rpartition(":")
    if path and line.isdigit():
        return path, int(line), reason
    return head, None, reason
