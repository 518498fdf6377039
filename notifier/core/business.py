"""Business time: "2 business days" and "4 business hours" against the shop's calendar.

Pure arithmetic, done on the local calendar of the shop's timezone and converted back to UTC,
so a DST change in between moves nothing it should not. The calendar (rules.yaml `calendar:`):

    working_days   the weekdays the shop answers (default Monday to Friday)
    opening_hours  local opening time and closing time (default 09:00-18:00)
    holidays       dates the shop is closed ("2026-02-16", or "12-25" for every year)
    rush_days      dates the shop is open but so busy that promises do not count them
                   ("02-14": a promise made on 13 February skips Valentine's Day)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from notifier.core.suggest import did_you_mean, timezone_hint

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_BUSINESS = re.compile(r"^\s*(\d+)\s+business\s+(day|days|hour|hours)\s*$")


@dataclass(frozen=True, slots=True)
class BusinessDuration:
    """An amount of working time: whole business days or business hours."""

    amount: int
    unit: str  # "days" | "hours"

    def __str__(self) -> str:
        return f"{self.amount} business {self.unit}"


def parse_business(text: object) -> BusinessDuration | None:
    """'2 business days' -> BusinessDuration(2, 'days'); anything else -> None."""
    match = _BUSINESS.match(str(text))
    if match is None:
        return None
    unit = "days" if match[2].startswith("day") else "hours"
    return BusinessDuration(int(match[1]), unit)


def _matches(day: date, dates: frozenset[str]) -> bool:
    return day.isoformat() in dates or day.strftime("%m-%d") in dates


@dataclass(frozen=True, slots=True, kw_only=True)
class Calendar:
    """When the shop works, in its own timezone."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    working_days: frozenset[int] = frozenset(range(5))  # 0 = Monday
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    holidays: frozenset[str] = frozenset()
    rush_days: frozenset[str] = frozenset()

    def counts(self, day: date) -> bool:
        """Whether working time on `day` counts towards a promise."""
        return (
            day.weekday() in self.working_days
            and not _matches(day, self.holidays)
            and not _matches(day, self.rush_days)
        )

    def _at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.timezone)

    def _next_counting_day(self, day: date) -> date:
        day += timedelta(days=1)
        for _ in range(3660):  # a calendar with no working day at all is refused at load time
            if self.counts(day):
                return day
            day += timedelta(days=1)
        raise ValueError("the calendar has no working day in ten years")

    def start_of_work(self, moment: datetime) -> datetime:
        """The first counting moment at or after `moment` (local opening hours)."""
        local = moment.astimezone(self.timezone)
        day, clock = local.date(), local.time().replace(tzinfo=None)
        if self.counts(day) and clock < self.closes:
            return max(local, self._at(day, self.opens))
        return self._at(self._next_counting_day(day), self.opens)

    def add(self, moment: datetime, duration: BusinessDuration) -> datetime:
        """`moment` plus `duration` of working time, as an aware UTC datetime."""
        start = self.start_of_work(moment)
        if duration.unit == "days":
            return self._add_days(start, duration.amount).astimezone(UTC)
        return self._add_hours(start, timedelta(hours=duration.amount)).astimezone(UTC)

    def _add_days(self, start: datetime, days: int) -> datetime:
        day, clock = start.date(), start.time().replace(tzinfo=None)
        for _ in range(days):
            day = self._next_counting_day(day)
        return self._at(day, clock)

    def _add_hours(self, start: datetime, left: timedelta) -> datetime:
        current = start
        while True:
            closing = self._at(current.date(), self.closes)
            available = closing - current
            if left <= available:
                return current + left
            left -= available
            current = self._at(self._next_counting_day(current.date()), self.opens)


def weekday_numbers(names: list[str]) -> frozenset[int]:
    """['mon', 'tue'] -> {0, 1}; raises ValueError naming an unknown day."""
    numbers = set()
    for name in names:
        key = str(name).strip().lower()[:3]
        if key not in WEEKDAYS:
            raise ValueError(f"{name!r} is not a weekday (use mon, tue, wed, thu, fri, sat, sun)")
        numbers.add(WEEKDAYS.index(key))
    return frozenset(numbers)


CALENDAR_KEYS = ("timezone", "working_days", "opening_hours", "holidays", "rush_days")


def _clock(text: object) -> time:
    try:
        hours, minutes = str(text).split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a time of day like 09:00") from exc


def _dates(values: object, key: str) -> frozenset[str]:
    if not isinstance(values, list):
        raise ValueError(f"{key} must be a list of dates like 2026-02-16 or 02-14")
    found = set()
    for value in values:
        text = str(value)
        try:
            date.fromisoformat(text if len(text) == 10 else f"2000-{text}")
        except ValueError as exc:
            raise ValueError(f"{key}: {text!r} is not a date like 2026-02-16 or 02-14") from exc
        found.add(text)
    return frozenset(found)


def calendar_from(mapping: dict[str, object]) -> Calendar:
    """rules.yaml's `calendar:` mapping -> Calendar; ValueError says what is wrong."""
    unknown = sorted(set(mapping) - set(CALENDAR_KEYS))
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in calendar{did_you_mean(unknown[0], CALENDAR_KEYS)} "
            f"(allowed: {', '.join(CALENDAR_KEYS)})"
        )
    try:
        zone = ZoneInfo(str(mapping.get("timezone", "UTC")))
    except (KeyError, ValueError) as exc:
        zone_name = mapping.get("timezone")
        raise ValueError(
            f"calendar timezone {zone_name!r} is not an IANA timezone{timezone_hint(zone_name)}"
        ) from exc
    days = mapping.get("working_days", list(WEEKDAYS[:5]))
    working = weekday_numbers(list(days) if isinstance(days, list) else [str(days)])
    if not working:
        raise ValueError("calendar working_days must name at least one day")
    hours = mapping.get("opening_hours") or {"start": "09:00", "end": "18:00"}
    if not isinstance(hours, dict) or set(hours) != {"start", "end"}:
        raise ValueError('calendar opening_hours must be { start: "09:00", end: "18:00" }')
    opens, closes = _clock(hours["start"]), _clock(hours["end"])
    if opens >= closes:
        raise ValueError("calendar opening_hours must open before they close")
    return Calendar(
        timezone=zone,
        working_days=working,
        opens=opens,
        closes=closes,
        holidays=_dates(mapping.get("holidays", []), "holidays"),
        rush_days=_dates(mapping.get("rush_days", []), "rush_days"),
    )
