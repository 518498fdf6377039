"""Render: each message that goes now, rendered in its language and built into bytes for SMTP.

The language is chosen once, by notifier.core.locale.message_locale, and handed to the
renderer. Anything that goes wrong for one message fails that message alone: a template
error is `render_failed`, an unusable address `invalid_address` (skipped), and any other
error (a customer's name stored as bytes, say) `unexpected_error` with the error in plain
words; the rest of the batch is built as usual.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifier.compose import links
from notifier.compose.mail import Envelope, build_message, make_message_id
from notifier.compose.rendering import Renderer, TemplateError
from notifier.config.settings import Settings
from notifier.core.addresses import InvalidAddress, parse_from, same_mailbox
from notifier.core.context import brand_of, template_context
from notifier.core.gates import Decided
from notifier.core.locale import message_locale
from notifier.core.planning import reply_by
from notifier.core.retry import Built
from notifier.core.rules import Category, RuleSet
from notifier.core.values import Claimed, Event, Reason, State, Subject
from notifier.run.send.load import FAN_OUT, Loaded, audience_member, unexpected, words

log = logging.getLogger("notifier.run.send")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """A message built and ready for SMTP."""

    claimed: Claimed
    mail_from: str
    message: bytes
    built: Built | None = None  # None for a message rendered on an earlier attempt
    occurred_at: datetime | None = None  # its event's, for the event-to-acceptance metric

    @property
    def id(self) -> int:
        return self.claimed.id


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    """What rendering needs besides the message: the same for the whole batch."""

    rules: RuleSet
    renderer: Renderer
    settings: Settings
    brand: dict[str, str]
    mail_from: str
    now: datetime
    database_id: str


def rendered(
    wanted: list[Claimed],
    loaded: Loaded,
    *,
    rules: RuleSet,
    renderer: Renderer,
    settings: Settings,
    now: datetime,
    database_id: str = "",
) -> tuple[list[Ready], list[Decided]]:
    """(the messages built, those that could not be). `database_id` (store.identity) goes
    into every Message-ID."""
    job = _Job(
        rules=rules,
        renderer=renderer,
        settings=settings,
        brand=brand_of(rules),
        mail_from=parse_from(rules.defaults.from_header)[1],
        now=now,
        database_id=database_id,
    )
    ready: list[Ready] = []
    decided: list[Decided] = []
    for item in wanted:
        if item.message is not None:  # rendered before: the same bytes go again
            event = loaded.events.get((item.source, item.event_id))
            ready.append(
                Ready(
                    claimed=item,
                    mail_from=job.mail_from,
                    message=item.message,
                    occurred_at=event.occurred_at if event is not None else None,
                )
            )
            continue
        try:
            outcome = _one(item, loaded, job)
        except TemplateError as exc:
            log.error("not sending %s #%s: template failed: %s", item.rule, item.id, exc)
            outcome = Decided(claimed=item, state=State.FAILED, reason=Reason.RENDER_FAILED, detail=str(exc))
        except InvalidAddress as exc:
            outcome = Decided(
                claimed=item, state=State.SKIPPED, reason=Reason.INVALID_ADDRESS, detail=str(exc)
            )
        except Exception as exc:
            log.error("not sending %s #%s: building it failed: %s", item.rule, item.id, words(exc))
            outcome = unexpected(item, f"building the message failed: {words(exc)}")
        (ready if isinstance(outcome, Ready) else decided).append(outcome)  # type: ignore[arg-type]
    return ready, decided


def _one(item: Claimed, loaded: Loaded, job: _Job) -> Ready | Decided:
    event = loaded.events.get((item.source, item.event_id))
    subject = loaded.subjects.get((item.source, item.subject_id), Subject(problem="not found"))
    member = audience_member(item)
    person = loaded.people.get(member) if member is not None else None
    problem = _problem(event, subject, person, item)
    if problem is not None:
        return Decided(claimed=item, state=State.SKIPPED, reason=problem[0], detail=problem[1])
    assert event is not None
    message, built = _build(item, event, subject, person, job)
    return Ready(
        claimed=item, mail_from=job.mail_from, message=message, built=built, occurred_at=event.occurred_at
    )


def _build(
    item: Claimed, event: Event, subject: Subject, person: dict[str, Any] | None, job: _Job
) -> tuple[bytes, Built]:
    context = template_context(
        subject,
        event,
        customer=person,
        brand=job.brand,
        links=_links(item, subject, job.settings),
        now=job.now,
        reply_by=reply_by(event, subject.case, job.rules),
    )
    rule = job.rules.by_name(item.rule)
    locale = message_locale(
        job.renderer.locales_of(item.template), context.get("locale"), rule.locale if rule else None
    )
    rendered = job.renderer.render(item.template, locale, context)
    customer = person or subject.customer or {}
    to_name = customer.get("name") if same_mailbox(item.recipient, customer.get("email")) else None
    message_key = item.key if item.resend_of is None else f"{item.key}:resend:{item.id}"
    message_id = make_message_id(message_key, job.brand["email"].rsplit("@", 1)[-1], job.database_id)
    headers = _list_headers(item, job) if item.category == Category.MARKETING else ()
    envelope = Envelope(
        from_header=job.rules.defaults.from_header,
        to_name=to_name,
        to_address=item.recipient or "",
        message_id=message_id,
        date=job.now,
        extra_headers=headers,
    )
    message = build_message(rendered, envelope)
    return message, Built(message=message, message_id=message_id, subject=rendered.subject, locale=locale)


def _links(item: Claimed, subject: Subject, settings: Settings) -> dict[str, str | None]:
    secret = settings.secret_key
    if secret is None:
        return {}
    result: dict[str, str | None] = {}
    if item.recipient:
        result["unsubscribe"] = links.unsubscribe_url(settings.public_url, secret.reveal(), item.recipient)
    if subject.case is not None:
        result["not_solved"] = links.not_solved_url(settings.public_url, secret.reveal(), subject.case["id"])
    return result


def _list_headers(item: Claimed, job: _Job) -> tuple[tuple[str, str], ...]:
    secret = job.settings.secret_key
    assert secret is not None and item.recipient
    url = links.unsubscribe_url(job.settings.public_url, secret.reveal(), item.recipient)
    mailto = f"mailto:{job.mail_from}?subject=unsubscribe"
    return (
        ("List-Unsubscribe", f"<{url}>, <{mailto}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


def _problem(
    event: Event | None, subject: Subject, person: dict[str, Any] | None, item: Claimed
) -> tuple[Reason, str] | None:
    if event is None:
        return Reason.BAD_EVENT, f"event {item.event_type} #{item.event_id} is no longer in the database"
    if event.problem:
        return Reason.BAD_EVENT, event.problem
    if subject.problem:
        return (Reason.BAD_ROW if subject.bad_row else Reason.NO_RECIPIENT), subject.problem
    if item.source in FAN_OUT and person is None:
        return Reason.NO_RECIPIENT, f"customer {item.customer_id} does not exist"
    return None
