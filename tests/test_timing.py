"""Pure time arithmetic: durations, expiry, quiet hours across midnight and DST."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from notifier.core.timing import format_duration, is_expired, parse_duration, quiet_hours_end

QUIET = (time(21, 0), time(8, 0))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("48h", 172800),
        ("3d", 259200),
        (" 2h ", 7200),
        ("500ms", 0.5),
        ("0.5s", 0.5),
        ("1.5h", 5400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["2 hours", "h", "-3d", "3w", "", "1.5.h", True])
def test_bad_durations_say_what_is_accepted(text: object) -> None:
    with pytest.raises(ValueError, match=r"30s, 15m, 48h, 3d"):
        parse_duration(text)  # type: ignore[arg-type]


def test_format_duration_round_trips() -> None:
    for text in ("30s", "15m", "48h", "3d", "90s", "500ms", "1.5s"):
        assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)
    assert format_duration(timedelta(hours=48)) == "2d" and format_duration(timedelta(seconds=90)) == "90s"


def test_expiry_boundary() -> None:
    due = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    assert not is_expired(due, timedelta(days=2), due + timedelta(days=2))
    assert is_expired(due, timedelta(days=2), due + timedelta(days=2, seconds=1))
    assert not is_expired(due, None, due + timedelta(days=400))


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "moment", "expected"),
    [
        # Taipei is UTC+8 all year: 22:00 local is 14:00 UTC; quiet until 08:00 local = 00:00 UTC.
        ("Asia/Taipei", "2026-02-10 14:00", "2026-02-11 00:00"),
        ("Asia/Taipei", "2026-02-10 12:59", None),  # 20:59 local: not yet quiet
        ("Asia/Taipei", "2026-02-10 13:00", "2026-02-11 00:00"),  # 21:00 sharp: quiet
        ("Asia/Taipei", "2026-02-10 23:59", "2026-02-11 00:00"),  # 07:59 local
        ("Asia/Taipei", "2026-02-11 00:00", None),  # 08:00 sharp: over
        ("Asia/Taipei", "2026-02-10 17:30", "2026-02-11 00:00"),  # 01:30 local, after midnight
        # New York springs forward on 2026-03-08 at 02:00: the night is one hour shorter.
        ("America/New_York", "2026-03-08 03:00", "2026-03-08 12:00"),  # 22:00 EST -> 08:00 EDT
        ("America/New_York", "2026-11-01 02:00", "2026-11-01 13:00"),  # 22:00 EDT -> 08:00 EST
        # London springs forward on 2026-03-29 at 01:00 UTC.
        ("Europe/London", "2026-03-28 22:00", "2026-03-29 07:00"),  # 22:00 GMT -> 08:00 BST
        ("Europe/London", "2026-10-24 21:30", "2026-10-25 08:00"),  # 22:30 BST -> 08:00 GMT
        ("Europe/London", "2026-06-01 12:00", None),
    ],
)
def test_quiet_hours_across_midnight_and_dst(zone: str, moment: str, expected: str | None) -> None:
    result = quiet_hours_end(_utc(moment), ZoneInfo(zone), *QUIET)
    assert result == (None if expected is None else _utc(expected))


def test_quiet_hours_within_one_day() -> None:
    lunch = (time(12, 0), time(13, 0))
    assert quiet_hours_end(_utc("2026-02-10 12:30"), ZoneInfo("UTC"), *lunch) == _utc("2026-02-10 13:00")
    assert quiet_hours_end(_utc("2026-02-10 13:30"), ZoneInfo("UTC"), *lunch) is None
