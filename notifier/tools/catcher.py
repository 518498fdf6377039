"""A built-in mail catcher: a local SMTP server that keeps every message it is given.

`notifier demo` points the daemon at one so nobody's real inbox is involved, and the
tests use it to look at exactly what would have been sent. Messages are kept in memory
and, when `out_dir` is given, also saved as `NNNN-<subject>.eml` files that any mail
program can open.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope

__all__ = ["CaughtMessage", "LocalController", "MailCatcher"]

# aiosmtpd would otherwise ask the resolver for our fully qualified name, which can
# take seconds on a machine without working DNS.
_GREETING_NAME = "notifier-catcher"
_UNSAFE_IN_NAME = re.compile(r"[^\w]+")
_NAME_LENGTH = 60


class LocalController(Controller):
    """aiosmtpd's threaded Controller that also works with port 0 (a free port).

    Listening on port 0 lets the operating system choose a free port, so there is no
    window in which another process can take it between "find" and "bind".
    """

    def factory(self) -> SMTP:
        # Hand the server our loop: left alone, aiosmtpd looks one up inside a
        # process-wide warnings.catch_warnings(), which is not safe from a second thread.
        return SMTP(self.handler, loop=self.loop, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # aiosmtpd probes the new server on `self.port` before start() returns; with
        # port 0 that probe would go nowhere, so read back the port actually bound.
        if isinstance(self.server, asyncio.Server) and self.server.sockets:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass(frozen=True, slots=True, kw_only=True)
class CaughtMessage:
    """One message as the catcher received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message_id: str | None
    subject: str

    @classmethod
    def parse(cls, *, mail_from: str, rcpt_tos: tuple[str, ...], data: bytes) -> CaughtMessage:
        """Read the Message-ID and the decoded Subject out of the raw bytes."""
        headers = BytesParser(policy=default_policy).parsebytes(data, headersonly=True)
        message_id = headers.get("Message-ID")
        return cls(
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
            data=data,
            message_id=str(message_id).strip() if message_id is not None else None,
            subject=str(headers.get("Subject", "")),
        )


def eml_name(number: int, subject: str) -> str:
    """'0007-your-order-has-shipped.eml': sortable, and safe on every file system."""
    words = _UNSAFE_IN_NAME.sub("-", subject.casefold()).strip("-_")
    return f"{number:04d}-{words[:_NAME_LENGTH].rstrip('-_') or 'no-subject'}.eml"


class _Keeper:
    """The aiosmtpd handler: accepts every message and hands it to the catcher."""

    def __init__(self, catcher: MailCatcher) -> None:
        self._catcher = catcher

    async def handle_DATA(self, server: SMTP, state: Any, envelope: Envelope) -> str:
        content = envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        self._catcher._keep(
            CaughtMessage.parse(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=data,
            )
        )
        return "250 2.0.0 Message accepted for delivery"


class MailCatcher:
    """A local SMTP server (on 127.0.0.1; port 0 picks a free one) that keeps every
    message and, if `out_dir` is given, saves each as NNNN-<sanitised-subject>.eml.

        with MailCatcher(out_dir=Path("outbox")) as catcher:
            ...  # send to catcher.url
            catcher.messages[0].subject
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, out_dir: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.out_dir = out_dir
        self._lock = threading.Lock()
        self._messages: list[CaughtMessage] = []
        self._controller: LocalController | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[CaughtMessage]:
        """A copy of every message caught so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("the mail catcher is already running")
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        controller = LocalController(
            _Keeper(self), hostname=self.host, port=self.port, server_hostname=_GREETING_NAME
        )
        controller.start()
        self._controller = controller
        self.port = controller.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailCatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _keep(self, message: CaughtMessage) -> None:
        # Called from the server's thread; the lock also keeps the file numbers unique.
        with self._lock:
            self._messages.append(message)
            if self.out_dir is not None:
                path = self.out_dir / eml_name(len(self._messages), message.subject)
                path.write_bytes(message.data)
