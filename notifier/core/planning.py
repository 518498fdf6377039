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
from zoneinfo import ZoneInfo

from notifier.core.addresses import InvalidAddress, check_address
from notifier.core.business import BusinessDuration, Calendar
from notifier.core.context import template_context
from notifier.core.explain import due_words, rule_error_words
from notifier.core.gates import zone_named
from notifier.core.rules import REPLY_CLOCK_STARTS, Category, Rule, RuleSet, Wait
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
    basis: str | None = None  # what due_at was computed from, in words fixed now


def notification_key(rule: Rule, event: Event, customer_id: int | None = None) -> str:
    """The idempotency key: one notification per rule, occurrence and (fan-out) recipient."""
    base = f"{rule.name}:{event.source}:{event.id}"
    return base if customer_id is None else f"{base}:{customer_id}"


class NoDueTime(ValueError):
    """An `at:` rule that has no moment for this event: the date is empty (an order with no
    promised date), or the moment had already passed when the event happened."""


def due_time(rule: Rule, event: Event, context: Mapping[str, Any], rules: RuleSet | None = None) -> datetime:
    """When the message falls due: the event's time, plus delay/after (plain or business
    time), or send_at (never before the event itself: a send_at already past means at once),
    or `at:` (a time of day on a date the order carries), or the case's promised reply time
    shifted by its offset (`response_time - 30m`: never before the event)."""
    calendar = rules.calendar if rules is not None else Calendar()
    if rule.send_at is not None:
        return max(rule.send_at.moment(context), event.occurred_at)
    if rule.at is not None:
        return at_time(rule, event, context, calendar)
    if rule.after_response_time and rules is not None:
        promise = reply_by(event, context.get("case"), rules)
        if promise is not None:
            return max(promise + rule.response_offset, event.occurred_at)
    return shift(event.occurred_at, rule.wait, calendar)


def at_time(rule: Rule, event: Event, context: Mapping[str, Any], calendar: Calendar) -> datetime:
    """`at: order.promised_date 14:00`: that day at 14:00 on the customer's clock (or the
    shop's, `... 14:00 shop`); NoDueTime when there is no date or the moment is already past
    at the event (an apology for a promise made after its afternoon would be nonsense)."""
    assert rule.at is not None
    day = rule.at.day(context)
    if day is None:
        raise NoDueTime(f"at: {rule.at.base.source} is empty for this {event.source}: no date to time from")
    zone = at_zone(rule, context, calendar)
    moment = rule.at.moment(day, zone)
    if moment < event.occurred_at:
        raise NoDueTime(
            f"at: {rule.at.source} is {day:%Y-%m-%d} {rule.at.clock:%H:%M} {zone}, "
            f"already past when {event.type} #{event.id} happened"
        )
    return moment


def at_zone(rule: Rule, context: Mapping[str, Any], calendar: Calendar) -> ZoneInfo:
    """Whose wall clock an `at:` time of day is read on: the customer's timezone (UTC when it
    is unknown), or the shop calendar's."""
    if rule.at is not None and rule.at.whose == "shop":
        return calendar.timezone
    return zone_named(context.get("timezone"))


def shift(moment: datetime, wait: Wait, calendar: Calendar) -> datetime:
    """`moment` plus a plain duration, or plus working time on the shop's calendar."""
    if isinstance(wait, BusinessDuration):
        return calendar.add(moment, wait)
    return moment + wait


def response_time(rules: RuleSet, priority: str | None) -> Wait:
    """How long a person has to answer a case of this priority (defaults.response_times)."""
    times = rules.defaults.response_times
    return times.get(priority or "normal", times["normal"])


def reply_by(event: Event, case: Mapping[str, Any] | None, rules: RuleSet) -> datetime | None:
    """When a person promised to answer: the response time for the case's priority after the
    reply clock started, on the shop's calendar. The clock starts when the case is opened, and
    again when it is reopened (a reopened case gets a fresh promise); a message about any other
    case event shows the promise made when the case was opened."""
    if case is None:
        return None
    start = event.occurred_at if event.type in REPLY_CLOCK_STARTS else case["opened_at"]
    return shift(start, response_time(rules, case.get("priority")), rules.calendar)


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
        contained(rule, event, subject, rules, brand=brand, now=now, customer=customer)
        for rule in rules.enabled_on(event.type)
        if rule.audience is None
    ]


def contained(
    rule: Rule,
    event: Event,
    subject: Subject,
    rules: RuleSet,
    *,
    brand: Mapping[str, str],
    now: datetime,
    customer: dict[str, Any] | None = None,
) -> Planned:
    """plan_rule, with any error it raises kept as this rule-and-event's failure (rule_error),
    so one rule cannot stop the others, or the batch."""
    try:
        return plan_rule(rule, event, subject, rules, brand=brand, now=now, customer=customer)
    except Exception as exc:  # whatever a rule raises, the batch goes on
        return rule_failed(rule, event, rules, "planning", exc, customer_id=key_customer(customer))


def rule_failed(
    rule: Rule, event: Event, rules: RuleSet, what: str, exc: BaseException, *, customer_id: int | None = None
) -> Planned:
    """The failed notification that records a rule's error for one event (its key is the one a
    plan would have had, so a rerun stores it once)."""
    return Planned(
        key=notification_key(rule, event, customer_id),
        rule=rule,
        event=event,
        due_at=event.occurred_at,
        expires_at=None,
        state=State.FAILED,
        reason=Reason.RULE_ERROR,
        detail=rule_error_words(rule, rules, what, exc),
        customer_id=customer_id,
        recipient=rule.to,
    )


def key_customer(customer: Mapping[str, Any] | None) -> int | None:
    return customer["id"] if customer else None


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
        basis = due_words(rule, event, due, rules) if due is not None else None
        due = due or event.occurred_at
        return Planned(
            basis=basis,
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
        return skip(Reason.BAD_ROW if subject.bad_row else Reason.NO_RECIPIENT, subject.problem)
    context = template_context(subject, event, customer=customer, brand=brand, now=now)
    try:
        if rule.when is not None and not rule.when.holds(context):
            return skip(Reason.CONDITION_FALSE, f"when: {rule.when.source} was false")
    except Exception as exc:  # an undefined name, a division by zero...: the rule's error, not "false"
        what = f"when: {rule.when.source}" if rule.when is not None else "when:"
        return rule_failed(rule, event, rules, what, exc, customer_id=key_customer(customer))
    try:
        due = due_time(rule, event, context, rules)
    except NoDueTime as exc:
        return skip(Reason.NO_DUE_TIME, str(exc))
    except Exception as exc:
        return rule_failed(rule, event, rules, "the due time", exc, customer_id=key_customer(customer))
    case = context.get("case") or {}
    zone = at_zone(rule, context, rules.calendar) if rule.at is not None else None
    basis = due_words(rule, event, due, rules, case.get("priority"), zone=zone)
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
        basis=basis,
    )
