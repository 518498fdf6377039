"""The Date set at hand-over: the line of the hand-over's second and offset, in place of ours,
and nothing else of the message touched (a `Date:` in a body stays)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from notifier.compose.handover import stamped

MESSAGE = b"From: a@example.com\r\nDate: then\r\nSubject: s\r\n\r\nbody\r\nDate: in the body\r\n"


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 12, 6, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 12, 7, 7, 59, 59, 1, tzinfo=timezone(timedelta(hours=8))),  # the same second
        datetime(2026, 12, 7, 0, 0, 0, tzinfo=UTC),
    ],
)
def test_the_date_is_the_hand_overs_second_and_offset(now: datetime) -> None:
    expected = MESSAGE.replace(b"Date: then", b"Date: " + format_datetime(now).encode("ascii"))
    assert stamped(MESSAGE, now) == expected


def test_the_same_instant_with_another_offset_shows_that_offset() -> None:
    utc = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
    taipei = utc.astimezone(timezone(timedelta(hours=8)))
    assert b"Date: Sun, 06 Dec 2026 23:00:00 +0000\r\n" in stamped(MESSAGE, utc)
    assert b"Date: Mon, 07 Dec 2026 07:00:00 +0800\r\n" in stamped(MESSAGE, taipei)


def test_a_message_without_our_date_gets_one_first() -> None:
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    line = b"Date: " + format_datetime(now).encode("ascii") + b"\r\n"
    assert stamped(b"Subject: s\r\n\r\nDate: body\r\n", now) == line + b"Subject: s\r\n\r\nDate: body\r\n"
    assert stamped(b"no header block", now) == line + b"no header block"


def test_a_naive_date_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        stamped(MESSAGE, datetime(2026, 12, 6, 12))
