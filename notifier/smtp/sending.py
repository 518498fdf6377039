"""The SMTP client side: a pool of reused connections, and every failure classified once.

`Sender.send` never raises for an SMTP or network problem; it returns a `SendResult`
whose `Outcome` tells the caller what to do with the message:

    SENT       record it as sent
    TRANSIENT  try this message again later, after `backoff(...)`
    PERMANENT  give this message up
    STALLED    the server as a whole is unusable: keep the message, stop sending, and
               poll `Sender.check()` until the server is back

`classify` is the only place that turns an exception into an outcome.
"""

from __future__ import annotations

import asyncio
import re
import select
import ssl
import time
from dataclasses import dataclass, fields
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from aiosmtplib import (
    SMTP,
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
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPStatus,
    SMTPTimeoutError,
)
from aiosmtplib.email import parse_address

from notifier.core.retry import backoff
from notifier.core.timing import parse_duration
from notifier.core.values import Outcome, SendResult
from notifier.errors import ConfigError
from notifier.smtp import pipelining
from notifier.smtp.pipelining import Replies

__all__ = [
    "Outcome",
    "SendResult",
    "Sender",
    "ServerUnusable",
    "SmtpConfig",
    "backoff",
    "classify",
]

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_QUERY_KEYS = ("starttls", "verify", "timeout")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# A pooled connection idle for longer than this is probed with NOOP before use: servers
# close idle clients after a while, and finding that out half-way through a message
# would count a failure against a message that did nothing wrong.
_PROBE_AFTER_IDLE = 5.0
# QUIT is a courtesy; never let a slow server hold up shutting down.
_QUIT_TIMEOUT = 2.0
# One envelope mailbox: no spaces, controls, commas or angle brackets; an @ with text
# on both sides. Non-ASCII letters are allowed (they go with SMTPUTF8).
_NOT_IN_MAILBOX = r"\s\x00-\x1f\x7f<>,;()\[\]\\\"@"
_MAILBOX = re.compile(f"[^{_NOT_IN_MAILBOX}]+@[^{_NOT_IN_MAILBOX}]+")
_AUTH_REQUIRED = 530  # RFC 4954: "Authentication required", usually at MAIL FROM
# What SMTP DATA needs of a message (RFC 5321 4.1.1.4, 4.5.2), done the way aiosmtplib does
# it: every line ending a CRLF, and a line starting with "." gets another "." in front.
_LINE_ENDING = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpConfig:
    """Where and how to hand mail over; usually built from NOTIFIER_SMTP_URL."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None  # never printed: see __repr__ and redacted_url()
    implicit_tls: bool = False  # smtps://
    starttls: bool = False  # ?starttls=true
    timeout: float = 30.0
    connections: int = 4  # how many SMTP connections to keep open and use at once
    validate_certs: bool = True  # ?verify=false disables, for self-signed test relays

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("the SMTP URL names no host")
        if not 0 < self.port < 65536:
            raise ConfigError(f"SMTP port {self.port} is not between 1 and 65535")
        if self.implicit_tls and self.starttls:
            raise ConfigError("smtps:// is TLS from the start; starttls=true does not apply to it")
        if not self.timeout > 0:
            raise ConfigError(f"SMTP timeout must be more than 0 seconds, not {self.timeout}")
        if self.connections < 1:
            raise ConfigError(f"SMTP connections must be at least 1, not {self.connections}")

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            secret = item.name == "password" and value is not None
            shown.append(f"{item.name}={'<secret>' if secret else repr(value)}")
        return f"SmtpConfig({', '.join(shown)})"

    @property
    def address(self) -> str:
        """'mail.example:587', for messages about this server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, *, connections: int = 4, timeout: float = 30.0) -> SmtpConfig:
        """smtp://host[:port] (port 25), smtp://user:pass@host:587?starttls=true, smtps://host[:465].

        User and password are percent-decoded. Query keys: starttls, verify (true/false)
        and timeout (seconds, or a duration like 10s); a timeout in the URL wins over
        the `timeout` argument. Anything else is refused with a ConfigError (a
        ValueError) that says why.
        """
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ConfigError(
                f"SMTP URL must start with smtp:// or smtps://, not {parts.scheme or 'nothing'!r}"
            )
        if parts.path not in ("", "/") or parts.fragment:
            raise ConfigError("SMTP URL must not have a path or #fragment after the host")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError("SMTP URL has a port that is not a number from 1 to 65535") from None
        options = _query_options(parts.query)
        return cls(
            host=parts.hostname or "",
            port=port if port is not None else _DEFAULT_PORTS[scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            implicit_tls=scheme == "smtps",
            starttls=_flag(options, "starttls", default=False),
            validate_certs=_flag(options, "verify", default=True),
            timeout=_seconds(options["timeout"]) if "timeout" in options else timeout,
            connections=connections,
        )

    def redacted_url(self) -> str:
        """The URL with the password shown as '***', for logs and `status`."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        login = ""
        if self.username is not None:
            login = quote(self.username, safe="")
            login += ":***@" if self.password is not None else "@"
        query = []
        if self.starttls:
            query.append("starttls=true")
        if not self.validate_certs:
            query.append("verify=false")
        if self.timeout != 30.0:
            query.append(f"timeout={self.timeout:g}")
        return f"{scheme}://{login}{self.address}" + (f"?{'&'.join(query)}" if query else "")


def _query_options(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError(f"SMTP URL options {query!r} are not key=value pairs") from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key not in _QUERY_KEYS:
            raise ConfigError(f"SMTP URL option {key!r} is not known (known: {', '.join(_QUERY_KEYS)})")
        if key in options:
            raise ConfigError(f"SMTP URL option {key!r} is given twice")
        options[key] = value
    return options


def _flag(options: dict[str, str], key: str, *, default: bool) -> bool:
    if key not in options:
        return default
    value = options[key].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"SMTP URL option {key}={options[key]!r} must be true or false")


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        raise ConfigError(
            f"SMTP URL option timeout={text!r} is not a number of seconds or a duration like 10s"
        ) from None


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
        return _result(Outcome.STALLED, exc.code, exc.message)
    if isinstance(exc, SMTPConnectResponseError):  # a refusal in the greeting, e.g. 421 or 554
        return _result(Outcome.STALLED, exc.code, exc.message)
    if isinstance(exc, SMTPHeloError):  # the server will not even say hello
        return _result(Outcome.STALLED, exc.code, exc.message)
    if isinstance(exc, SMTPResponseException):  # RCPT, MAIL FROM and DATA refusals
        return _result(_by_code(exc.code), exc.code, exc.message)
    if isinstance(exc, SMTPConnectError):  # before SMTPTimeoutError: a connect timeout is both
        return _result(Outcome.STALLED, None, exc.message)
    if isinstance(exc, SMTPTimeoutError):  # no answer in the middle of a message
        return _result(Outcome.TRANSIENT, None, f"no reply from the server in time: {exc.message}")
    if isinstance(exc, SMTPServerDisconnected):
        return _result(Outcome.TRANSIENT, None, f"the server dropped the connection: {exc.message}")
    if isinstance(exc, SMTPNotSupported):  # e.g. the address needs SMTPUTF8, the server lacks it
        return _result(Outcome.PERMANENT, None, exc.message)
    if isinstance(exc, SMTPException):
        # aiosmtplib raises the bare class for what the server does not offer while a
        # connection is set up (STARTTLS, AUTH): a server-wide problem.
        return _result(Outcome.STALLED, None, exc.message)
    if isinstance(exc, ssl.SSLError):  # before OSError, its parent
        return _result(Outcome.STALLED, None, f"TLS failed: {exc}")
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError, an OSError
        return _result(Outcome.TRANSIENT, None, "no reply from the server in time")
    if isinstance(exc, ConnectionRefusedError):  # before ConnectionError, its parent
        return _result(Outcome.STALLED, None, f"cannot reach the server: {exc}")
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe
        return _result(Outcome.TRANSIENT, None, f"the connection broke: {exc}")
    if isinstance(exc, OSError):  # network unreachable and the like
        return _result(Outcome.STALLED, None, f"cannot reach the server: {exc}")
    if isinstance(exc, ValueError):  # aiosmtplib refuses an address it cannot send safely
        return _result(Outcome.PERMANENT, None, f"cannot be sent: {exc}")
    return _result(Outcome.TRANSIENT, None, f"unexpected {type(exc).__name__}: {exc}")


def _by_code(code: int) -> Outcome:
    if code == _AUTH_REQUIRED:
        # The server wants a login we do not give: no message can go until the
        # configuration changes, so hold them all rather than give each one up.
        return Outcome.STALLED
    if 500 <= code < 600:
        return Outcome.PERMANENT
    # 4xx (421 included) means "later"; anything else is a confused exchange, also "later".
    return Outcome.TRANSIENT


def _result(outcome: Outcome, code: int | None, reply: str) -> SendResult:
    # aiosmtplib keeps a multi-line reply's lines apart with newlines; logs want one line.
    return SendResult(outcome=outcome, code=code, reply=" ".join(reply.split()))


def _stalled_setup(exc: ServerUnusable) -> SendResult:
    cause = exc.__cause__
    if isinstance(cause, SMTPConnectError) and isinstance(cause.__cause__, ConnectionRefusedError):
        return _result(Outcome.STALLED, None, f"connection refused by {exc.address}")
    if isinstance(cause, SMTPConnectTimeoutError):
        return _result(Outcome.STALLED, None, f"no greeting from {exc.address} in time")
    inner = classify(cause) if cause is not None else None
    code = inner.code if inner is not None else None
    detail = inner.reply if inner is not None else "no reason given"
    text = f"{code} {detail}" if code is not None else detail
    return _result(Outcome.STALLED, code, f"{exc} ({text})")


# What send() turns into a SendResult; anything else is a bug and propagates.
_EXPECTED = (SMTPException, OSError, ValueError, ServerUnusable)


def _connection_survives(exc: BaseException) -> bool:
    """After a proper refusal aiosmtplib resets the envelope, so the connection can take
    the next message (if it is still open: after a 421 it is not). After a malformed
    reply, a timeout or a drop, the conversation is out of step: replace it."""
    if isinstance(exc, SMTPRecipientsRefused):
        return True
    if isinstance(exc, SMTPResponseException):
        return exc.code >= 400
    return isinstance(exc, ValueError)  # an address refused before anything was sent


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

    def discard(self) -> None:
        """Close at once. A TLS connection closed politely waits for the server's own
        goodbye, which can outlive the event loop and leave the socket open."""
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()
        self.smtp.close()

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
        payload, size = _data_payload(message)
        mail = [b"FROM:<" + _envelope_address(mail_from).encode(encoding) + b">"]
        if smtp.supports_extension("size"):
            mail.append(f"size={size}".encode("ascii"))
        mail.extend(option.encode("ascii") for option in options)
        rcpt = b"TO:<" + _envelope_address(rcpt_to).encode(encoding) + b">"
        if self.replies is not None:
            return await pipelining.transaction(
                self.replies, mail=b" ".join(mail), rcpt=rcpt, rcpt_to=rcpt_to, mail_from=mail_from,
                payload=payload,
            )
        return await _transaction(smtp, mail, rcpt, rcpt_to, mail_from, payload)


class Sender:
    """A pool of open, reused SMTP connections.

        async with Sender(config) as sender:
            result = await sender.send(mail_from=..., rcpt_to=..., message=...)

    At most `config.connections` sends run at once, each on its own connection; a
    connection is opened only when no idle one is left, and is put back after a send
    unless it failed or was dropped. One Sender belongs to one event loop.
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(config.connections)
        # Last in, first out: the warmest connection is reused and spare ones age out.
        self._idle: asyncio.LifoQueue[_Connection] = asyncio.LifoQueue()
        self._closed = False

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
        async with self._slots:
            connection: _Connection | None = None
            try:
                options = _mail_options(mail_from, rcpt_to)
                connection = await self._take()
                if type(message) is bytes:
                    reply = await connection.transaction(mail_from, rcpt_to, message, options)
                else:  # not what this method takes, but sendmail copes with str and bytearray
                    _, reply = await connection.smtp.sendmail(
                        mail_from, [rcpt_to], message, mail_options=options
                    )
            except _EXPECTED as exc:
                if connection is not None and _connection_survives(exc):
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
            return _result(Outcome.SENT, 250, reply)

    async def check(self) -> SendResult:
        """Connect (with TLS and AUTH as configured) and NOOP: is a stalled server back?

        SENT means it is; anything else comes back as STALLED with the reason.
        """
        async with self._slots:
            try:
                connection = await self._open()
            except ServerUnusable as exc:
                return classify(exc)
            try:
                response = await connection.noop()
            except (SMTPException, OSError) as exc:
                connection.discard()
                return classify(_unusable("NOOP", self.config, exc))
            await connection.quit()
            return _result(Outcome.SENT, response.code, response.message)

    async def _take(self) -> _Connection:
        while not self._idle.empty():
            connection = self._idle.get_nowait()
            if await connection.still_open():
                return connection
            connection.discard()
        return await self._open()

    def _give_back(self, connection: _Connection) -> None:
        if connection.smtp.is_connected and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.put_nowait(connection)
        else:
            connection.discard()

    async def _open(self) -> _Connection:
        """A new connection, TLS and AUTH done; ServerUnusable (with the cause) if not."""
        config = self.config
        smtp = SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.implicit_tls,
            # Only upgrade when asked: a relay that merely offers STARTTLS with a
            # certificate we cannot check must not stop a plain smtp:// setup working.
            start_tls=False,
            validate_certs=config.validate_certs,
            timeout=config.timeout,
        )
        step = "connect"
        try:
            await smtp.connect()
            # Say EHLO now, so that a server refusing it stalls sending here rather
            # than failing the first message sent on this connection.
            step = "EHLO"
            await smtp.ehlo()
            if config.starttls:
                step = "STARTTLS"
                await smtp.starttls()
            if config.username is not None:
                step = "AUTH"
                await smtp.login(config.username, config.password or "")
            if smtp.is_ehlo_or_helo_needed:  # STARTTLS without AUTH: hello again, over TLS
                step = "EHLO"
                await smtp.ehlo()
        except (SMTPException, OSError) as exc:
            _Connection(smtp, smtp.transport).discard()
            raise _unusable(step, config, exc) from exc
        transport = smtp.transport
        if smtp.supports_extension("pipelining") and isinstance(transport, asyncio.Transport):
            return _Connection(smtp, transport, Replies(transport, config.timeout))
        return _Connection(smtp, transport)


async def _transaction(
    smtp: SMTP, mail: list[bytes], rcpt: bytes, rcpt_to: str, mail_from: str, payload: bytes
) -> str:
    """MAIL, RCPT, DATA one at a time, for a server without PIPELINING: what
    `SMTP.sendmail` does, without its costs.

    sendmail parses each address with email.utils.parseaddr four times and rewrites the
    whole message twice with regular expressions, once to measure it for SIZE and once
    to send it; here the addresses are already plain mailboxes (`_mail_options`) and the
    message is already in its DATA form (`_data_payload`). The exchange on the wire, the
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


def _data_payload(message: bytes) -> tuple[bytes, int]:
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


def _envelope_address(address: str) -> str:
    """The address as aiosmtplib would put it in MAIL FROM or RCPT TO.

    For a plain mailbox (`_MAILBOX`) email.utils.parseaddr, which aiosmtplib applies,
    gives the address back unchanged unless it has a ":" (read as a group name and
    dropped: "x:y@z" -> "y@z"); only then is it worth asking.
    """
    return parse_address(address) if ":" in address else address


def _mail_options(mail_from: str, rcpt_to: str) -> list[str]:
    """MAIL FROM options for these two addresses; ValueError if either is not a mailbox.

    email.utils.parseaddr (which aiosmtplib applies to addresses) quietly turns
    "a@x, b@y" into "a@x" and "bad address" into "bad": refuse those here instead.
    """
    for role, address in (("sender", mail_from), ("recipient", rcpt_to)):
        if not _MAILBOX.fullmatch(address):
            raise ValueError(f"{role} {address!r} is not a plain address like name@example.com")
    # A non-ASCII address can only travel with SMTPUTF8 (a server without it refuses).
    return [] if (mail_from + rcpt_to).isascii() else ["SMTPUTF8"]


def _unusable(step: str, config: SmtpConfig, cause: BaseException) -> ServerUnusable:
    error = ServerUnusable(step=step, address=config.address)
    error.__cause__ = cause
    return error


