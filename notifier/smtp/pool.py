"""The SMTP client side: a pool of reused connections (`Sender`).

`Sender.send` never raises for an SMTP or network problem; it returns a `SendResult`
whose `Outcome` (see `refusals.classify`, the one place that decides it) tells the caller
what to do with the message.
"""

from __future__ import annotations

import asyncio
import logging
import select
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiosmtplib import (
    SMTP,
    SMTPConnectResponseError,
    SMTPException,
    SMTPNotSupported,
    SMTPResponse,
    SMTPResponseException,
    SMTPStatus,
)

from notifier.core.values import Outcome, SendResult
from notifier.smtp import pipelining, tls, wire
from notifier.smtp.limits import Capacity
from notifier.smtp.pipelining import Replies
from notifier.smtp.refusals import EXPECTED, ServerUnusable, classify, connection_survives, result, unusable
from notifier.smtp.url import SmtpConfig

__all__ = ["Sender"]

# A pooled connection idle for longer than this is probed with NOOP before use: servers
# close idle clients after a while, and finding that out half-way through a message
# would count a failure against a message that did nothing wrong.
_PROBE_AFTER_IDLE = 5.0
# QUIT is a courtesy; never let a slow server hold up shutting down.
_QUIT_TIMEOUT = 2.0
_TOO_MANY = 421  # in the greeting, with another connection working: the relay's limit

log = logging.getLogger("notifier.smtp")


class _RelayBusy(Exception):
    """The relay said 421 at the greeting while other connections work: wait for one."""


@dataclass(slots=True, eq=False)
class _Connection:
    """One open SMTP connection, and its transport, which aiosmtplib forgets on close.

    With `replies`, the server offers PIPELINING and the connection, once set up, is read
    by notifier.smtp.pipelining instead of aiosmtplib: every command after that goes through it.
    """

    smtp: SMTP
    transport: asyncio.BaseTransport | None
    replies: Replies | None = None
    idle_since: float = 0.0
    on_close: Callable[[], None] | None = None  # the pool's count of open connections

    def discard(self) -> None:
        """Close at once. A TLS connection closed politely waits for the server's own
        goodbye, which can outlive the event loop and leave the socket open."""
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()
        self.smtp.close()
        if self.on_close is not None:
            self.on_close()
            self.on_close = None

    async def quit(self) -> None:
        """Say QUIT (a courtesy: bounded, errors ignored), then close."""
        try:
            if self.smtp.is_connected:
                async with asyncio.timeout(_QUIT_TIMEOUT):
                    await self._command(b"QUIT")
        except (SMTPException, OSError):
            pass  # the connection is going away either way
        finally:
            self.discard()

    async def noop(self) -> SMTPResponse:
        response = await self._command(b"NOOP")
        if response.code != SMTPStatus.completed:
            raise SMTPResponseException(response.code, response.message)
        return response

    async def _command(self, line: bytes) -> SMTPResponse:
        if self.replies is not None:
            return await pipelining.command(self.replies, line)
        return await self.smtp.execute_command(line)

    async def still_open(self) -> bool:
        """Whether this idle connection can be trusted with the next message."""
        if not self.smtp.is_connected or self._spoke_unprompted():
            return False
        if time.monotonic() - self.idle_since < _PROBE_AFTER_IDLE:
            return True
        try:
            await self.noop()
        except (SMTPException, OSError):
            return False
        return True

    def _spoke_unprompted(self) -> bool:
        # An SMTP server only speaks unasked when it is going away (EOF, perhaps after
        # a 421), and the event loop may not have read that yet; looking at the socket
        # itself catches a restarted server before a message is sent into the void.
        if self.replies is not None and self.replies.spoke_unprompted:
            return True
        sock = self.smtp.get_transport_info("socket")
        if sock is None:
            return False
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    async def transaction(self, mail_from: str, rcpt_to: str, message: bytes, options: list[str]) -> str:
        """Send one message; the server's reply to it. Raises what SMTP.sendmail raises."""
        smtp = self.smtp  # said EHLO in Sender._open, after STARTTLS too
        encoding = "ascii"
        if "SMTPUTF8" in options:
            if not smtp.supports_extension("smtputf8"):
                raise SMTPNotSupported("SMTPUTF8 is not supported by this server")
            encoding = "utf-8"
        payload, size = wire.data_payload(message)
        mail = [b"FROM:<" + wire.envelope_address(mail_from).encode(encoding) + b">"]
        if smtp.supports_extension("size"):
            mail.append(f"size={size}".encode("ascii"))
        mail.extend(option.encode("ascii") for option in options)
        rcpt = b"TO:<" + wire.envelope_address(rcpt_to).encode(encoding) + b">"
        if self.replies is not None:
            return await pipelining.transaction(
                self.replies, mail=b" ".join(mail), rcpt=rcpt, rcpt_to=rcpt_to, mail_from=mail_from,
                payload=payload,
            )
        return await wire.transaction(smtp, mail, rcpt, rcpt_to, mail_from, payload)


class Sender:
    """A pool of open, reused SMTP connections.

        async with Sender(config) as sender:
            result = await sender.send(mail_from=..., rcpt_to=..., message=...)

    At most `config.connections` sends run at once (fewer once the relay says how many
    it allows: `limit`), each on its own connection; a connection is opened only when no
    idle one is left, and is put back after a send unless it failed or was dropped. One
    Sender belongs to one event loop.
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._slots = Capacity(config.connections)
        # Last in, first out: the warmest connection is reused and spare ones age out.
        self._idle: asyncio.LifoQueue[_Connection] = asyncio.LifoQueue()
        self._closed = False
        self._tls: ssl.SSLContext | None = None  # made with the first connection
        self._open_now = 0  # connections open (idle or in use)
        self._opening = 0  # connections being opened

    @property
    def limit(self) -> int:
        """How many messages may be on the wire at once: what the relay allows."""
        return self._slots.limit

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """QUIT and close every pooled connection; later sends are refused."""
        self._closed = True
        idle: list[_Connection] = []
        while not self._idle.empty():
            idle.append(self._idle.get_nowait())
        await asyncio.gather(*(connection.quit() for connection in idle))

    async def send(self, *, mail_from: str, rcpt_to: str, message: bytes) -> SendResult:
        """Hand one message to the server for one recipient; never raises for SMTP trouble."""
        if self._closed:
            raise RuntimeError("this Sender is closed")
        # Each turn but the last waits for a connection after a relay's "too many": as
        # the limit only goes down, the turns run out only if the relay keeps changing it.
        for _ in range(self.config.connections):
            try:
                return await self._send_once(mail_from, rcpt_to, message, busy_waits=True)
            except _RelayBusy:
                continue
        return await self._send_once(mail_from, rcpt_to, message, busy_waits=False)

    async def _send_once(
        self, mail_from: str, rcpt_to: str, message: bytes, *, busy_waits: bool
    ) -> SendResult:
        async with self._slots:
            connection: _Connection | None = None
            try:
                options = wire.mail_options(mail_from, rcpt_to)
                connection = await self._take(busy_waits=busy_waits)
                if type(message) is bytes:
                    reply = await connection.transaction(mail_from, rcpt_to, message, options)
                else:  # not what this method takes, but sendmail copes with str and bytearray
                    _, reply = await connection.smtp.sendmail(
                        mail_from, [rcpt_to], message, mail_options=options
                    )
            except EXPECTED as exc:
                if connection is not None and connection_survives(exc):
                    self._give_back(connection)
                elif connection is not None:
                    connection.discard()
                return classify(exc)
            except BaseException:
                # Cancelled (or a bug) half-way: the conversation state is unknown.
                if connection is not None:
                    connection.discard()
                raise
            self._give_back(connection)
            return result(Outcome.SENT, 250, reply)

    async def check(self) -> SendResult:
        """Connect (with TLS and AUTH as configured) and NOOP: is a stalled server back?

        SENT means it is; anything else comes back as STALLED with the reason.
        """
        async with self._slots:
            try:
                connection = await self._open(busy_waits=False)
            except ServerUnusable as exc:
                return classify(exc)
            try:
                response = await connection.noop()
            except (SMTPException, OSError) as exc:
                connection.discard()
                return classify(unusable("NOOP", self.config.address, exc))
            await connection.quit()
            return result(Outcome.SENT, response.code, response.message)

    async def _take(self, *, busy_waits: bool) -> _Connection:
        while not self._idle.empty():
            connection = self._idle.get_nowait()
            if await connection.still_open():
                return connection
            connection.discard()
        return await self._open(busy_waits=busy_waits)

    def _give_back(self, connection: _Connection) -> None:
        if connection.smtp.is_connected and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.put_nowait(connection)
        else:
            connection.discard()

    async def _open(self, *, busy_waits: bool) -> _Connection:
        """A new connection, TLS and AUTH done; ServerUnusable (with the cause) if not, or
        _RelayBusy if the relay allows no more connections than work already."""
        self._opening += 1
        try:
            smtp = await self._handshake()
        except ServerUnusable as exc:
            if busy_waits and self._at_relay_limit(exc.__cause__):
                raise _RelayBusy from exc
            raise
        finally:
            self._opening -= 1
        self._open_now += 1
        transport = smtp.transport
        replies = None
        if smtp.supports_extension("pipelining") and isinstance(transport, asyncio.Transport):
            replies = Replies(transport, self.config.timeout)
        return _Connection(smtp, transport, replies, on_close=self._closed_one)

    def _closed_one(self) -> None:
        self._open_now -= 1

    def _at_relay_limit(self, cause: BaseException | None) -> bool:
        """A 421 greeting while other connections are open (or opening) is the relay's
        limit: keep to the connections open now. With none, the server itself is busy."""
        if not (isinstance(cause, SMTPConnectResponseError) and cause.code == _TOO_MANY):
            return False
        if self._open_now + self._opening == 0:
            return False
        if self._slots.lower(self._open_now):
            log.warning(
                "the mail server at %s allows %d connection(s) at a time (it said %s %s); "
                "sending on those",
                self.config.address, self._slots.limit, cause.code, " ".join(cause.message.split()),
            )
        return True

    async def _handshake(self) -> SMTP:
        """Connect, EHLO, STARTTLS when offered (tls.py decides), AUTH when configured."""
        config = self.config
        step = "TLS"
        try:
            if self._tls is None:
                self._tls = await asyncio.to_thread(tls.client_context, config)
        except (ssl.SSLError, OSError) as exc:
            raise unusable(step, config.address, exc) from exc
        smtp = SMTP(
            hostname=config.host,
            port=config.port,
            local_hostname=config.ehlo_name,
            use_tls=config.implicit_tls,
            start_tls=False,  # decided here, after EHLO: tls.wants_starttls
            tls_context=self._tls,
            timeout=config.timeout,
        )
        step = "connect"
        try:
            await smtp.connect()
            # Say EHLO now, so that a server refusing it stalls sending here rather
            # than failing the first message sent on this connection.
            step = "EHLO"
            await smtp.ehlo()
            if tls.wants_starttls(config, smtp):
                step = "STARTTLS"
                await smtp.starttls()
            if config.username is not None:
                step = "AUTH"
                tls.may_log_in(config, smtp)
                await smtp.login(config.username, config.password or "")
            if smtp.is_ehlo_or_helo_needed:  # STARTTLS without AUTH: hello again, over TLS
                step = "EHLO"
                await smtp.ehlo()
        except (SMTPException, OSError, tls.CleartextLogin) as exc:
            _Connection(smtp, smtp.transport).discard()
            raise unusable(step, config.address, exc) from exc
        return smtp
