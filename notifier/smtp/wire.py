"""One message on the wire, one command at a time: the envelope checks, the DATA payload,
and MAIL, RCPT, DATA for a server without PIPELINING (`pipelining.py` does it with).
"""

from __future__ import annotations

import re

from aiosmtplib import (
    SMTP,
    SMTPDataError,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPStatus,
    SMTPTimeoutError,
)
from aiosmtplib.email import parse_address

__all__ = ["MAILBOX", "data_payload", "envelope_address", "mail_options", "transaction"]

# One envelope mailbox: no spaces, controls, commas or angle brackets; an @ with text
# on both sides. Non-ASCII letters are allowed (they go with SMTPUTF8).
_NOT_IN_MAILBOX = r"\s\x00-\x1f\x7f<>,;()\[\]\\\"@"
MAILBOX = re.compile(f"[^{_NOT_IN_MAILBOX}]+@[^{_NOT_IN_MAILBOX}]+")
# What SMTP DATA needs of a message (RFC 5321 4.1.1.4, 4.5.2), done the way aiosmtplib does
# it: every line ending a CRLF, and a line starting with "." gets another "." in front.
_LINE_ENDING = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")


async def transaction(
    smtp: SMTP, mail: list[bytes], rcpt: bytes, rcpt_to: str, mail_from: str, payload: bytes
) -> str:
    """MAIL, RCPT, DATA one at a time, for a server without PIPELINING: what
    `SMTP.sendmail` does, without its costs.

    sendmail parses each address with email.utils.parseaddr four times and rewrites the
    whole message twice with regular expressions, once to measure it for SIZE and once
    to send it; here the addresses are already plain mailboxes (`mail_options`) and the
    message is already in its DATA form (`data_payload`). The exchange on the wire, the
    exceptions raised and the RSET after a refusal are sendmail's. Returns the server's
    reply to the message.
    """
    try:
        response = await smtp.execute_command(b"MAIL", *mail)
        if response.code != SMTPStatus.completed:
            raise SMTPSenderRefused(response.code, response.message, mail_from)
        response = await smtp.execute_command(b"RCPT", rcpt)
        if response.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
            raise SMTPRecipientsRefused([SMTPRecipientRefused(response.code, response.message, rcpt_to)])
        response = await _data(smtp, payload)
    except (SMTPResponseException, SMTPRecipientsRefused):
        try:
            await smtp.rset()  # leave the connection ready for the next message
        except (ConnectionError, SMTPResponseException):
            pass  # disconnected, or a bad reply: the refusal is what matters
        raise
    return response.message


async def _data(smtp: SMTP, payload: bytes) -> SMTPResponse:
    """DATA, then the message in its DATA form; SMTPDataError if either is refused."""
    if smtp.protocol is None:
        raise SMTPServerDisconnected("Connection lost")
    response = await smtp.execute_command(b"DATA")
    if response.code != SMTPStatus.start_input:
        raise SMTPDataError(response.code, response.message)
    protocol = smtp.protocol
    if protocol is None:
        raise SMTPServerDisconnected("Connection lost")
    try:
        # The connection is this send's alone (the pool hands it to one send at a
        # time), so nothing else can write or read between DATA and the message.
        protocol.write(payload)
        response = await protocol.read_response(timeout=smtp.timeout)
    except (SMTPServerDisconnected, SMTPTimeoutError):
        smtp.close()  # out of step with the server: as aiosmtplib does, never reuse it
        raise
    if response.code != SMTPStatus.completed:
        raise SMTPDataError(response.code, response.message)
    return response


def data_payload(message: bytes) -> tuple[bytes, int]:
    """The bytes that follow DATA, and the message's size for MAIL FROM's SIZE=.

    Exactly what aiosmtplib sends (lone CR and LF become CRLF, a CRLF is added at the
    end if missing, lines starting with "." are dot-stuffed, then ".CRLF"), but the
    regular expressions only run on a message that needs them: build_message's are
    CRLF throughout and never have a line starting with ".", so they go as they are.
    """
    crlf = message.count(b"\r\n")
    if message.count(b"\n") != crlf or message.count(b"\r") != crlf:
        message = _LINE_ENDING.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    size = len(message)  # RFC 1870: as transmitted, before dot-stuffing
    if message.startswith(b".") or b"\n." in message:
        message = _LEADING_DOT.sub(b"..", message)
    return message + b".\r\n", size


def envelope_address(address: str) -> str:
    """The address as aiosmtplib would put it in MAIL FROM or RCPT TO.

    For a plain mailbox (`MAILBOX`) email.utils.parseaddr, which aiosmtplib applies,
    gives the address back unchanged unless it has a ":" (read as a group name and
    dropped: "x:y@z" -> "y@z"); only then is it worth asking.
    """
    return parse_address(address) if ":" in address else address


def mail_options(mail_from: str, rcpt_to: str) -> list[str]:
    """MAIL FROM options for these two addresses; ValueError if either is not a mailbox.

    email.utils.parseaddr (which aiosmtplib applies to addresses) quietly turns
    "a@x, b@y" into "a@x" and "bad address" into "bad": refuse those here instead.
    """
    for role, address in (("sender", mail_from), ("recipient", rcpt_to)):
        if not MAILBOX.fullmatch(address):
            raise ValueError(f"{role} {address!r} is not a plain address like name@example.com")
    # A non-ASCII address can only travel with SMTPUTF8 (a server without it refuses).
    return [] if (mail_from + rcpt_to).isascii() else ["SMTPUTF8"]

