"""Pure time arithmetic: durations, due times and expiry.

Nothing here reads a clock: every function takes `now` (or a moment) as an argument, so
freezegun tests, `check` and `history` can all reuse it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_FORMS = "use e.g. 500ms, 0.5s, 30s, 15m, 48h, 3d"


def parse_duration(text: str | int | float) -> timedelta:
    """'500ms', '0.5s', '30s', '15m', '48h', '3d' -> timedelta.

    A bare number is refused: `after: 48` could mean 48 hours as well as 48 seconds, and a
    guess either way sends mail at the wrong time. Raises ValueError with the fix.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration ({_FORMS})")
    if isinstance(text, int | float) or re.fullmatch(r"\s*-?\d+(?:\.\d+)?\s*", str(text)):
        amount = str(text).strip()
        raise ValueError(f"{amount} has no unit: write {amount}h, {amount}m or {amount}s")
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration ({_FORMS})")
    amount, unit = match.groups()
    return timedelta(seconds=float(amount) * _UNIT_SECONDS[unit])


def format_duration(value: timedelta) -> str:
    """timedelta -> the shortest exact form parse_duration accepts ('48h', '90s', '500ms')."""
    millis = round(value.total_seconds() * 1000)
    if millis % 1000:
        return f"{millis}ms"
    seconds = millis // 1000
    for unit in ("d", "h", "m"):
        size = int(_UNIT_SECONDS[unit])
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; naive values are taken as UTC (the schema stores UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC (freezegun-friendly)."""
    return datetime.now(UTC)


def expires_at(due_at: datetime, max_age: timedelta | None) -> datetime | None:
    """The moment after which a message that fell due at `due_at` is too stale to send."""
    return None if max_age is None else due_at + max_age


def is_expired(due_at: datetime, max_age: timedelta | None, now: datetime) -> bool:
    """True when sending now would be more than `max_age` after the message fell due."""
    limit = expires_at(due_at, max_age)
    return limit is not None and now > limit


def quiet_hours_end(moment: datetime, zone: tzinfo, start: time, end: time) -> datetime | None:
    """When `moment` falls inside the quiet hours of `zone`, the UTC moment they end; else None.

    Quiet hours may span midnight (21:00-08:00). The end is computed on the local calendar and
    converted back with the offset in force then, so a DST change overnight moves it correctly.
    """
    if start == end:
        return None
    local = moment.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    spans_midnight = start > end
    inside = (clock >= start or clock < end) if spans_midnight else (start <= clock < end)
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if spans_midnight and clock >= start else local.date()
    ends = datetime.combine(end_day, end, tzinfo=zone)
    # A wall time skipped by DST (rare for an end of quiet hours) resolves forward, never back.
    return max(ends.astimezone(UTC), moment)
