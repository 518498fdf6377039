"""The one validation of rules and templates: `notifier check` prints it, the daemon obeys it.

A reload takes exactly what `check` accepts. Both call `validate`, which

1. reads the rules file (every field, and each `when:`/`send_at:` checked statically in every
   branch against what the rule's context supplies) and compiles every template file;
2. renders every message template in every locale with sample data (compose/samples.py),
   within the bounds of every render (compose/budget.py: size, time, iterations), in the
   locale core.locale.message_locale chooses, as the daemon would;
3. checks the static contract between each rule and its templates (compose/contract.py).

Problems refuse the files; warnings (a missing translation, a locale customers use) do not.
Files accepted have a digest (`accept`): a sending process beside the main one
(notifier.run.workers) whose files have the same digest takes them without checking them
again (`load_accepted`), and checks them itself when they differ.
`key_problems` is the one word on marketing rules without NOTIFIER_SECRET_KEY: `check` refuses
them, the daemon warns at start (the messages wait for the key, held, rather than go unsigned).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

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
    digest: str = ""  # of the rules' text and every template read (`accepted_digest`)


class Accepted(NamedTuple):
    """Rules and templates that passed `validate`, and the digest of exactly those files."""

    rules: RuleSet
    renderer: Renderer
    digest: str


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
    text = _read(rules_path)
    try:
        rules = _rules(rules_path, text, renderer, capture)
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
    digest = accepted_digest(text, renderer.digest(), _capture_text(capture)) if text is not None else ""
    return Validation(
        rules, renderer, (*problems, *contract_problems), (*summary, *contract_summary), digest
    )


def _read(rules_path: Path) -> str | None:
    """The rules' text, or None for load_rules to say why it cannot be read."""
    try:
        return rules_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _rules(rules_path: Path, text: str | None, renderer: Renderer, capture: Path | None) -> RuleSet:
    return load_rules(
        rules_path,
        template_exists=renderer.has_template,
        check_context=sample_context,
        text=text,
        template_names=renderer.template_names(),
        capture=capture,
    )


def _capture_text(capture: Path | None) -> str:
    """The capture mapping's text, part of the digest: the events it declares decide which
    rules are valid. Empty when there is none (or it cannot be read: load_rules says why)."""
    try:
        return capture.read_text(encoding="utf-8", errors="surrogateescape") if capture else ""
    except OSError:
        return ""


def accepted_digest(rules_text: str, templates_digest: str, capture_text: str = "") -> str:
    """The digest of a rules file's text, a renderer's templates (Renderer.digest) and the
    capture mapping's text."""
    rules = hashlib.sha256(rules_text.encode("utf-8", "surrogatepass")).hexdigest()
    capture = hashlib.sha256(capture_text.encode("utf-8", "surrogateescape")).hexdigest()
    return hashlib.sha256(f"{rules}\0{templates_digest}\0{capture}".encode("ascii")).hexdigest()


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
    rules, renderer, _digest = accept(rules_path, templates, capture=capture)
    return rules, renderer


def accept(rules_path: Path, templates: Path, *, capture: Path | None = None) -> Accepted:
    """`load_checked`, with the digest of the files it checked."""
    found = validate(rules_path, templates, capture=capture)
    if found.problems or found.rules is None:
        raise RulesError(list(found.problems))
    return Accepted(found.rules, found.renderer, found.digest)


def load_accepted(
    rules_path: Path, templates: Path, digest: str, *, capture: Path | None = None
) -> Accepted | None:
    """The rules and templates without checking them again, if they are exactly the files
    `accept` gave `digest` for: every template is read now and rendered as read (never read
    again), the rules are read once and parsed as `validate` parses them. None when anything
    differs (an edit since, a file that cannot be read): then they must be checked here."""
    if not digest:
        return None
    renderer = Renderer(templates, auto_reload=False)
    text = _read(rules_path)
    read = renderer.read_all() if templates.is_dir() else None
    if text is None or read is None or accepted_digest(text, read, _capture_text(capture)) != digest:
        return None
    try:
        return Accepted(_rules(rules_path, text, renderer, capture), renderer, digest)
    except RulesError:
        return None


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
