"""Business time across weekends, holidays, rush days and DST."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from notifier.core.business import BusinessDuration, Calendar, parse_business, weekday_numbers

TAIPEI = Calendar(
    timezone=ZoneInfo("Asia/Taipei"),
    holidays=frozenset({"2026-02-16", "2026-02-17"}),
    rush_days=frozenset({"02-14"}),
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_parse_business() -> None:
    assert parse_business("2 business days") == BusinessDuration(2, "days")
    assert parse_business("1 business day") == BusinessDuration(1, "days")
    assert parse_business("4 business hours") == BusinessDuration(4, "hours")
    assert parse_business("48h") is None and parse_business("2 days") is None


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        # Thursday 12 Feb 2026, 10:00 Taipei (02:00 UTC) + 2 business days: Fri 13, then Mon 16 and
        # Tue 17 are holidays, Sat/Sun are not working days -> Wed 18 Feb 10:00 Taipei.
        ("2026-02-12 02:00", BusinessDuration(2, "days"), "2026-02-18 02:00"),
        # Friday 13 Feb 10:00 + 1 business day: Sat 14 (also a rush day), Sun, Mon/Tue holidays -> Wed 18.
        ("2026-02-13 02:00", BusinessDuration(1, "days"), "2026-02-18 02:00"),
        # An ordinary Tuesday: 10 Feb 10:00 + 2 business days -> Thursday 12 Feb 10:00.
        ("2026-02-10 02:00", BusinessDuration(2, "days"), "2026-02-12 02:00"),
        # Friday 13 Feb 16:00 Taipei + 4 business hours: 2 h on Friday, then Wed 18 from 09:00 -> 11:00.
        ("2026-02-13 08:00", BusinessDuration(4, "hours"), "2026-02-18 03:00"),
        # Saturday night is outside work: the clock starts at the next opening (Wed 18 09:00 here).
        ("2026-02-14 14:00", BusinessDuration(1, "hours"), "2026-02-18 02:00"),
    ],
)
def test_business_time_skips_weekends_holidays_and_rush_days(
    start: str, duration: BusinessDuration, expected: str
) -> None:
    assert TAIPEI.add(utc(start), duration) == utc(expected)


def test_rush_day_counts_every_year() -> None:
    assert not TAIPEI.counts(datetime(2027, 2, 14).date())
    assert TAIPEI.counts(datetime(2027, 2, 15).date())


def test_business_days_across_a_dst_change_keep_the_local_time() -> None:
    new_york = Calendar(timezone=ZoneInfo("America/New_York"))
    # Friday 6 March 2026 10:00 EST (15:00 UTC) + 2 business days -> Tuesday 10 March 10:00 EDT (14:00 UTC).
    assert new_york.add(utc("2026-03-06 15:00"), BusinessDuration(2, "days")) == utc("2026-03-10 14:00")


def test_business_hours_across_a_dst_change() -> None:
    london = Calendar(timezone=ZoneInfo("Europe/London"), opens=time(9), closes=time(17))
    # Friday 27 March 2026 16:00 GMT + 3 business hours: 1 h Friday, 2 h Monday 30 March from
    # 09:00 BST -> 11:00 BST = 10:00 UTC.
    assert london.add(utc("2026-03-27 16:00"), BusinessDuration(3, "hours")) == utc("2026-03-30 10:00")


def test_weekday_names() -> None:
    assert weekday_numbers(["Mon", "fri", "saturday"]) == frozenset({0, 4, 5})
    with pytest.raises(ValueError, match="not a weekday"):
        weekday_numbers(["funday"])
