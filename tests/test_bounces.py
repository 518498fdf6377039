"""Bounces and complaints that arrive after the relay said 250: the bounce address (VERP) on the
envelope, reports taken in by the SMTP listener and from an IMAP mailbox, the notification
marked, the address suppressed for a dead mailbox or a complaint, and all of it shown in
`history`, `status` and /metrics.

Real-world formats: the sample bounces that ship in flufl.bounce's source distribution
(`tests/data/`, about a hundred reports from Exim, qmail, Postfix, Yahoo, Exchange, ...),
fetched with `pip download` once per machine, sent through the listener into a real database.
The IMAP side runs against a minimal IMAP4rev1 server written below (tests/imap_server.py).
"""

from __future__ import annotations

import email
import smtplib
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import replace
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flufl.bounce import all_failures
from freezegun import freeze_time
from prometheus_client import generate_latest
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.settings import Secret, Settings
from notifier.db.store import SUPPRESSIONS
from notifier.run import metrics
from notifier.tools.bounce_mailbox import poll_mailbox
from notifier.tools.bounces import BounceListener
from tests.imap_server import ImapServer
from tests.journey import notifications
from tests.journey import run as run_once
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

FLUFL_VERSION = "6.0.0"
DOMAIN = "bounce.blossom.test"


@pytest.fixture(scope="session")
def flufl_samples() -> list[Path]:
    """flufl.bounce's sample bounces, from its source distribution (downloaded once, kept)."""
    cache = Path(tempfile.gettempdir()) / f"notifier-flufl-bounce-{FLUFL_VERSION}"
    data = cache / f"flufl_bounce-{FLUFL_VERSION}" / "tests" / "data"
    if not data.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
             f"flufl.bounce=={FLUFL_VERSION}", "-d", str(cache), "-q"],
            check=True, timeout=300,
        )  # fmt: skip
        with tarfile.open(next(cache.glob("flufl_bounce-*.tar.gz"))) as archive:
            archive.extractall(cache, filter="data")
    samples = sorted(data.glob("*.txt"))
    assert len(samples) > 100, "flufl.bounce's source distribution no longer carries its samples"
    return samples


@pytest.fixture
def bouncing(settings: Settings) -> Settings:
    return replace(settings, bounce_domain=DOMAIN)


def run(settings: Settings) -> Any:
    """`run --once` until it sends nothing more (a batch of events is read per turn)."""
    with freeze_time("2026-02-10 09:01", real_asyncio=True):
        code, result = run_once(settings)
        while (more := run_once(settings)[1]).sent:
            result = replace(result, sent=result.sent + more.sent)
        return code, result


def _deliver(listener: BounceListener, data: bytes, to: str = f"bounces@{DOMAIN}") -> None:
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
        client.sendmail("", [to], data)  # a bounce has the null sender


def _placed(shop: Shop, address: str) -> int:
    customer = shop.customer(email=address, timezone="UTC", marketing_opt_in=True)
    order = shop.order(customer, items=[(shop.product(price="30.00"), 1)])
    shop.event("order", order, "placed", "2026-02-10 09:00")
    return order


def _suppressed(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {row.address: row.reason for row in conn.execute(sa.select(SUPPRESSIONS))}


def _cli(settings: Settings, *args: str) -> str:
    base = ["--database-url", settings.database_url.reveal(), "--rules", str(settings.rules)]
    result = CliRunner().invoke(app, [*base, *args])
    assert result.exit_code == 0, result.output
    return result.output


def _status_of_blocks(message: Message) -> dict[str, str]:
    """RFC 3464 Status per recipient, read with the standard library alone."""
    found: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status" and part.is_multipart():
            for block in part.get_payload():
                address = str(block.get("final-recipient", "")).split(";")[-1].strip().strip("<>").lower()
                found.setdefault(address, str(block.get("status", "")).strip())
    return found


def test_real_world_bounces_through_the_listener_mark_and_suppress(
    flufl_samples: list[Path], bouncing: Settings, shop: Shop, engine: sa.Engine
) -> None:
    readings: dict[Path, tuple[set[str], set[str], dict[str, str]]] = {}
    for sample in flufl_samples:
        message = email.message_from_bytes(sample.read_bytes())
        temporary, permanent = all_failures(message)
        readings[sample] = (
            {a.decode().lower() for a in temporary},
            {a.decode().lower() for a in permanent},
            _status_of_blocks(message),
        )
    addresses = sorted(set().union(*(t | p for t, p, _ in readings.values())))
    for address in addresses:
        _placed(shop, address)
    sent = run(bouncing)[1].sent
    rows = {row["recipient"].lower(): row for row in notifications(engine, rule="order-confirmation")}
    # One sample's address is one notifier will not send to ('david...@gmail.com'): skipped.
    usable = {a for a in addresses if rows[a]["state"] == "sent"}
    assert sent == len(usable) == len(addresses) - 1

    recognised = 0
    with BounceListener(engine, bouncing) as listener:
        for sample, (temporary, permanent, statuses) in readings.items():
            before = replace(listener.taken, suppressed=list(listener.taken.suppressed))
            _deliver(listener, sample.read_bytes())
            taken = listener.taken
            assert taken.reports == before.reports + 1, sample.name
            found = temporary | permanent
            recognised += bool(found)
            assert taken.matched - before.matched == len(found & usable), sample.name
            assert taken.unmatched - before.unmatched == len(found - usable), sample.name
            suppressed = set(taken.suppressed[len(before.suppressed) :])
            # Only permanent failures suppress: a dead mailbox (5.1.x) does, a delay (4.x.x) never.
            assert suppressed <= permanent, sample.name
            assert {a for a, st in statuses.items() if st.startswith("5.1.")} <= suppressed, sample.name
            assert not {a for a, st in statuses.items() if st.startswith("4.")} & suppressed, sample.name
            assert not temporary & suppressed, sample.name
    assert recognised > 90, "most of the real-world samples are recognised"
    rows = {row["recipient"].lower(): row for row in notifications(engine, rule="order-confirmation")}
    assert all(rows[a]["state"] == "bounced" for a in usable)
    # Spot checks against what the samples are known to be.
    suppressed = _suppressed(engine)
    assert suppressed["xxxxx@local.ie"] == "hard bounce"  # postfix_01: a dead mailbox
    assert "userx@example.za" not in suppressed  # simple_03: a delay warning only
    assert rows["userx@example.za"]["reason"] == "soft_bounce"
    assert "zzzzz@example.uk" not in suppressed  # dsn_02: failed after retrying for days, 4.4.7
    # simple_42: Gmail's "550-5.7.1 ... this message is likely unsolicited": a policy refusal.
    assert "david...@gmail.com" not in suppressed
    assert len(suppressed) > 50


def _dsn(to: str, original: bytes, recipient: str, status: str, action: str = "failed") -> bytes:
    return (
        f"From: MAILER-DAEMON@relay.test\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} the far server's words\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ).encode() + original.split(b"\r\n\r\n", 1)[0] + b"\r\n--b1--\r\n"


def _arf(original: bytes, recipient: str) -> bytes:
    return (
        "From: feedback@isp.test\r\nTo: fbl@blossom.example\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b2"\r\n\r\n'
        "--b2\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
        "--b2\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: ISP-FBL/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {recipient}\r\n\r\n"
        "--b2\r\nContent-Type: message/rfc822\r\n\r\n"
    ).encode() + original + b"\r\n--b2--\r\n"


def test_bounce_address_reports_and_complaints_end_to_end(
    bouncing: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    people = ["gone@example.com", "spam@example.com", "blocked@example.com", "full@example.com"]
    orders = {address: _placed(shop, address) for address in people}
    assert run(bouncing)[1].sent == 4
    sent = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    rows = {row["recipient"]: row for row in notifications(engine, rule="order-confirmation")}
    with engine.connect() as conn:
        from notifier.db.store.bounces import verp_of

        verp = verp_of(conn, DOMAIN, rows["gone@example.com"]["created_at"])
    assert verp is not None
    for address, message in sent.items():
        assert message.mail_from == verp.address(rows[address]["id"]), "the envelope names the notification"
        assert message.mail_from.endswith(f"@{DOMAIN}")
        assert verp.notification_of(message.mail_from) == rows[address]["id"]
    forged = sent["gone@example.com"].mail_from.replace("+", "+9")
    assert verp.notification_of(forged) is None, "a made-up bounce address names nothing"

    with BounceListener(engine, bouncing) as listener:
        for address, status, action in [
            ("gone@example.com", "5.1.1", "failed"),
            ("blocked@example.com", "5.7.1", "failed"),
            ("full@example.com", "4.2.2", "delayed"),
        ]:
            envelope = sent[address].mail_from
            # The relay's report goes to the bounce address; the recipient's domain rewrote nothing.
            _deliver(listener, _dsn(envelope, sent[address].data, address, status, action), to=envelope)
        _deliver(listener, _arf(sent["spam@example.com"].data, "spam@example.com"))
        assert listener.taken.matched == 4 and listener.taken.unrecognised == 0

    rows = {row["recipient"]: row for row in notifications(engine, rule="order-confirmation")}
    gone = rows["gone@example.com"]
    assert (gone["state"], gone["reason"]) == ("bounced", "hard_bounce")
    assert (rows["blocked@example.com"]["state"], rows["blocked@example.com"]["reason"]) == (
        "bounced", "refused_later",
    )  # fmt: skip
    assert rows["full@example.com"]["reason"] == "soft_bounce"
    spam = rows["spam@example.com"]
    assert (spam["state"], spam["reason"]) == ("complained", "complaint")
    assert _suppressed(engine) == {"gone@example.com": "hard bounce", "spam@example.com": "complaint"}

    history = _cli(bouncing, "history", "--order", str(orders["gone@example.com"]))
    assert "bounced later, the mailbox does not exist: 5.1.1" in history
    assert "the address is suppressed" in history
    complaint = _cli(bouncing, "history", "--customer", "spam@example.com")
    assert "reported it as spam" in complaint
    blocked = _cli(bouncing, "history", "--order", str(orders["blocked@example.com"]))
    assert "refused later by the receiving server: 5.7.1" in blocked and "not suppressed" in blocked
    status = _cli(bouncing, "status")
    assert "bounced later: 3 (hard_bounce 1, refused_later 1, soft_bounce 1); complaints: 1" in status
    assert "suppressed addresses: 2 (complaint 1, hard bounce 1)" in status

    metrics.watch_outbox(engine)
    exposed = generate_latest(metrics.REGISTRY).decode()
    assert 'notifier_outbox{state="bounced"} 3.0' in exposed
    assert 'notifier_outbox{state="complained"} 1.0' in exposed


def test_without_a_bounce_domain_the_envelope_sender_stays_from(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    _placed(shop, "lin@example.com")
    assert run(settings)[1].sent == 1
    assert smtp_server.messages[0].mail_from == "care@blossom.example"


def test_listener_refuses_mail_for_other_domains(bouncing: Settings, engine: sa.Engine) -> None:
    with BounceListener(engine, bouncing) as listener, pytest.raises(smtplib.SMTPRecipientsRefused):
        _deliver(listener, b"Subject: hi\r\n\r\nhello\r\n", to="someone@elsewhere.test")


def test_reports_polled_from_an_imap_mailbox(
    bouncing: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer,
    flufl_samples: list[Path],
) -> None:
    _placed(shop, "gone@example.com")
    assert run(bouncing)[1].sent == 1
    [message] = smtp_server.messages
    dsn = _dsn(message.mail_from, message.data, "gone@example.com", "5.1.1")
    not_a_report = b"From: a@b.test\r\nSubject: hello\r\n\r\nJust saying hi.\r\n"
    real = next(p for p in flufl_samples if p.name == "qmail_01.txt").read_bytes()
    with ImapServer(user="bounces", password="s3cret", messages=[dsn, not_a_report, real]) as imap:
        polling = replace(bouncing, bounce_imap_url=Secret(f"imap://bounces:s3cret@127.0.0.1:{imap.port}/INBOX"))
        taken = poll_mailbox(engine, polling)
        assert (taken.reports, taken.matched, taken.unmatched, taken.unrecognised) == (3, 1, 1, 1)
        assert imap.flags == {1: {"\\Deleted"}, 2: {"\\Seen"}, 3: {"\\Deleted"}}
        assert imap.expunged == [1, 3], "stored reports leave the mailbox; the unreadable one stays"
        again = poll_mailbox(engine, polling)
        assert again.reports == 0, "a message left as seen is not taken twice"
    [row] = notifications(engine, rule="order-confirmation")
    assert (row["state"], row["reason"]) == ("bounced", "hard_bounce")
    assert _suppressed(engine) == {"gone@example.com": "hard bounce", "userx@example.de": "hard bounce"}


def test_a_bad_imap_url_is_said_in_plain_words(bouncing: Settings) -> None:
    result = CliRunner().invoke(
        app, ["--database-url", bouncing.database_url.reveal(), "bounces", "poll"],
        env={"NOTIFIER_BOUNCE_IMAP_URL": "https://x@host/INBOX"},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "must start with imaps://" in result.output
    assert "Traceback" not in result.output


def test_a_bad_bounce_domain_is_said_in_plain_words(bouncing: Settings) -> None:
    result = CliRunner().invoke(
        app, ["--database-url", bouncing.database_url.reveal(), "status"],
        env={"NOTIFIER_BOUNCE_DOMAIN": "not a domain"},
    )  # fmt: skip
    assert result.exit_code == 1 and "is not a domain name" in result.output

