"""The rules in force, as frozen values: a `RuleSet` of `Rule`s with their defaults and calendar.

notifier.config.rules_file reads and validates rules.yaml into these; everything that decides
(planning, gates, history's words) reads them and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from enum import StrEnum
from typing import Any

from notifier.core.business import BusinessDuration, Calendar
from notifier.core.conditions import At, Expression, SendAt
from notifier.core.values import Event

Wait = timedelta | BusinessDuration  # a plain duration, or working time on the calendar


class Category(StrEnum):
    TRANSACTIONAL = "transactional"  # about something the customer did; always sent
    MARKETING = "marketing"  # opted-in customers only, List-Unsubscribe, never in quiet hours


DEFAULT_MAX_AGE = {Category.TRANSACTIONAL: timedelta(days=2), Category.MARKETING: timedelta(days=7)}


DEFAULT_RESPONSE_TIMES = {
    "urgent": timedelta(hours=1),
    "high": timedelta(hours=4),
    "normal": timedelta(days=1),
    "low": timedelta(days=3),
}


RESPONSE_TIME = "response_time"  # `after:` value: the promised reply time for the case's priority

# The events that start a case's reply clock: a reopened case is promised a reply afresh.
REPLY_CLOCK_STARTS = ("case.opened", "case.reopened")


SCHEDULE_TICK = "schedule.tick"  # the `on` of calendar rules: they fire on a tick, not an event


HOLDS = ("case.open",)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours in which no marketing mail goes out; may span midnight."""

    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a product event (or a calendar rule) fans out to."""

    ordered_product_within: timedelta | None = None  # bought the event's product in this window
    ordered_within: timedelta | None = None  # bought anything (calendar rules) in this window
    product_tags: tuple[str, ...] = ()  # ... of a product with one of these tags

    def currency_of(self, event: Event) -> str | None:
        """The currency the audience bought in, or None for any: a product event that names a
        `currency` (product.price_change: one event per currency the shop sells in) goes to
        those who ordered the product in that currency (orders.currency), so each customer hears
        of the prices they pay."""
        if self.ordered_product_within is None:
            return None
        currency = event.data.get("currency")
        return currency.strip().upper() if isinstance(currency, str) and currency.strip() else None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A calendar rule's ticks: a cron expression in a timezone."""

    cron: str
    timezone: str
    trigger: Any = field(compare=False, repr=False)  # an APScheduler CronTrigger, made by the loader


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    from_header: str
    quiet_hours: QuietHours | None = None
    max_age: Mapping[Category, timedelta] = field(default_factory=lambda: dict(DEFAULT_MAX_AGE))
    response_times: Mapping[str, Wait] = field(default_factory=lambda: dict(DEFAULT_RESPONSE_TIMES))


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    on: str
    template: str
    line: int
    when: Expression | None = None
    unless: tuple[str, ...] = ()
    after: Wait | None = None
    delay: Wait | None = None
    send_at: SendAt | None = None
    audience: Audience | None = None
    category: Category = Category.TRANSACTIONAL
    enabled: bool = True
    to: str | None = None
    max_age: timedelta | None = None
    description: str = ""
    after_response_time: bool = False  # `after: response_time`: the case's promised reply time
    response_offset: timedelta = timedelta(0)  # `response_time - 30m`: this much before (negative)
    at: At | None = None  # `at: order.promised_date 14:00`: a time of day on a date the order carries
    locale: str | None = None  # a fixed language (internal notices), else the customer's
    schedule: Schedule | None = None  # calendar rules fire on cron ticks instead of events
    superseded_by: tuple[str, ...] = ()  # skip if one of these events is known when it would go
    hold_while: str | None = None  # "case.open": wait while the customer has an open case
    fingerprint: str = ""  # a hash of the rule's definition: stored with what it decided

    def due_after(self, response_times: Mapping[str, Wait], priority: str | None) -> Wait:
        """How long after the event the message falls due (send_at aside)."""
        if self.after_response_time:
            return response_times.get(priority or "normal", response_times["normal"])
        return self.wait

    @property
    def source(self) -> str:
        return self.on.split(".", 1)[0]

    @property
    def wait(self) -> Wait:
        """How long after the event the message falls due (send_at aside)."""
        return self.after or self.delay or timedelta(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSet:
    version: int
    defaults: Defaults
    rules: tuple[Rule, ...]
    path: str
    digest: str  # sha256 of the file, shown by `status`
    calendar: Calendar = field(default_factory=Calendar)  # for "2 business days"

    def enabled_on(self, event_type: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled and rule.on == event_type)

    def by_name(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def max_age(self, rule: Rule) -> timedelta:
        return rule.max_age or self.defaults.max_age[rule.category]

    @property
    def watched_types(self) -> frozenset[str]:
        """Event types some enabled rule triggers on or waits for."""
        types = {rule.on for rule in self.rules if rule.enabled}
        types.update(t for rule in self.rules if rule.enabled for t in rule.unless)
        return frozenset(types)
