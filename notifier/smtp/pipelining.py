"""One message per SMTP transaction, pipelined (RFC 2920) when the server offers PIPELINING.

MAIL FROM, RCPT TO and DATA go out in one write and their three replies are read together;
then the message, and its reply: two round trips instead of four, and a fraction of the
work on both ends. aiosmtplib sets each connection up (greeting, EHLO, STARTTLS, AUTH) but
reads exactly one reply per command it sends and drops anything that arrives early, so
once a connection is ready its transport is handed to `Replies`, which reads every reply
in order however they arrive. The outcomes are aiosmtplib's own exceptions, raised where
`SMTP.sendmail` would raise them, so `refusals.classify` treats both paths alike.
"""

from __future__ import annotations

import asyncio
from collections import deque

from aiosmtplib import (
    SMTPDataError,
    SMTPReadTimeoutError,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPStatus,
)

MAX_REPLY_BYTES = 64 * 1024  # a reply that long is not SMTP: give the connection up
_ACCEPTED_RCPT = (SMTPStatus.completed, SMTPStatus.will_forward)


class Replies(asyncio.Protocol):
    """The reading side of a set-up SMTP connection: replies parsed and kept in order."""

    def __init__(self, transport: asyncio.Transport, timeout: float | None) -> None:
        self.transport = transport
        self.timeout = timeout  # seconds to wait for a reply
        self._buffer = bytearray()
        self._replies: deque[SMTPResponse] = deque()
        self._lines: list[bytes] = []  # the lines so far of a multi-line reply
        self._waiter: asyncio.Future[None] | None = None
        self._wanted = 0
        self._ended: Exception | None = None  # why no more replies will come
        transport.set_protocol(self)

    # --- asyncio.Protocol ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        start = 0
        while (end := self._buffer.find(b"\n", start)) != -1:
            self._line(bytes(self._buffer[start : end + 1]))
            start = end + 1
        del self._buffer[:start]
        if len(self._buffer) > MAX_REPLY_BYTES:
            self._end(SMTPResponseException(SMTPStatus.invalid_response, "Response too long"))
            self.transport.abort()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(SMTPServerDisconnected("Connection lost"))

    def eof_received(self) -> bool:
        self._end(SMTPServerDisconnected("Unexpected EOF received"))
        return False  # close our side too

    # --- for the transaction -------------------------------------------------------------

    @property
    def spoke_unprompted(self) -> bool:
        """Anything heard while no command was waiting: a server only does that when it is
        going away (EOF, perhaps after a 421)."""
        return bool(self._replies or self._buffer or self._lines) or self._ended is not None

    def write(self, data: bytes) -> None:
        if self._ended is not None or self.transport.is_closing():
            raise SMTPServerDisconnected("Connection lost")
        self.transport.write(data)

    async def read(self, count: int) -> list[SMTPResponse]:
        """The next `count` replies; fewer if the connection ends first (a server may say
        421 and hang up). SMTPReadTimeoutError if they take longer than `self.timeout`."""
        timeout = self.timeout
        if len(self._replies) < count and self._ended is None:
            loop = asyncio.get_running_loop()
            self._waiter, self._wanted = loop.create_future(), count
            late = loop.call_later(timeout, self._time_out) if timeout else None
            try:
                await self._waiter
            finally:
                self._waiter = None
                if late is not None:
                    late.cancel()
        if not self._replies and isinstance(self._ended, SMTPResponseException):
            raise self._ended  # a reply we could not read
        return [self._replies.popleft() for _ in range(min(count, len(self._replies)))]

    # --- internals -----------------------------------------------------------------------

    def _line(self, line: bytes) -> None:
        try:
            code = int(line[:3])
        except ValueError:
            text = line.decode("utf-8", "replace").strip()
            malformed = f"Malformed SMTP response line: {text}"
            self._end(SMTPResponseException(SMTPStatus.invalid_response, malformed))
            self.transport.abort()
            return
        self._lines.append(line[4:].strip(b" \t\r\n"))
        if line[3:4] != b"-":
            message = b"\n".join(self._lines).decode("utf-8", "surrogateescape")
            self._replies.append(SMTPResponse(code, message))
            self._lines = []

    def _end(self, reason: Exception) -> None:
        if self._ended is None:
            self._ended = reason
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if len(self._replies) >= self._wanted or self._ended is not None:
                waiter.set_result(None)

    def _time_out(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(SMTPReadTimeoutError("Timed out waiting for server response"))


async def command(replies: Replies, line: bytes) -> SMTPResponse:
    """One command and its reply (NOOP, RSET, QUIT)."""
    return await _exchange(replies, line + b"\r\n")


async def _exchange(replies: Replies, data: bytes) -> SMTPResponse:
    """Write `data` and read the one reply it gets."""
    replies.write(data)
    got = await replies.read(1)
    if not got:
        raise SMTPServerDisconnected("Connection lost")
    return got[0]


async def transaction(
    replies: Replies, *, mail: bytes, rcpt: bytes, rcpt_to: str, mail_from: str, payload: bytes
) -> str:
    """MAIL, RCPT and DATA in one write, then the message (`payload`, already in its DATA
    form). Returns the server's reply to the message; raises what sendmail would raise."""
    replies.write(b"MAIL " + mail + b"\r\nRCPT " + rcpt + b"\r\nDATA\r\n")
    got = await replies.read(3)
    refusal = _refusal(got, mail_from, rcpt_to)
    if refusal is not None:
        accepted = len(got) == 3 and got[2].code == SMTPStatus.start_input
        await _tidy_up(replies, data_accepted=accepted)
        raise refusal
    answer = await _exchange(replies, payload)
    if answer.code != SMTPStatus.completed:
        await _tidy_up(replies)
        raise SMTPDataError(answer.code, answer.message)
    return answer.message


def _refusal(got: list[SMTPResponse], mail_from: str, rcpt_to: str) -> Exception | None:
    """The first of the three replies that says no, as sendmail would raise it; a
    disconnection if the connection ended before a refusal or all three yeses."""
    if got and got[0].code != SMTPStatus.completed:
        return SMTPSenderRefused(got[0].code, got[0].message, mail_from)
    if len(got) > 1 and got[1].code not in _ACCEPTED_RCPT:
        return SMTPRecipientsRefused([SMTPRecipientRefused(got[1].code, got[1].message, rcpt_to)])
    if len(got) > 2 and got[2].code != SMTPStatus.start_input:
        return SMTPDataError(got[2].code, got[2].message)
    if len(got) < 3:
        return SMTPServerDisconnected("Connection lost")
    return None


async def _tidy_up(replies: Replies, *, data_accepted: bool = False) -> None:
    """After a refusal, leave the connection ready for the next message (RSET), or closed
    if that fails: a connection out of step with its server must not carry another."""
    try:
        if data_accepted:
            # DATA accepted although MAIL or RCPT was refused: end it with an empty message.
            replies.write(b".\r\n")
            await replies.read(1)
        reply = await command(replies, b"RSET")
        if reply.code == SMTPStatus.completed:
            return
    except (SMTPServerDisconnected, SMTPReadTimeoutError, SMTPResponseException):
        pass  # the refusal is what matters
    replies.transport.abort()
