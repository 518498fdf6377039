"""THE table from an exception to an outcome, and what a failure means for the connection.

`classify` turns whatever the SMTP client raised into a `SendResult`; nothing else in
notifier decides that. Its outcomes:

    SENT       record it as sent
    TRANSIENT  try this message again later, after `core.retry.backoff(...)`
    PERMANENT  give this message up
    STALLED    the server as a whole is unusable: keep the message, stop sending, and
               poll `Sender.check()` until the server is back
"""

from __future__ import annotations

import ssl

from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPConnectTimeoutError,
    SMTPDataError,
    SMTPException,
    SMTPHeloError,
    SMTPNotSupported,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from notifier.core.refusal_codes import Refused, Stage
from notifier.core.values import Outcome, SendResult
from notifier.smtp.tls import CleartextLogin

__all__ = ["EXPECTED", "ServerUnusable", "classify", "connection_survives", "result", "unusable"]

_AUTH_REQUIRED = 530  # RFC 4954: "Authentication required", usually at MAIL FROM


class ServerUnusable(Exception):
    """Opening a connection (connect, STARTTLS, AUTH or the check's NOOP) failed.

    Whatever the underlying error (it is the __cause__), the server cannot take any
    message right now, so the outcome is STALLED and no message is blamed for it.
    """

    def __init__(self, *, step: str, address: str) -> None:
        super().__init__(f"{step} with {address} failed")
        self.step = step
        self.address = address


def classify(exc: BaseException) -> SendResult:
    """THE table from an exception to an outcome; subclasses come before their parents."""
    if isinstance(exc, ServerUnusable):
        return _stalled_setup(exc)
    if isinstance(exc, SMTPRecipientsRefused):
        # One recipient per message, so "all refused" is that recipient's refusal.
        if exc.recipients:
            return classify(exc.recipients[0])
        return SendResult(outcome=Outcome.PERMANENT, code=None, reply="every recipient refused")
    if isinstance(exc, SMTPAuthenticationError):  # any code: the login is not this message's fault
        return result(Outcome.STALLED, exc.code, exc.message)
    if isinstance(exc, SMTPConnectResponseError):  # a refusal in the greeting, e.g. 421 or 554
        return result(Outcome.STALLED, exc.code, exc.message)
    if isinstance(exc, SMTPHeloError):  # the server will not even say hello
        return result(Outcome.STALLED, exc.code, exc.message)
    if isinstance(exc, SMTPResponseException):  # RCPT, MAIL FROM and DATA refusals
        stage = _stage(exc)
        if stage is not None:
            return refused(_by_code(exc.code), exc.code, exc.message, stage)
        return result(_by_code(exc.code), exc.code, exc.message)
    if isinstance(exc, SMTPConnectError):  # before SMTPTimeoutError: a connect timeout is both
        return result(Outcome.STALLED, None, exc.message)
    if isinstance(exc, SMTPTimeoutError):  # no answer in the middle of a message
        return result(Outcome.TRANSIENT, None, f"no reply from the server in time: {exc.message}")
    if isinstance(exc, SMTPServerDisconnected):
        return result(Outcome.TRANSIENT, None, f"the server dropped the connection: {exc.message}")
    if isinstance(exc, SMTPNotSupported):  # e.g. the address needs SMTPUTF8, the server lacks it
        return result(Outcome.PERMANENT, None, exc.message)
    if isinstance(exc, SMTPException):
        # aiosmtplib raises the bare class for what the server does not offer while a
        # connection is set up (STARTTLS, AUTH): a server-wide problem.
        return result(Outcome.STALLED, None, exc.message)
    if isinstance(exc, ssl.SSLError):  # before OSError, its parent
        return result(Outcome.STALLED, None, f"TLS failed: {exc}")
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError, an OSError
        return result(Outcome.TRANSIENT, None, "no reply from the server in time")
    if isinstance(exc, ConnectionRefusedError):  # before ConnectionError, its parent
        return result(Outcome.STALLED, None, f"cannot reach the server: {exc}")
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe
        return result(Outcome.TRANSIENT, None, f"the connection broke: {exc}")
    if isinstance(exc, OSError):  # network unreachable and the like
        return result(Outcome.STALLED, None, f"cannot reach the server: {exc}")
    if isinstance(exc, ValueError):  # aiosmtplib refuses an address it cannot send safely
        return result(Outcome.PERMANENT, None, f"cannot be sent: {exc}")
    return result(Outcome.TRANSIENT, None, f"unexpected {type(exc).__name__}: {exc}")


def _by_code(code: int) -> Outcome:
    if code == _AUTH_REQUIRED:
        # The server wants a login we do not give: no message can go until the
        # configuration changes, so hold them all rather than give each one up.
        return Outcome.STALLED
    if 500 <= code < 600:
        return Outcome.PERMANENT
    # 4xx (421 included) means "later"; anything else is a confused exchange, also "later".
    return Outcome.TRANSIENT


def _stage(exc: SMTPResponseException) -> Stage | None:
    if isinstance(exc, SMTPRecipientRefused):
        return Stage.RCPT
    if isinstance(exc, SMTPSenderRefused):
        return Stage.MAIL
    if isinstance(exc, SMTPDataError):
        return Stage.DATA
    return None


def refused(outcome: Outcome, code: int, reply: str, stage: Stage) -> Refused:
    """A refusal's SendResult, with the stage it came at (what core.refusal_codes reads)."""
    return Refused(outcome=outcome, code=code, reply=" ".join(reply.split()), stage=stage)


def result(outcome: Outcome, code: int | None, reply: str) -> SendResult:
    """A SendResult with the server's reply on one line."""
    # aiosmtplib keeps a multi-line reply's lines apart with newlines; logs want one line.
    return SendResult(outcome=outcome, code=code, reply=" ".join(reply.split()))


def _stalled_setup(exc: ServerUnusable) -> SendResult:
    cause = exc.__cause__
    if isinstance(cause, SMTPConnectError) and isinstance(cause.__cause__, ConnectionRefusedError):
        return result(Outcome.STALLED, None, f"connection refused by {exc.address}")
    if isinstance(cause, SMTPConnectTimeoutError):
        return result(Outcome.STALLED, None, f"no greeting from {exc.address} in time")
    if isinstance(cause, CleartextLogin):  # refused here: its words say what to do
        return result(Outcome.STALLED, None, str(cause))
    if isinstance(cause, ssl.SSLCertVerificationError):
        return result(
            Outcome.STALLED,
            None,
            f"{exc} (TLS failed: {cause}): the server's certificate is not "
            "trusted; name its CA with ?cafile=PATH on NOTIFIER_SMTP_URL (or ?verify=false for a test relay)",
        )
    inner = classify(cause) if cause is not None else None
    code = inner.code if inner is not None else None
    detail = inner.reply if inner is not None else "no reason given"
    text = f"{code} {detail}" if code is not None else detail
    return result(Outcome.STALLED, code, f"{exc} ({text})")


# What send() turns into a SendResult; anything else is a bug and propagates.
EXPECTED = (SMTPException, OSError, ValueError, ServerUnusable)


def connection_survives(exc: BaseException) -> bool:
    """After a proper refusal aiosmtplib resets the envelope, so the connection can take
    the next message (if it is still open: after a 421 it is not). After a malformed
    reply, a timeout or a drop, the conversation is out of step: replace it."""
    if isinstance(exc, SMTPRecipientsRefused):
        return True
    if isinstance(exc, SMTPResponseException):
        return exc.code >= 400
    return isinstance(exc, ValueError)  # an address refused before anything was sent


def unusable(step: str, address: str, cause: BaseException) -> ServerUnusable:
    """ServerUnusable for this step with that server, `cause` kept as its __cause__."""
    error = ServerUnusable(step=step, address=address)
    error.__cause__ = cause
    return error


