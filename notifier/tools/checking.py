"""`notifier check` and `notifier preview`: the offline checker and the one-message render.

`check` prints config.validate.validate: the rules file, every template rendered in every
locale with sample data within the bounds of a render, the contract and each condition
checked statically, so a typo fails here rather than in a customer's inbox. The daemon
refuses, at start and on every reload, exactly what `check` refuses. `check_database` adds
the database's side: the integration tables' columns and types, the wake-up trigger, and the
rules that can never fire there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from notifier.compose.mail import Rendered
from notifier.compose.samples import sample_context, trigger_of
from notifier.config.settings import Settings
from notifier.config.validate import key_problems, load_checked, validate
from notifier.core.context import brand_of, template_context
from notifier.core.locale import message_locale
from notifier.core.planning import reply_by
from notifier.core.rules import RuleSet
from notifier.core.timing import utcnow
from notifier.core.values import Event, Subject
from notifier.core.vocabulary import VOCABULARY
from notifier.db.events import read_about
from notifier.db.subjects import load_subjects
from notifier.errors import Problem, RulesError

__all__ = ["check_all", "check_database", "preview", "settings_warnings", "trigger_of"]


def check_all(
    rules_path: Path,
    templates: Path,
    locales: set[str] | None = None,
    *,
    has_secret: bool = True,
    settings: Settings | None = None,
) -> tuple[list[Problem], list[str]]:
    """Every problem found, and a summary line per template checked: config.validate.validate,
    which the daemon obeys at start and on every reload (`locales`: the customers' ones, for
    warnings; None: the shipped ones); marketing rules without the secret key (`has_secret`:
    NOTIFIER_SECRET_KEY is set), which the daemon only warns about; then the warnings about
    `settings`, when given."""
    found = validate(rules_path, templates, locales, capture=settings.capture if settings else None)
    keyless = key_problems(found.rules, rules_path, has_secret=has_secret) if found.rules else []
    extra = settings_warnings(settings) if settings is not None else []
    return [*found.problems, *keyless], [*found.summary, *extra]


def settings_warnings(settings: Settings) -> list[str]:
    """Settings that work but cost deliverability: warning lines for `check`, never a refusal."""
    warnings = []
    if urlsplit(settings.public_url).scheme.lower() != "https":
        warnings.append(
            f"  warning: NOTIFIER_PUBLIC_URL is {settings.public_url!r}, not an https:// address: mail "
            "clients offer one-click unsubscribe (RFC 8058) only over HTTPS; set it to the HTTPS "
            "address your proxy serves `notifier web` at"
        )
    return warnings


def check_database(
    database_url: str, rules_path: Path, capture: Path | None = None
) -> tuple[list[str], list[str], bool]:
    """The order system's side of the database (db/integration_check.py): (problems, notes,
    whether it could be read). A database that is not there or does not answer is a note:
    `check` works offline too."""
    from notifier.config.rules_file import load_rules
    from notifier.db import integration_check as schema_check
    from notifier.db.locales import existing_engine

    engine = existing_engine(database_url)
    if engine is None:
        return [], ["database: not there (yet); its tables and views were not checked"], False
    try:
        rules = load_rules(rules_path, template_exists=lambda _name: True, capture=capture).rules
    except (RulesError, OSError):
        rules = ()  # the rules' own problems are reported by check_all
    try:
        with engine.connect() as conn:
            found = [
                *schema_check.check_columns(conn),
                *schema_check.check_wakeup(conn),
                *schema_check.rules_that_cannot_fire(conn, rules),
            ]
    except sa.exc.SQLAlchemyError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [], [f"database: could not be read ({first}); its tables and views were not checked"], False
    finally:
        engine.dispose()
    return [str(f) for f in found if f.problem], [str(f) for f in found if not f.problem], True


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
    warnings: list[str] | None = None,
) -> Rendered:
    """Render one message with sample data, or with a real order, case or product (what the
    record lacks is added to `warnings`, as the gallery shows it)."""
    rules, renderer = load_checked(settings.rules, settings.templates, capture=settings.capture)
    if not renderer.has_template(template):
        raise LookupError(f"there is no template {template!r}; known: {', '.join(renderer.template_names())}")
    trigger = trigger_of(template, rules)
    rule = next((r for r in rules.rules if r.template == template), None)
    chosen = message_locale(renderer.locales_of(template), locale, rule.locale if rule else None)
    if order is None and case is None and product is None:
        return renderer.render(template, chosen, _sample(trigger, locale, rules))
    from notifier.db.engine import connect

    source, subject_id = (
        ("order", order)
        if order is not None
        else (("case", case) if case is not None else ("product", product))
    )
    with connect(settings) as conn:
        context = _real_context(conn, trigger, source, int(subject_id or 0), rules, locale)
    rendered = renderer.render(template, chosen, context)
    if warnings is not None:
        warnings.extend(real_data_warnings(context, trigger, source))
    return rendered


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
        reply_by=reply_by(event, subject.case, rules),  # the promise the daemon would state
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
    """The event a real record has not had yet: every documented value empty, never the sample
    story's (an undelivered order is not "signed for by A. Morgan"); `real_data_warnings` says so."""
    data = dict.fromkeys(VOCABULARY.get(trigger, {}))
    return Event(source=source, id=0, type=trigger, subject_id=subject_id, occurred_at=utcnow(), data=data)


def real_data_warnings(context: dict[str, Any], trigger: str, source: str) -> list[str]:
    """What a preview with a real record shows empty because the record does not have it."""
    event = context.get("event") or {}
    keys = list(VOCABULARY.get(trigger, {}))
    if event.get("id") == 0:
        if not trigger.startswith(source + "."):
            return []  # a case's order or a product's audience: the event is the rule's, not this record's
        values = f": {', '.join(keys)} are left empty" if keys else ""
        return [f"This {source} has no {trigger} event yet{values}; its time is now."]
    empty = [key for key in keys if event.get(key) is None]
    return [f"event.{key} is empty: this {trigger} event does not have it." for key in empty]
