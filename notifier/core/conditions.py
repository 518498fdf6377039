"""Sandboxed expressions for `when:` and `send_at:`.

They are Jinja expressions, the same syntax marketing uses in templates, evaluated in
Jinja's sandbox with undefined names as errors: `event.new_price > event.old_price`,
`order.total >= 200`. `send_at:` adds an optional duration offset at the end:
`event.effective_at - 21d`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
