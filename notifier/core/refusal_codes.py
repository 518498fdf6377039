"""What an SMTP refusal means, read from its enhanced status code and its stage (RFC 3463).

THE table: the one place that decides whether a permanent refusal says "this mailbox does not
exist" (the address goes on the suppression list) or anything else (the one message fails with
the server's words; nothing is suppressed). A reply code alone says too little: a relay answers
`550` for a dead mailbox, for a block list and for spam alike, and only the enhanced code
(`5.1.1` against `5.7.1`) and the stage (a dead mailbox is refused at RCPT TO, never after the
message was read) tell them apart.

| stage | enhanced code | means | suppress |
|---|---|---|---|
| RCPT | 5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10 | the mailbox (or its domain) does not exist | yes |
| RCPT | none, reply 550 | the mailbox does not exist (servers without RFC 3463) | yes |
| any | 5.7.x | refused by policy or reputation (block list, authentication, spam) | no |
| DATA | any | the message itself was refused (content, size, spam) | no |
| MAIL | any | the sender was refused | no |
| any | 5.2.x, 5.3.x | the mailbox is full or disabled, or the system cannot take it | no |
| any | anything else | refused | no |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from notifier.core.values import SendResult

__all__ = ["Refused", "Stage", "enhanced_code", "mailbox_gone", "meaning"]


class Stage(StrEnum):
    """Where in the SMTP transaction the server said no."""

    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"  # the DATA command or the message after it


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused(SendResult):
    """A SendResult for a refusal, with the stage it came at."""

    stage: Stage


# RFC 3463 3.2: X.1.Y are addressing statuses; these say the address is bad for good.
_MAILBOX_GONE = frozenset({(1, 1), (1, 2), (1, 3), (1, 6), (1, 10)})
_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\S)")
_NO_SUCH_USER = 550  # at RCPT, with no enhanced code: how older servers say "no such user"


def enhanced_code(reply: str) -> tuple[int, int, int] | None:
    """The enhanced status code a reply text starts with ('5.1.1 No such user'), if any."""
    found = _ENHANCED.match(reply)
    if found is None:
        return None
    return int(found[1]), int(found[2]), int(found[3])


def mailbox_gone(code: int | None, reply: str, stage: Stage | None) -> bool:
    """Whether a permanent refusal says the recipient's mailbox does not exist (suppress it)."""
    if code is None or not 500 <= code < 600 or stage is not Stage.RCPT:
        return False
    enhanced = enhanced_code(reply)
    if enhanced is None:
        return code == _NO_SUCH_USER
    return enhanced[0] == 5 and enhanced[1:] in _MAILBOX_GONE


def meaning(code: int | None, reply: str, stage: Stage | None) -> str:
    """The refusal in plain words, for `history`."""
    at = f" at {stage}" if stage is not None else ""
    if mailbox_gone(code, reply, stage):
        return f"the mailbox does not exist (refused{at}); the address is suppressed"
    enhanced = enhanced_code(reply)
    if enhanced is not None and enhanced[1] == 7:
        kind = "refused by the server's policy (block list, reputation or authentication)"
    elif stage is Stage.DATA:
        kind = "the message itself was refused (content, size or spam)"
    elif stage is Stage.MAIL:
        kind = "the sender address was refused"
    elif enhanced is not None and enhanced[1] in (2, 3):
        kind = "the mailbox or the receiving system cannot take it"
    else:
        kind = "refused"
    return f"{kind}{at}; only this message failed, the address is not suppressed"
