"""A real SMTP server for tests (aiosmtpd, in its own thread) that can be told to misbehave.

    with FaultySmtpServer() as server:
        server.fail(451, on="RCPT")                # the next RCPT gets "451 ..."
        server.fail(550, recipient="gone@x.test", times=None)   # always, for that address
        server.drop(on="DATA")                     # read the message, then cut the line
        server.hang(on="DATA")                     # read the message, never answer
        server.hang(on="connect")                  # accept the connection, never greet
        server.slow(0.5, on="DATA", times=None)    # answer every DATA, but half a second late
        server.require_auth("shop", "s3cret")      # MAIL FROM needs a good AUTH first
        server.limit_connections(1)                # "421 too many connections" beyond the first
        server.stop(); server.start()              # down for a while, back on the same port
        server.messages, server.connections_opened, server.ehlo_names, server.logins

Every fault applies to the next `times` matching commands (None: to all of them) and,
with `recipient`, only to messages for that address. The server offers PIPELINING unless
made with `pipelining=False`. Faults are used up in the order
they were added. Accepted messages are recorded with the number of the connection that
carried them, so tests can tell whether connections were reused.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import default as default_policy
from enum import StrEnum
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword

from notifier.smtp.url import SmtpConfig
from notifier.tools.catcher import LocalController

__all__ = ["FaultySmtpServer", "Received", "Step", "free_port"]

Step = Literal["connect", "MAIL", "RCPT", "DATA"]

# Replies the way real relays word them, so tests read like the logs ops will see.
DEFAULT_TEXT = {
    421: "4.3.2 Service not available, closing transmission channel",
    450: "4.2.0 Mailbox temporarily unavailable",
    451: "4.3.0 Local error in processing, try again later",
    452: "4.2.2 Mailbox full",
    550: "5.1.1 No such user here",
    552: "5.3.4 Message too big",
    553: "5.1.3 Mailbox name not allowed",
    554: "5.7.1 Message rejected as spam",
}
# How long stop() waits for the server's thread to tidy up connections.
_SHUTDOWN_TIMEOUT = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for "connection refused" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """A message the server accepted (replied 250 to)."""

    connection: int  # 1 for the first connection after start(), 2 for the next ...
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message_id: str | None
    accepted_at: float = 0.0  # time.monotonic() when the server said 250 to DATA
    tls: bool = False  # whether it came over TLS (smtps://, or after STARTTLS)


class _Action(StrEnum):
    REPLY = "reply"  # answer with an error reply instead of the normal one
    DROP = "drop"  # close the connection without answering
    HANG = "hang"  # never answer, keep the connection open
    SLOW = "slow"  # answer normally, but only after `delay` seconds


@dataclass(slots=True, kw_only=True)
class _Fault:
    step: Step
    action: _Action
    reply: str
    remaining: int | None  # None: forever
    recipient: str | None
    delay: float = 0.0  # for SLOW: seconds before the normal answer

    def applies(self, step: Step, recipients: Iterable[str]) -> bool:
        if self.step != step or self.remaining == 0:
            return False
        return self.recipient is None or self.recipient in recipients


class _FaultySMTP(SMTP):
    """aiosmtpd's SMTP for one connection, numbered, able to stay silent instead of greeting."""

    def __init__(self, handler: _Handler, *, number: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.number = number
        self._owner = handler.owner

    async def _handle_client(self) -> None:
        # aiosmtpd greets as soon as the connection is made and has no hook before that,
        # so a silent server is made by holding back the whole conversation.
        refusal = self._owner._over_limit(self)
        if refusal is not None:  # as a relay does beyond its limit: say so, and hang up
            await self.push(refusal)
            if self.transport is not None:
                self.transport.close()
            return
        fault = self._owner._take_fault("connect", ())
        if fault is not None and fault.action is _Action.SLOW:
            await asyncio.sleep(fault.delay)
        elif fault is not None:
            await _forever()
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        self._owner._forget(self)
        super().connection_lost(error)


class _Handler:
    """The aiosmtpd hooks: record messages, and apply the faults the test asked for."""

    def __init__(self, owner: FaultySmtpServer) -> None:
        self.owner = owner

    async def handle_EHLO(
        self, server: _FaultySMTP, session: Any, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.owner._said_ehlo(hostname)
        if self.owner.pipelining:  # aiosmtpd reads pipelined commands fine but does not say so
            responses.insert(len(responses) - 1, "250-PIPELINING")  # before the last line, "250 HELP"
        return responses

    async def handle_MAIL(
        self, server: _FaultySMTP, state: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.owner._auth is not None and not state.authenticated:
            return "530 5.7.0 Authentication required"
        refusal = await self.owner._misbehave(server, "MAIL", [])
        if refusal is not None:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: _FaultySMTP, state: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = await self.owner._misbehave(server, "RCPT", [address])
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: _FaultySMTP, state: Any, envelope: Envelope) -> str:
        refusal = await self.owner._misbehave(server, "DATA", envelope.rcpt_tos)
        if refusal is not None:
            return refusal
        content = envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        self.owner._record(server, envelope, data)
        return "250 2.0.0 Message accepted"


class _Controller(LocalController):
    def __init__(self, owner: FaultySmtpServer, **kwargs: Any) -> None:
        super().__init__(_Handler(owner), **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        return self._owner._new_connection(self)


def _abort(connection: SMTP) -> None:
    """Cut the connection at once, without a goodbye."""
    if isinstance(connection.transport, asyncio.Transport):
        connection.transport.abort()


def _is_tls(connection: SMTP) -> bool:
    transport = connection.transport
    return transport is not None and transport.get_extra_info("sslcontext") is not None


async def _forever() -> None:
    """Wait until cancelled: when the client gives up and closes, or the server stops."""
    await asyncio.Event().wait()


class FaultySmtpServer:
    """A real SMTP server on 127.0.0.1 (a free port) that records and misbehaves on request.

    `tls_context` offers STARTTLS with that certificate; with `implicit_tls` the whole
    connection is TLS instead (smtps://).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        pipelining: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.pipelining = pipelining  # offer PIPELINING (RFC 2920) in the EHLO reply
        self._tls_context = tls_context
        self._implicit_tls = implicit_tls
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._messages: list[Received] = []
        self._live: set[_FaultySMTP] = set()
        self._opened = 0
        # False while aiosmtpd probes the new server: that probe is neither counted nor
        # allowed to use up a fault meant for the test.
        self._ready = False
        self._auth: tuple[str, str] | None = None
        self._limit: tuple[int, str] | None = None
        self._ehlo_names: list[str] = []
        self._logins: list[tuple[str, bool]] = []  # (user name, over TLS)
        self._controller: _Controller | None = None

    # -- running ---------------------------------------------------------------------

    def start(self) -> None:
        """Listen (again): after stop(), on the same port, so clients find it back."""
        if self._controller is not None:
            raise RuntimeError("the test SMTP server is already running")
        tls_kwargs: dict[str, Any] = {}
        if self._tls_context is not None and self._implicit_tls:
            tls_kwargs["ssl_context"] = self._tls_context
        elif self._tls_context is not None:
            tls_kwargs["tls_context"] = self._tls_context
        controller = _Controller(
            self,
            hostname=self.host,
            port=self.port,
            server_hostname="faulty.test",
            auth_require_tls=False,
            authenticator=self._authenticate,
            **tls_kwargs,
        )
        with self._lock:
            self._ready = False
            self._opened = 0
        controller.start()
        self._controller = controller
        self.port = controller.port
        with self._lock:
            self._ready = True

    def stop(self) -> None:
        """Close every connection and stop listening; recorded messages are kept."""
        controller = self._controller
        if controller is None:
            return
        # Close the connections inside the server's loop first, so that no task or
        # transport is left pending when aiosmtpd stops that loop.
        done = asyncio.run_coroutine_threadsafe(self._close_all(), controller.loop)
        done.result(_SHUTDOWN_TIMEOUT)
        controller.stop()
        self._controller = None

    def __enter__(self) -> FaultySmtpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def url(self) -> str:
        scheme = "smtps" if self._implicit_tls else "smtp"
        return f"{scheme}://{self.host}:{self.port}"

    def smtp_config(self, **overrides: Any) -> SmtpConfig:
        """An SmtpConfig pointing at this server; any field can be overridden."""
        values: dict[str, Any] = {"host": self.host, "port": self.port}
        values.update(overrides)
        return SmtpConfig(**values)

    # -- what happened ---------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        """Every message accepted since this object was made, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def connections_opened(self) -> int:
        """Client connections opened since the last start()."""
        with self._lock:
            return self._opened

    @property
    def connections_open(self) -> int:
        """Client connections open right now."""
        with self._lock:
            return len(self._live)

    @property
    def ehlo_names(self) -> list[str]:
        """The name each EHLO carried, in order."""
        with self._lock:
            return list(self._ehlo_names)

    @property
    def logins(self) -> list[tuple[str, bool]]:
        """Each AUTH attempt's user name, and whether the connection was TLS by then."""
        with self._lock:
            return list(self._logins)

    # -- faults ----------------------------------------------------------------------

    def limit_connections(self, allowed: int, text: str = "4.7.0 too many connections") -> None:
        """Greet a connection beyond the first `allowed` open at once with "421 `text`"
        and close it, as relays with a per-client limit do."""
        self._limit = (allowed, f"421 {text}")

    def fail(
        self,
        code: int,
        text: str | None = None,
        *,
        on: Step = "RCPT",
        times: int | None = 1,
        recipient: str | None = None,
    ) -> None:
        """Answer `on` with `code` (and `text`, or a usual text for that code).

        A 421 also closes the connection, as real servers do.
        """
        reply = f"{code} {text or DEFAULT_TEXT.get(code, 'Refused')}"
        self._add(_Fault(step=on, action=_Action.REPLY, reply=reply, remaining=times, recipient=recipient))

    def drop(self, *, on: Step = "DATA", times: int | None = 1, recipient: str | None = None) -> None:
        """Close the connection instead of answering `on` (for DATA: after reading it all)."""
        self._add(_Fault(step=on, action=_Action.DROP, reply="", remaining=times, recipient=recipient))

    def hang(self, *, on: Step = "DATA", times: int | None = 1, recipient: str | None = None) -> None:
        """Never answer `on` ("connect": never greet), so the client times out."""
        self._add(_Fault(step=on, action=_Action.HANG, reply="", remaining=times, recipient=recipient))

    def slow(
        self, seconds: float, *, on: Step = "DATA", times: int | None = 1, recipient: str | None = None
    ) -> None:
        """Answer `on` as usual, but only after `seconds` ("connect": greet late): a slow relay."""
        if seconds < 0:
            raise ValueError(f"a delay cannot be negative, not {seconds}")
        self._add(
            _Fault(
                step=on, action=_Action.SLOW, reply="", remaining=times, recipient=recipient, delay=seconds
            )
        )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def require_auth(self, username: str, password: str) -> None:
        """From now on MAIL FROM is refused (530) unless the client logged in with these."""
        self._auth = (username, password)

    # -- inside the server's thread ----------------------------------------------------

    def _add(self, fault: _Fault) -> None:
        if fault.step == "connect" and fault.recipient is not None:
            raise ValueError("a fault on connect cannot depend on the recipient")
        if fault.step == "connect" and fault.action not in (_Action.HANG, _Action.SLOW):
            raise ValueError("on connect the server can only hang or be slow")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, step: Step, recipients: Iterable[str]) -> _Fault | None:
        recipients = tuple(recipients)
        with self._lock:
            if not self._ready:
                return None
            for fault in self._faults:
                if fault.applies(step, recipients):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    async def _misbehave(self, server: _FaultySMTP, step: Step, recipients: Iterable[str]) -> str | None:
        """The error reply to give instead of the normal one, if any; or drop, or hang."""
        fault = self._take_fault(step, recipients)
        if fault is None:
            return None
        if fault.action is _Action.SLOW:
            await asyncio.sleep(fault.delay)
            return None
        if fault.action is _Action.REPLY:
            if fault.reply.startswith("421") and server.transport is not None:
                # Runs once the reply has been written: the client gets it, then EOF.
                server.loop.call_soon(server.transport.close)
            return fault.reply
        if fault.action is _Action.DROP:
            _abort(server)
        await _forever()  # dropped: cancelled at once; hanging: when the client gives up
        raise AssertionError("unreachable")

    def _over_limit(self, connection: _FaultySMTP) -> str | None:
        with self._lock:
            if self._limit is None or not self._ready:
                return None
            allowed, reply = self._limit
            others = sum(1 for live in self._live if 0 < live.number < connection.number)
            return reply if others >= allowed else None

    def _said_ehlo(self, hostname: str) -> None:
        with self._lock:
            self._ehlo_names.append(hostname)

    def _new_connection(self, controller: _Controller) -> _FaultySMTP:
        with self._lock:
            if self._ready:
                self._opened += 1
            number = self._opened if self._ready else 0
        connection = _FaultySMTP(
            controller.handler, number=number, loop=controller.loop, **controller.SMTP_kwargs
        )
        with self._lock:
            self._live.add(connection)
        return connection

    def _forget(self, connection: _FaultySMTP) -> None:
        with self._lock:
            self._live.discard(connection)

    def _record(self, server: _FaultySMTP, envelope: Envelope, data: bytes) -> None:
        headers = BytesParser(policy=default_policy).parsebytes(data, headersonly=True)
        message_id = headers.get("Message-ID")
        received = Received(
            connection=server.number,
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            message_id=str(message_id).strip() if message_id is not None else None,
            accepted_at=time.monotonic(),
            tls=_is_tls(server),
        )
        with self._lock:
            self._messages.append(received)

    def _authenticate(
        self, server: SMTP, state: Any, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            with self._lock:
                self._logins.append((auth_data.login.decode(), _is_tls(server)))
        if self._auth is None:
            return AuthResult(success=True)
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=given == self._auth, handled=False)

    async def _close_all(self) -> None:
        with self._lock:
            live = list(self._live)
        for connection in live:
            _abort(connection)
        # A few turns of the loop let each connection_lost() run and its task finish.
        for _ in range(5):
            await asyncio.sleep(0)
