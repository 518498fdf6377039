"""What a report that arrives after the relay said 250 means, and the bounce address that
says which notification it is about. Pure: the parsing is notifier.smtp.bounce_reports'.

A delivery status notification (RFC 3464) is read with the same table as a refusal on the
wire (core/refusal_codes.py), as if the far server had said it at RCPT TO:

| report | status | kind | the address |
|---|---|---|---|
| failed | 5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10 | hard bounce: the mailbox does not exist | suppressed |
| failed | none (a report in a provider's own format) | hard bounce | suppressed |
| failed | 5.7.x, other 5.x.x | refused later: policy, reputation, content | kept |
| failed or delayed | 4.x.x | soft bounce: full, greylisted, not now | kept |
| feedback (RFC 5965) | abuse, fraud, virus, other | complaint: marked as spam | suppressed |

The bounce address (VERP) is `<local>+<notification id>.<signature>@<bounce domain>`; the
signature is an HMAC of this database's id and the notification id with a key made once per
database, so a report naming a notification of another database or a made-up one is
recognised as not ours.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

from notifier.core.refusal_codes import Stage, enhanced_code, mailbox_gone

__all__ = ["Kind", "Verp", "kind_of_status", "suppresses", "words"]


class Kind(StrEnum):
    """What a report says became of a message that had been accepted."""

    HARD = "hard_bounce"  # the mailbox does not exist: suppressed
    REFUSED = "refused_later"  # refused for good, but not for the address (policy, content): kept
    SOFT = "soft_bounce"  # not delivered for now (full, greylisted): kept
    COMPLAINT = "complaint"  # the recipient marked it as spam (ARF): suppressed


_REPLY = re.compile(r"(?:^|[;\s])([2-5]\d\d)[ -]((?:[245]\.\d{1,3}\.\d{1,3})?)")


def kind_of_status(status: str | None, *, permanent: bool, diagnostic: str = "") -> Kind:
    """A recipient's kind, from its Status field (`5.1.1`) and Diagnostic-Code, if any.

    A generic `5.0.0` says nothing more, so the far server's reply quoted in the
    Diagnostic-Code decides (`smtp; 550 5.1.1 user unknown`, or a bare `550`); with neither, a
    permanent failure is taken as a hard bounce, as flufl.bounce's detectors mean it."""
    code = enhanced_code(status or "")
    if (code is not None and code[0] != 5) or not permanent:
        return Kind.SOFT
    if code is not None and code[1:] != (0, 0):
        # The far server's refusal, read as notifier reads one at RCPT TO (refusal_codes).
        return Kind.HARD if mailbox_gone(550, status or "", Stage.RCPT) else Kind.REFUSED
    reply = _REPLY.search(diagnostic)
    if reply is None:
        return Kind.HARD
    if reply[1].startswith("4"):
        return Kind.SOFT
    return Kind.HARD if mailbox_gone(int(reply[1]), reply[2], Stage.RCPT) else Kind.REFUSED


def suppresses(kind: Kind) -> bool:
    """Whether the address goes on the suppression list: a dead mailbox, or a complaint."""
    return kind in (Kind.HARD, Kind.COMPLAINT)


def words(kind: Kind, detail: str) -> str:
    """The report in plain words, for `history`."""
    said = f": {detail}" if detail else ""
    if kind is Kind.HARD:
        return f"bounced later, the mailbox does not exist{said}; the address is suppressed"
    if kind is Kind.COMPLAINT:
        return f"the recipient reported it as spam{said}; the address is suppressed"
    if kind is Kind.REFUSED:
        return f"refused later by the receiving server{said}; the address is not suppressed"
    return f"not delivered for now (soft bounce){said}; the address is not suppressed"


_TOKEN = re.compile(r"^(?P<local>[^+@]+)\+(?P<id>\d{1,18})\.(?P<sig>[0-9a-z]{16})@(?P<domain>.+)$")


@dataclass(frozen=True, slots=True)
class Verp:
    """Bounce addresses for one database on one bounce domain."""

    domain: str
    key: str  # this database's bounce key (notifier_state), never shown
    database_id: str
    local: str = "bounces"

    def address(self, notification_id: int) -> str:
        """The envelope sender of one notification."""
        return f"{self.local}+{notification_id}.{self._sign(notification_id)}@{self.domain}"

    def notification_of(self, address: str) -> int | None:
        """The notification a bounce address names, if it is one of ours and the signature holds."""
        found = _TOKEN.match(address.strip().strip("<>").lower())
        if found is None or found["domain"] != self.domain.lower():
            return None
        number = int(found["id"])
        return number if hmac.compare_digest(found["sig"], self._sign(number)) else None

    def _sign(self, notification_id: int) -> str:
        message = f"{self.database_id}:{notification_id}".encode()
        return hmac.new(self.key.encode(), message, hashlib.sha256).hexdigest()[:16]
