"""The template filters: dates, times and money in the message's locale and timezone.

    value|datetime(format="medium")  value|date(format="long")  value|time(format="short")
    amount|money(currency=None)      text|nl2br

Each reads the locale and the timezone from the template's context, or, in macros imported
without context (which Jinja builds once and reuses for every message), from the context of
the message being rendered (`rendering_message`). Babel does the formatting; the results
of the slow calls are cached.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency
from jinja2.runtime import Context
from markupsafe import Markup, escape

from notifier.compose.inlining import hole

__all__ = ["FILTERS", "FilterError", "rendering_message"]

log = logging.getLogger("notifier.compose.rendering")

_BABEL_NAMES = {"en": "en", "zh-CN": "zh_Hans_CN", "zh-TW": "zh_Hant_TW"}
# Local conventions Babel does not follow: Taiwan writes NT$, not a bare $.
_SYMBOLS = {("zh_Hant_TW", "TWD"): ("$", "NT$")}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# The context of the message being rendered, for filters in macros imported without context.
_message: ContextVar[Mapping[str, Any] | None] = ContextVar("notifier_message", default=None)


class FilterError(ValueError):
    """A filter got a value it cannot format; the message says which and why."""


@contextmanager
def rendering_message(values: Mapping[str, Any]) -> Iterator[None]:
    """While a message renders: the context its filters fall back on."""
    token = _message.set(values)
    try:
        yield
    finally:
        _message.reset(token)


@lru_cache(maxsize=64)
def _babel_locale(code: str) -> Locale:
    try:
        return Locale.parse(_BABEL_NAMES.get(code, code.replace("-", "_")))
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse("en")


@lru_cache(maxsize=64)
def _babel_name(code: str) -> str:
    """The Babel locale's name ("zh_Hant_TW") for a template locale: the formatting caches' key."""
    return str(_babel_locale(code))


@lru_cache(maxsize=64)
def _locale_named(name: str) -> Locale:
    return Locale.parse(name)


@lru_cache(maxsize=512)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        log.warning("unknown timezone %r; showing times in UTC", name)
        return UTC


def _bound(ctx: Context, filter_name: str) -> tuple[str, tzinfo]:
    """The Babel locale name and the timezone the filters use for this context."""
    values = _values(ctx)
    code = values.get("locale")
    if not isinstance(code, str):
        raise FilterError(f"the {filter_name} filter cannot see 'locale' here")
    zone = values.get("timezone")
    return _babel_name(code), _zone(zone) if isinstance(zone, str) and zone else UTC


def _values(ctx: Context) -> Context | Mapping[str, Any]:
    """What the filters read the locale, timezone and currency from: the template's context,
    or, in macros imported without context (which Jinja builds once and reuses), the
    message's."""
    if "locale" in ctx:
        return ctx
    return _message.get() or ctx


def _aware(value: Any, filter_name: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise FilterError(f"{filter_name}: {value!r} is not a date and time") from None
    if not isinstance(value, datetime):
        raise FilterError(f"{filter_name} expects a date and time, got {type(value).__name__} {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@jinja2.pass_context
def _datetime_filter(ctx: Context, value: Any, format: str = "medium") -> str:
    if value is None:
        return ""
    name, zone = _bound(ctx, "datetime")
    return format_datetime(_aware(value, "datetime"), format, tzinfo=zone, locale=_locale_named(name))


@jinja2.pass_context
def _date_filter(ctx: Context, value: Any, format: str = "long") -> str:
    if value is None:
        return ""
    name, zone = _bound(ctx, "date")
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        value = date.fromisoformat(value)
    if isinstance(value, datetime) or not isinstance(value, date):
        value = _aware(value, "date").astimezone(zone).date()
    if type(value) is date and type(format) is str:
        return _format_date(value, format, name)
    return format_date(value, format, locale=_locale_named(name))


@lru_cache(maxsize=4096)
def _format_date(value: date, format: str, locale_name: str) -> str:
    """Cached: a date is the same text every time, and many messages show the same few days."""
    return format_date(value, format, locale=_locale_named(locale_name))


@jinja2.pass_context
def _time_filter(ctx: Context, value: Any, format: str = "short") -> str:
    if value is None:
        return ""
    name, zone = _bound(ctx, "time")
    babel_locale = _locale_named(name)
    if isinstance(value, time):
        return format_time(value, format, locale=babel_locale)
    return format_time(_aware(value, "time"), format, tzinfo=zone, locale=babel_locale)


@jinja2.pass_context
def _money_filter(ctx: Context, amount: Any, currency: str | None = None) -> str:
    if amount is None:
        return ""
    name, _ = _bound(ctx, "money")
    code = currency or _context_currency(ctx)
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation:
        raise FilterError(f"money: {amount!r} is not an amount") from None
    return _format_money(value, code.upper(), name)


def _context_currency(ctx: Context) -> str:
    values = _values(ctx)
    for key in ("order", "event", "product"):
        holder = values.get(key)
        if isinstance(holder, Mapping) and isinstance(holder.get("currency"), str):
            return holder["currency"]
    raise FilterError("money needs a currency here: write amount|money('USD')")


@lru_cache(maxsize=4096)
def _format_money(value: Decimal, currency: str, locale_name: str) -> str:
    """Cached: Babel takes ~40 µs per amount, and a message repeats the same few amounts."""
    babel_locale = _locale_named(locale_name)
    try:
        text = format_currency(value, currency, locale=babel_locale)
    except (ValueError, KeyError) as exc:
        raise FilterError(f"money: cannot format {value} {currency}: {exc}") from None
    symbol = _SYMBOLS.get((locale_name, currency))
    if symbol and symbol[1] not in text:
        text = text.replace(symbol[0], symbol[1], 1)
    if value == value.to_integral_value() and _cash_digits(currency) == 0:
        decimal_sign = babel_locale.number_symbols["latn"]["decimal"]
        text = re.sub(re.escape(decimal_sign) + r"0+(?!\d)", "", text)
    return text


@lru_cache(maxsize=64)
def _cash_digits(currency: str) -> int:
    fractions = get_global("currency_fractions")
    return int(fractions.get(currency, fractions["DEFAULT"])[2])


@jinja2.pass_eval_context
def _nl2br_filter(eval_ctx: Any, value: Any) -> str:
    text = "" if value is None else str(value)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if eval_ctx.autoescape:
        # Each line may be a hole (inlining.py), so an address does not make a page shape.
        return Markup("<br>\n").join(escape(hole(line)) for line in lines)
    return "\n".join(lines)


FILTERS = {
    "datetime": _datetime_filter,
    "date": _date_filter,
    "time": _time_filter,
    "money": _money_filter,
    "nl2br": _nl2br_filter,
}
