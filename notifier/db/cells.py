"""One value of an order-system row, checked at the edge where rows become values.

The order system owns its tables, and in SQLite a column's type is a suggestion: a name can
hold bytes, a total can hold text, a timestamp can hold anything. Each function here takes
the raw value the driver handed back and returns it typed, or raises `BadValue` with what is
wrong in plain words ("customers.name of customer 7 holds bytes that are not UTF-8 text").
The caller turns that into the Subject's or Event's `problem`, never into a stopped batch.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from notifier.core.vocabulary import parse_timestamp

LONGEST_TEXT = 10_000  # characters: more is not a name, a subject or an address
LARGEST_AMOUNT = Decimal(10) ** 10  # NUMERIC(12, 2)
LARGEST_INTEGER = 2**63 - 1


class BadValue(ValueError):
    """A value of a row that notifier cannot use, in plain words."""


class Where:
    """Where a value sits ("customers.name of customer 7"), put into words only for a message:
    every value of every row read is checked, and nearly all of them are fine."""

    __slots__ = ("column", "row", "table")

    def __init__(self, table: str, row: object, column: str) -> None:
        self.table, self.row, self.column = table, row, column

    def __str__(self) -> str:
        return f"{self.table}.{self.column} of {self.table.rstrip('s').replace('_', ' ')} {self.row}"

    def __format__(self, _spec: str) -> str:  # f-strings put it in as its words
        return str(self)


def raw(table: sa.TableClause) -> Any:
    """SELECT every column as the driver hands it back: SQLAlchemy's own conversions (dates,
    numbers) raise on a bad value and would take the whole query down with them."""
    return sa.select(*(sa.type_coerce(column, sa.types.NullType()).label(column.name) for column in table.c))


def shown(value: Any) -> str:
    """A value for a message: short, whatever its size."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}... ({len(text)} characters)"


def _kind(value: Any) -> str:
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, bool):
        return "a true/false value"
    if isinstance(value, int | float | Decimal):
        return f"the number {shown(value)}"
    if isinstance(value, str):
        return f"the text {shown(value)}"
    return f"a {type(value).__name__}"


def text(value: Any, where: str | Where, *, default: str | None = None, nullable: bool = False) -> str | None:
    """Text, decoded from UTF-8 bytes if need be; None only where allowed."""
    if type(value) is str and len(value) <= LONGEST_TEXT and "\x00" not in value:
        return value  # the usual case, first
    if value is None:
        if default is not None or nullable:
            return default
        raise BadValue(f"{where} is empty (NULL)")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise BadValue(f"{where} holds bytes that are not UTF-8 text") from None
    if not isinstance(value, str):
        raise BadValue(f"{where} holds {_kind(value)} where text belongs")
    if len(value) > LONGEST_TEXT:
        raise BadValue(f"{where} is {len(value)} characters long (at most {LONGEST_TEXT} can be used)")
    if "\x00" in value:
        raise BadValue(f"{where} holds a NUL character")
    return value


def integer(value: Any, where: str | Where, *, nullable: bool = False) -> int | None:
    if type(value) is int and -LARGEST_INTEGER <= value <= LARGEST_INTEGER:
        return value  # the usual case, first
    if value is None:
        if nullable:
            return None
        raise BadValue(f"{where} is empty (NULL)")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadValue(f"{where} holds {_kind(value)} where a whole number belongs")
    if abs(value) > LARGEST_INTEGER:
        raise BadValue(f"{where} holds {shown(value)}, too large a number")
    return value


def amount(value: Any, where: str | Where) -> Decimal:
    """Money as Decimal, via str so 19.9 stays 19.9."""
    if value is None:
        raise BadValue(f"{where} is empty (NULL)")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise BadValue(f"{where} holds {_kind(value)} where an amount belongs")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadValue(f"{where} holds {_kind(value)} where an amount belongs") from None
    if not number.is_finite() or abs(number) >= LARGEST_AMOUNT:
        raise BadValue(f"{where} holds {shown(value)}, not a usable amount")
    return number


def timestamp(value: Any, where: str | Where) -> datetime:
    if value is None:
        raise BadValue(f"{where} is empty (NULL)")
    try:
        return parse_timestamp(value.decode("utf-8") if isinstance(value, bytes) else value)
    except (ValueError, TypeError, OverflowError):
        raise BadValue(f"{where} holds {_kind(value)}, not a timestamp") from None


def day(value: Any, where: str | Where) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(text(value, where, nullable=True)[:10])  # type: ignore[index]
    except (ValueError, TypeError):
        raise BadValue(f"{where} holds {_kind(value)}, not a date") from None


def flag(value: Any, where: str | Where) -> bool:
    """A boolean: true/false, or 0/1 as SQLite stores it; NULL is false."""
    if value is None:
        return False
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise BadValue(f"{where} holds {_kind(value)} where true or false belongs")
