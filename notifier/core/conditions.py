"""Sandboxed expressions for `when:` and `send_at:`.

They are Jinja expressions, the same syntax marketing uses in templates, evaluated in
Jinja's sandbox with undefined names as errors: `event.new_price > event.old_price`,
`order.total >= 200`. `send_at:` adds an optional duration offset at the end:
`event.effective_at - 21d`; `at:` a time of day on a date: `order.promised_date 14:00`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from notifier.core.timing import as_utc, parse_duration

# Names a condition may use; each is the same value the templates see.
CONDITION_NAMES = ("event", "order", "items", "customer", "case", "product")

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_OFFSET = re.compile(r"^(?P<base>.+?)\s*(?P<sign>[+-])\s*(?P<amount>\d+\s*[smhd])\s*$")


class ExpressionError(ValueError):
    """An expression that cannot be compiled or evaluated; the message says why."""


def _describe(exc: Exception) -> str:
    message = str(exc) or type(exc).__name__
    return message.replace("jinja2.exceptions.", "")


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled, sandboxed expression and the text it came from."""

    source: str
    _compiled: Any = field(repr=False, compare=False)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
            return self._compiled(**context)
        except (TemplateError, TypeError, ArithmeticError, ValueError, AttributeError) as exc:
            raise ExpressionError(f"{self.source!r} failed: {_describe(exc)}") from exc

    def holds(self, context: Mapping[str, Any]) -> bool:
        return bool(self.evaluate(context))


def compile_expression(source: str) -> Expression:
    """Compile `source` in the sandbox; a syntax error becomes an ExpressionError."""
    if not source.strip():
        raise ExpressionError("the expression is empty")
    try:
        compiled = _ENV.compile_expression(source, undefined_to_none=False)
    except TemplateError as exc:
        raise ExpressionError(f"{source!r} is not a valid expression: {_describe(exc)}") from exc
    return Expression(source, compiled)


@dataclass(frozen=True, slots=True)
class SendAt:
    """`send_at:` — a moment taken from the context, shifted by a duration."""

    source: str
    base: Expression
    offset: timedelta

    def moment(self, context: Mapping[str, Any]) -> datetime:
        value = self.base.evaluate(context)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError as exc:
                raise ExpressionError(f"{self.base.source!r} gave {value!r}, not a time") from exc
        if not isinstance(value, datetime):
            raise ExpressionError(f"{self.base.source!r} gave {value!r}, not a time")
        return as_utc(value) + self.offset


def compile_send_at(source: str) -> SendAt:
    """'event.effective_at - 21d' -> SendAt(base='event.effective_at', offset=-21 days)."""
    match = _OFFSET.match(source.strip())
    if match is None:
        return SendAt(source, compile_expression(source), timedelta(0))
    offset = parse_duration(match["amount"].replace(" ", ""))
    return SendAt(source, compile_expression(match["base"]), offset if match["sign"] == "+" else -offset)


CLOCKS = ("customer", "shop")  # whose wall clock an `at:` time of day is read on
_AT = re.compile(
    r"^(?P<base>.+?)(?:\s*(?P<sign>[+-])\s*(?P<days>\d+)\s*d)?\s+(?P<clock>\d{1,2}:\d{2})"
    r"(?:\s+(?P<whose>[a-z]+))?$"
)


@dataclass(frozen=True, slots=True)
class At:
    """`at:` — a time of day on a date the order or case carries, on the customer's clock (or
    the shop's): `order.promised_date 14:00`, `order.promised_date - 1d 17:00 shop`."""

    source: str
    base: Expression
    days: int  # whole days added to the date (negative: before it)
    clock: time
    whose: str  # "customer" | "shop"

    def day(self, context: Mapping[str, Any]) -> date | None:
        """The date the expression gives (None when the order or case has none)."""
        value = self.base.evaluate(context)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value[:10])
            except ValueError as exc:
                raise ExpressionError(f"{self.base.source!r} gave {value!r}, not a date") from exc
        if isinstance(value, datetime):
            raise ExpressionError(f"{self.base.source!r} gave a date and time; at: takes a date")
        if not isinstance(value, date):
            raise ExpressionError(f"{self.base.source!r} gave {value!r}, not a date")
        return value + timedelta(days=self.days)

    def moment(self, day: date, zone: tzinfo) -> datetime:
        """That day at the time of day on the wall clock of `zone`, in UTC. DST is the zone's:
        14:00 in London is 14:00 UTC in winter and 13:00 UTC in summer; a wall time skipped by
        the change (01:30 on the last Sunday of March) is read forward (02:30 BST)."""
        return datetime.combine(day, self.clock, tzinfo=zone).astimezone(UTC)


def compile_at(source: str) -> At:
    """'order.promised_date 14:00' -> At; ExpressionError says which part is wrong."""
    match = _AT.match(source.strip())
    if match is None:
        raise ExpressionError(
            f'{source!r} is not a date and a time of day: write e.g. "order.promised_date 14:00" '
            "(the customer's time) or \"order.promised_date 14:00 shop\" (the shop's calendar)"
        )
    whose = match["whose"] or "customer"
    if whose not in CLOCKS:
        raise ExpressionError(f"{whose!r} in {source!r} is neither customer nor shop (whose time of day)")
    hours, minutes = (int(part) for part in match["clock"].split(":"))
    if hours > 23 or minutes > 59:
        raise ExpressionError(f"{match['clock']!r} in {source!r} is not a time of day like 14:00")
    days = int(match["days"] or 0) * (-1 if match["sign"] == "-" else 1)
    return At(source, compile_expression(match["base"]), days, time(hours, minutes), whose)
