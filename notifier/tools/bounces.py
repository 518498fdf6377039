"""Bounce reports and complaints taken in: read (smtp/bounce_reports.py), matched to the
notification they are about, recorded (db/store/bounces.py). Two ways in: `BounceListener`, a
small SMTP server that a relay's bounce domain is routed to (`notifier bounces listen`), and
the IMAP mailbox of bounce_mailbox.py (`notifier bounces poll`); both call `take_report`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from aiosmtpd.smtp import SMTP, Envelope

from notifier.config.settings import Settings
from notifier.core.bounces import Verp, suppresses
from notifier.core.timing import utcnow
from notifier.db.store.bounces import find_notification, record_report, verp_of
from notifier.smtp.bounce_reports import Report, read_report
from notifier.tools.catcher import LocalController

__all__ = ["BounceListener", "Taken", "take_report"]

log = logging.getLogger("notifier.bounces")
_GREETING_NAME = "notifier-bounces"


@dataclass(slots=True)
class Taken:
    """What one report (or a run of them) did."""

    reports: int = 0
    unrecognised: int = 0  # no bounce or complaint found in it: left alone
    matched: int = 0  # findings tied to a notification
    unmatched: int = 0  # findings about an address notifier sent nothing to (only suppressed)
    suppressed: list[str] = field(default_factory=list)

    def add(self, other: Taken) -> None:
        self.reports += other.reports
        self.unrecognised += other.unrecognised
        self.matched += other.matched
        self.unmatched += other.unmatched
        self.suppressed += other.suppressed

    def words(self) -> str:
        return (
            f"{self.reports} report(s): {self.matched} matched to a notification, {self.unmatched} not, "
            f"{self.unrecognised} not a bounce or complaint; {len(self.suppressed)} address(es) suppressed"
        )


def take_report(
    engine: sa.Engine, settings: Settings, data: bytes, envelope_recipients: tuple[str, ...] = (),
    now: datetime | None = None,
) -> Taken:  # fmt: skip
    """Read one report and record what it says, in one transaction."""
    report = read_report(data, envelope_recipients)
    taken = Taken(reports=1)
    if not report.recognised:
        taken.unrecognised = 1
        log.info("a message to the bounce address is no bounce or complaint notifier can read; ignored")
        return taken
    now = now or utcnow()
    with engine.begin() as conn:
        verp = verp_of(conn, settings.bounce_domain, now)
        for finding, notification in _matched(conn, report, verp):
            record_report(
                conn, notification, address=finding.address, kind=finding.kind, detail=finding.detail, now=now
            )
            if notification is None:
                taken.unmatched += 1
            else:
                taken.matched += 1
            if suppresses(finding.kind):
                taken.suppressed.append(finding.address)
            log.info("%s for %s (#%s): %s", finding.kind, finding.address, notification, finding.detail)
    return taken


def _matched(conn: sa.Connection, report: Report, verp: Verp | None) -> list[tuple[Any, int | None]]:
    ids = [i for a in report.candidates if verp is not None and (i := verp.notification_of(a)) is not None]
    return [
        (f, find_notification(conn, verp_ids=ids, message_ids=report.message_ids, address=f.address))
        for f in report.findings
    ]


class _Handler:
    def __init__(self, listener: BounceListener) -> None:
        self._listener = listener

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        domain = self._listener.settings.bounce_domain
        if domain and address.rsplit("@", 1)[-1].lower() != domain:
            return f"550 5.1.1 only addresses at {domain} are taken here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Envelope) -> str:
        content = envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        try:
            taken = await asyncio.to_thread(
                take_report, self._listener.engine, self._listener.settings, data, tuple(envelope.rcpt_tos)
            )
        except sa.exc.SQLAlchemyError as exc:
            log.warning("a bounce report could not be stored (the relay will try again): %s", exc)
            return "451 4.3.0 cannot store the report now, try again later"
        self._listener.taken.add(taken)
        return "250 2.0.0 report taken"


class _TolerantSMTP(SMTP):
    # Reports quote foreign messages, some with lines over SMTP's 1,000 characters; a report
    # refused for it would come back again and again, so take them.
    line_length_limit = 64 * 1024


class _Controller(LocalController):
    def factory(self) -> SMTP:
        return _TolerantSMTP(self.handler, loop=self.loop, **self.SMTP_kwargs)


class BounceListener:
    """A small SMTP server that takes bounce reports and complaints (port 0: a free one).

        with BounceListener(engine, settings, port=2525) as listener: ...
    """

    def __init__(
        self, engine: sa.Engine, settings: Settings, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.host = host
        self.port = port
        self.taken = Taken()
        self._controller: LocalController | None = None

    def start(self) -> None:
        controller = _Controller(
            _Handler(self), hostname=self.host, port=self.port, server_hostname=_GREETING_NAME
        )
        controller.start()
        self._controller = controller
        self.port = controller.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> BounceListener:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
