"""Rules decide: an Event and what it is about -> the notifications it owes, or why not.

Pure: no database, no SMTP, no clock. The caller loads the Subject, passes `now`, and
stores what comes back. A "no" is kept as a skipped notification with its reason, so
`history` can explain it later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifier.core.addresses import InvalidAddress, check_address
from notifier.core.business import BusinessDuration, Calendar
from notifier.core.conditions import ExpressionError
from notifier.core.context import template_context
from notifier.core.rules import Category, Rule, RuleSet, Wait
from notifier.core.timing import expires_at
from notifier.core.values import Event, Reason, State, Subject


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    """One notification to store: queued for due_at, or skipped with a reason."""

    key: str
    rule: Rule
    event: Event
    due_at: datetime
    expires_at: datetime | None
    state: State
    customer_id: int | None = None
    recipient: str | None = None
    reason: Reason | None = None
    detail: str | None = None

    def row(self, now: datetime) -> dict[str, Any]:
        """The notifier_notifications row for this plan."""
        return {
            "key": self.key,
            "rule": self.rule.name,
            "template": self.rule.template,
            "category": self.rule.category.value,
            "source": self.event.source,
            "event_id": self.event.id,
            "event_type": self.event.type,
            "event_occurred_at": self.event.occurred_at,
            "thread": self.event.thread,
            "subject_id": self.event.subject_id,
            "customer_id": self.customer_id,
            "recipient": self.recipient,
            "state": self.state.value,
            "reason": self.reason.value if self.reason else None,
            "detail": self.detail,
            "due_at": self.due_at,
            "expires_at": self.expires_at,
            "next_attempt_at": self.due_at,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }


def notification_key(rule: Rule, event: Event, customer_id: int | None = None) -> str:
    """The idempotency key: one notification per rule, occurrence and (fan-out) recipient."""
    base = f"{rule.name}:{event.source}:{event.id}"
    return base if customer_id is None else f"{base}:{customer_id}"


def due_time(rule: Rule, event: Event, context: Mapping[str, Any], rules: RuleSet | None = None) -> datetime:
    """When the message falls due: the event's time, plus delay/after (plain or business
    time), or send_at (never before the event itself: a send_at already past means at once)."""
    if rule.send_at is not None:
        return max(rule.send_at.moment(context), event.occurred_at)
    wait = rule.wait
    if rule.after_response_time and rules is not None:
        wait = rule.due_after(rules.defaults.response_times, (context.get("case") or {}).get("priority"))
    return shift(event.occurred_at, wait, rules.calendar if rules is not None else Calendar())


def shift(moment: datetime, wait: Wait, calendar: Calendar) -> datetime:
    """`moment` plus a plain duration, or plus working time on the shop's calendar."""
    if isinstance(wait, BusinessDuration):
        return calendar.add(moment, wait)
    return moment + wait


def plan_event(
    event: Event,
    subject: Subject,
    rules: RuleSet,
    *,
    brand: Mapping[str, str],
    now: datetime,
    customer: dict[str, Any] | None = None,
) -> list[Planned]:
    """Every enabled rule on this event type -> a Planned (queued or skipped).

    Rules with an `audience:` are not planned here: they fan out in the database
    (audience.plan_audience)."""
    return [
        plan_rule(rule, event, subject, rules, brand=brand, now=now, customer=customer)
        for rule in rules.enabled_on(event.type)
        if rule.audience is None
    ]


def plan_rule(
    rule: Rule,
    event: Event,
    subject: Subject,
    rules: RuleSet,
    *,
    brand: Mapping[str, str],
    now: datetime,
    customer: dict[str, Any] | None = None,
) -> Planned:
    """One rule against one event (and, for fan-out, one customer)."""
    person = customer or subject.customer
    key = notification_key(rule, event, customer["id"] if customer else None)
    max_age = rules.max_age(rule)

    def skip(reason: Reason, detail: str, due: datetime | None = None) -> Planned:
        due = due or event.occurred_at
        return Planned(
            key=key,
            rule=rule,
            event=event,
            due_at=due,
            expires_at=expires_at(due, max_age),
            state=State.SKIPPED,
            reason=reason,
            detail=detail,
            customer_id=person["id"] if person else None,
            recipient=rule.to or (person["email"] if person else None),
        )

    if event.problem:
        return skip(Reason.BAD_EVENT, f"event {event.type} #{event.id}: {event.problem}")
    if subject.problem:
        return skip(Reason.NO_RECIPIENT, subject.problem)
    context = template_context(subject, event, customer=customer, brand=brand, now=now)
    try:
        if rule.when is not None and not rule.when.holds(context):
            return skip(Reason.CONDITION_FALSE, f"when: {rule.when.source} was false")
        due = due_time(rule, event, context, rules)
    except ExpressionError as exc:
        return skip(Reason.CONDITION_FALSE, f"when/send_at could not be evaluated: {exc}")
    recipient = rule.to or (person["email"] if person else "")
    try:
        recipient = check_address(recipient or "")
    except InvalidAddress as exc:
        return skip(Reason.INVALID_ADDRESS, f"recipient address: {exc}", due)
    if rule.category is Category.MARKETING and rule.to is None and not (person or {}).get("marketing_opt_in"):
        return skip(
            Reason.NOT_OPTED_IN, f"customer {person and person['id']} has not opted in to marketing mail", due
        )
    return Planned(
        key=key,
        rule=rule,
        event=event,
        due_at=due,
        expires_at=expires_at(due, max_age),
        state=State.QUEUED,
        customer_id=person["id"] if person else None,
        recipient=recipient,
    )
