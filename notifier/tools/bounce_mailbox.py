"""Bounce reports read from an IMAP mailbox (NOTIFIER_BOUNCE_IMAP_URL), for a relay or a
provider that delivers them to a mailbox rather than to a host of ours.

`imaps://user:password@host[:993]/Folder` (TLS from the start; `imap://` only for a server on
this machine, e.g. a test). Every message not yet seen is taken (tools/bounces.take_report); a
report that was stored is deleted from the mailbox, one notifier cannot read is left there,
marked seen, for a person; one that could not be stored (database down) stays unseen and is
read again at the next poll.
"""

from __future__ import annotations

import imaplib
import logging
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa

from notifier.config.settings import Settings
from notifier.errors import ConfigError
from notifier.tools.bounces import Taken, take_report

__all__ = ["Mailbox", "mailbox_of", "poll_mailbox"]

log = logging.getLogger("notifier.bounces")
_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Mailbox:
    host: str
    port: int
    tls: bool
    user: str
    password: str
    folder: str

    @property
    def address(self) -> str:
        return f"{'imaps' if self.tls else 'imap'}://{self.user}@{self.host}:{self.port}/{self.folder}"


def mailbox_of(url: str) -> Mailbox:
    """The mailbox an imaps:// URL names; ConfigError in plain words when it names none."""
    parts = urlsplit(url)
    if parts.scheme not in ("imaps", "imap"):
        raise ConfigError(f"NOTIFIER_BOUNCE_IMAP_URL must start with imaps:// (got {parts.scheme or 'none'}://)")
    if not parts.hostname or parts.username is None:
        raise ConfigError("NOTIFIER_BOUNCE_IMAP_URL needs a user and a host: imaps://user:password@host/INBOX")
    tls = parts.scheme == "imaps"
    try:
        port = parts.port or (993 if tls else 143)
    except ValueError as exc:
        raise ConfigError(f"NOTIFIER_BOUNCE_IMAP_URL: {exc}") from exc
    return Mailbox(
        host=parts.hostname,
        port=port,
        tls=tls,
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
    )


def _connect(box: Mailbox) -> imaplib.IMAP4:
    if box.tls:
        context = ssl.create_default_context()
        return imaplib.IMAP4_SSL(box.host, box.port, ssl_context=context, timeout=_TIMEOUT)
    return imaplib.IMAP4(box.host, box.port, timeout=_TIMEOUT)


def poll_mailbox(engine: sa.Engine, settings: Settings) -> Taken:
    """Take every unseen message of the mailbox once; what they did."""
    if settings.bounce_imap_url is None:
        raise ConfigError("set NOTIFIER_BOUNCE_IMAP_URL (imaps://user:password@host/INBOX) to poll a mailbox")
    box = mailbox_of(settings.bounce_imap_url.reveal())
    taken = Taken()
    client = _connect(box)
    try:
        client.login(box.user, box.password)
        status, _ = client.select(_quoted(box.folder))
        if status != "OK":
            raise ConfigError(f"{box.address}: no such folder")
        _, found = client.uid("SEARCH", "UNSEEN")
        for uid in (found[0] or b"").decode("ascii").split():
            taken.add(_take_one(client, uid, engine, settings))
        client.expunge()
        client.close()
    finally:
        client.logout()
    return taken


def _take_one(client: imaplib.IMAP4, uid: str, engine: sa.Engine, settings: Settings) -> Taken:
    _, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
    data = next((p[1] for p in parts if isinstance(p, tuple) and len(p) > 1), None)
    if not isinstance(data, bytes):
        return Taken()
    try:
        one = take_report(engine, settings, data)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("a report in the mailbox could not be stored; it is read again next time: %s", exc)
        return Taken()
    flag = "\\Seen" if one.unrecognised else "\\Deleted"
    client.uid("STORE", uid, "+FLAGS", f"({flag})")
    return one


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
