"""`notifier check` and `notifier preview`: the offline checker and the one-message render.

`check` validates the rules file and renders every template in every locale with sample
data, so a typo fails here rather than in a customer's inbox.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from notifier.compose.contract import contract_report
from notifier.compose.mail import Rendered
from notifier.compose.rendering import TemplateError
from notifier.compose.samples import SAMPLE_TRIGGER_OF_TEMPLATE, sample_context
from notifier.config.live import load_checked
from notifier.config.settings import Settings
from notifier.core.context import brand_of, template_context
from notifier.core.locale import LOCALES
from notifier.core.rules import RuleSet
from notifier.core.timing import utcnow
from notifier.core.values import Event, Subject
from notifier.db.events import read_about
from notifier.db.subjects import load_subjects
from notifier.errors import Problem, RulesError


def trigger_of(template: str, rules: RuleSet | None) -> str:
    """The event a template is written for: from the rule naming it, else the shipped default."""
    for rule in rules.rules if rules else ():
        if rule.template == template:
            return rule.on
    try:
        return SAMPLE_TRIGGER_OF_TEMPLATE[template]
    except KeyError as exc:
        raise LookupError(f"no rule uses template {template!r}, so its sample data is unknown") from exc


def check_all(
    rules_path: Path, templates: Path, locales: set[str] | None = None
) -> tuple[list[Problem], list[str]]:
    """Every problem found, and a summary line per template checked.

    Also checks the rules/templates contract (notifier.compose.contract): what each rule's trigger
    supplies, and (warnings) the `locales` customers use (None: the shipped ones)."""
    try:
        rules, renderer = load_checked(rules_path, templates)
    except RulesError as exc:
        return list(exc.problems), []
    problems: list[Problem] = []
    summary = [
        f"{rules_path}: {len(rules.rules)} rules "
        f"({sum(r.enabled for r in rules.rules)} enabled), digest {rules.digest}"
    ]
    for template in renderer.template_names():
        try:
            trigger = trigger_of(template, rules)
        except LookupError as exc:
            problems.append(Problem(str(templates / template), None, str(exc)))
            continue
        rendered_locales = []
        for locale in LOCALES:
            try:
                renderer.render(template, locale, _sample(trigger, locale, rules))
                rendered_locales.append(locale)
            except TemplateError as exc:
                problems.append(Problem(*_where(str(exc))))
        missing = sorted(set(LOCALES) - set(renderer.locales_of(template)))
        note = f" (missing {', '.join(missing)}: falls back to en)" if missing else ""
        summary.append(f"  {template}: rendered {', '.join(rendered_locales) or 'nothing'}{note}")
    contract_problems, contract_summary = contract_report(rules, renderer, templates, locales)
    return problems + contract_problems, summary + contract_summary


def _where(text: str) -> tuple[str, int | None, str]:
    head, _, reason = text.partition(": ")
    path, _, line = head.rpartition(":")
    return (path, int(line), reason) if path and line.isdigit() else (head, None, reason)


def _sample(trigger: str, locale: str, rules: RuleSet) -> dict[str, Any]:
    context = sample_context(trigger, locale)
    context["brand"] = brand_of(rules)
    return context


def preview(
    settings: Settings,
    template: str,
    *,
    locale: str,
    order: int | None = None,
    case: int | None = None,
    product: int | None = None,
) -> Rendered:
    """Render one message with sample data, or with a real order, case or product."""
    rules, renderer = load_checked(settings.rules, settings.templates)
    if not renderer.has_template(template):
        raise LookupError(f"there is no template {template!r}; known: {', '.join(renderer.template_names())}")
    trigger = trigger_of(template, rules)
    if order is None and case is None and product is None:
        return renderer.render(template, locale, _sample(trigger, locale, rules))
    from notifier.db.engine import connect

    source, subject_id = (
        ("order", order)
        if order is not None
        else (("case", case) if case is not None else ("product", product))
    )
    with connect(settings) as conn:
        context = _real_context(conn, trigger, source, int(subject_id or 0), rules, locale)
    return renderer.render(template, locale, context)


def _real_context(
    conn: sa.Connection, trigger: str, source: str, subject_id: int, rules: RuleSet, locale: str
) -> dict[str, Any]:
    subject = load_subjects(conn, [(source, subject_id)])[(source, subject_id)]
    if subject.problem and subject.customer is None and subject.product is None:
        raise LookupError(subject.problem)
    event = _latest_event(conn, trigger, source, subject_id) or _sample_event(trigger, source, subject_id)
    context = template_context(
        subject,
        event,
        brand=brand_of(rules),
        now=utcnow(),
        customer=subject.customer or sample_context(trigger, locale)["customer"],
    )
    context["locale"] = locale
    if subject.customer is None and isinstance(subject, Subject):
        context["customer"] = sample_context(trigger, locale)["customer"]
    return context


def _latest_event(conn: sa.Connection, trigger: str, source: str, subject_id: int) -> Event | None:
    if not trigger.startswith(source + "."):
        return None
    found = read_about(conn, source, [subject_id], [trigger])  # in id order
    return found[-1] if found else None


def _sample_event(trigger: str, source: str, subject_id: int) -> Event:
    sample = sample_context(trigger)["event"]
    data = {key: value for key, value in sample.items() if key not in ("id", "type", "occurred_at", "data")}
    occurred = sample.get("occurred_at") or datetime.now()
    return Event(source=source, id=0, type=trigger, subject_id=subject_id, occurred_at=occurred, data=data)
