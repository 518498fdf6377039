"""A report that came back after the relay said 250, read: which recipients, what kind, why.

Delivery status notifications (RFC 3464) and the hundreds of provider formats that came
before them (Exim, qmail, Yahoo, Exchange, ...) are recognised by GNU Mailman's `flufl.bounce`;
the Status and Diagnostic-Code of an RFC 3464 report are read here, so that core/bounces.py can
tell a dead mailbox (5.1.1) from a block list (5.7.1) and a full one (4.2.2). Spam complaints
(ARF, RFC 5965: multipart/report; report-type=feedback-report) are read here too; flufl.bounce
does not know them.

Which notification a report is about: the bounce address it was sent to (the envelope
recipient, or Delivered-To / X-Original-To / To), else the Message-ID of the returned
original, else the failed recipient's address (`Report.candidates`, `Report.message_ids`).
"""

from __future__ import annotations

import email
import email.policy
import logging
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

from notifier.core.bounces import Kind, kind_of_status

__all__ = ["Finding", "Report", "read_report"]

log = logging.getLogger("notifier.bounces")

_DETAIL_LIMIT = 300
_ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")


@dataclass(frozen=True, slots=True)
class Finding:
    """One recipient a report is about."""

    address: str  # lower case
    kind: Kind
    detail: str  # the status and the far server's words, on one line


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    findings: tuple[Finding, ...]
    candidates: tuple[str, ...] = ()  # addresses the report was sent to (a bounce address?)
    message_ids: tuple[str, ...] = field(default_factory=tuple)  # of the returned original(s)

    @property
    def recognised(self) -> bool:
        return bool(self.findings)


def read_report(data: bytes, envelope_recipients: tuple[str, ...] = ()) -> Report:
    """Read one report; a message that is no report gives one with no findings."""
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    candidates = tuple(a.lower() for a in envelope_recipients) + _sent_to(message)
    message_ids = _original_ids(message)
    if _is_feedback(message):
        return Report(findings=_complaints(message), candidates=candidates, message_ids=message_ids)
    return Report(findings=_bounces(message), candidates=candidates, message_ids=message_ids)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:_DETAIL_LIMIT]


def _sent_to(message: Message) -> tuple[str, ...]:
    found: list[str] = []
    for name in _ENVELOPE_HEADERS:
        values = [str(v) for v in message.get_all(name, [])]
        found += [address.lower() for _, address in getaddresses(values) if address]
    return tuple(found)


def _originals(message: Message) -> list[Message]:
    """The returned original messages (or their headers) inside a report."""
    found: list[Message] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and part.is_multipart():
            found += [p for p in part.get_payload() if isinstance(p, Message)]
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found.append(email.message_from_bytes(payload, policy=email.policy.compat32))
    return found


def _original_ids(message: Message) -> tuple[str, ...]:
    ids = [str(o.get("message-id", "")).strip() for o in _originals(message)]
    return tuple(i for i in ids if i)


def _is_feedback(message: Message) -> bool:
    return message.get_content_type() == "multipart/report" and (
        str(message.get_param("report-type", "")).lower() == "feedback-report"
    )


def _feedback_fields(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]  # the email package reads the fields as one header block
            if isinstance(payload, str):
                return email.message_from_string(payload, policy=email.policy.compat32)
    return None


def _complaints(message: Message) -> tuple[Finding, ...]:
    fields = _feedback_fields(message)
    if fields is None:
        return ()
    kind = str(fields.get("feedback-type", "abuse")).strip().lower()
    agent = str(fields.get("user-agent", "")).strip()
    detail = _one_line(f"feedback-type {kind}" + (f" from {agent}" if agent else ""))
    addresses = [parseaddr(str(v))[1] for v in fields.get_all("original-rcpt-to", [])]
    if not addresses:
        for original in _originals(message):
            addresses += [a for _, a in getaddresses([str(v) for v in original.get_all("to", [])])]
    return tuple(Finding(a.lower(), Kind.COMPLAINT, detail) for a in dict.fromkeys(addresses) if a)


def _statuses(message: Message) -> dict[str, tuple[str, str]]:
    """RFC 3464 per-recipient fields: address -> (Status, Diagnostic-Code)."""
    found: dict[str, tuple[str, str]] = {}
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload():
            if not isinstance(block, Message):
                continue
            status = str(block.get("status", "")).strip()
            diagnostic = str(block.get("diagnostic-code", "")).strip()
            for name in ("original-recipient", "final-recipient"):
                value = str(block.get(name, ""))
                address = value.split(";", 1)[-1].strip().strip("<>").lower()
                if "@" in address:
                    found.setdefault(address, (status, diagnostic))
    return found


def _bounces(message: Message) -> tuple[Finding, ...]:
    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # a detector tripping over a malformed report: not a bounce we can read
        log.warning("a bounce report could not be read: %s", exc)
        return ()
    statuses = _statuses(message)
    findings: list[Finding] = []
    for raw, is_permanent in [(a, True) for a in sorted(permanent)] + [(a, False) for a in sorted(temporary)]:
        address = raw.decode("ascii", "replace").lower()
        status, diagnostic = statuses.get(address, ("", ""))
        kind = kind_of_status(status or None, permanent=is_permanent, diagnostic=diagnostic)
        detail = _one_line(" ".join(x for x in (status, diagnostic) if x))
        findings.append(Finding(address, kind, detail))
    return tuple(findings)
