"""The last step before SMTP: the Date of the hand-over, then the DKIM signature.

A message is built once, when it is first rendered, and the same bytes go again on every
retry (so its Message-ID never changes). Its Date must not be the render's: a message
retried for hours would arrive dated hours back, which filters score as forged
(SpamAssassin DATE_IN_PAST_12_24). So the Date line is replaced here, just before the
message is handed to the server, and the signature, which covers the Date, is made after.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache

from notifier.compose.signing import Signer

__all__ = ["Handover", "stamped"]

# Our Date line: at the start of a line of the header block, never folded (build_message).
_DATE_LINE_RE = re.compile(rb"(?m)^Date: [^\r\n]*\r\n")


def stamped(message: bytes, now: datetime) -> bytes:
    """`message` with its Date set to `now` (timezone-aware); everything else as it was."""
    end = message.find(b"\r\n\r\n") + 2  # the header block and its last CRLF (1 if none)
    offset = now.utcoffset()
    if offset is None:
        raise ValueError("the Date must be a timezone-aware datetime")
    line = _date_line(now.replace(microsecond=0), offset)
    found = _DATE_LINE_RE.search(message, 0, end if end > 1 else len(message))
    if found is None:  # not one of ours: the Date goes first
        return line + message
    return b"".join((message[: found.start()], line, message[found.end() :]))


@lru_cache(maxsize=16)
def _date_line(second: datetime, offset: timedelta) -> bytes:
    # The Date shows whole seconds: messages handed over in the same second share the line,
    # formatted once. The offset is in the key because equal instants compare equal whatever
    # their offsets, and the line shows the offset.
    return b"Date: " + format_datetime(second).encode("ascii") + b"\r\n"


class Handover:
    """Date, then signature (when DKIM is configured), for every message the daemon sends."""

    def __init__(self, clock: Callable[[], datetime], signer: Signer | None = None) -> None:
        self.clock = clock
        self.signer = signer

    def __call__(self, message: bytes) -> bytes:
        message = stamped(message, self.clock())
        return self.signer.sign(message) if self.signer is not None else message
