"""notifier.smtp (url, refusals, pool, wire, pipelining) and notifier.tools.catcher,
against a real SMTP server (no mocks).

Every test with the `smtp_server` fixture runs twice: against a server that offers
PIPELINING (notifier.smtp.pipelining sends each message) and one that does not (aiosmtplib
does, a command at a time). Failures must come out the same either way.
"""

from __future__ import annotations

import asyncio
import errno
import random
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
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
    SMTPReadTimeoutError,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from aiosmtplib.email import parse_address
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from notifier.core.refusal_codes import Refused, Stage
from notifier.core.retry import backoff
from notifier.core.values import Outcome, SendResult
from notifier.smtp.pool import Sender
from notifier.smtp.refusals import ServerUnusable, classify
from notifier.smtp.url import SmtpConfig
from notifier.smtp.wire import MAILBOX, data_payload, envelope_address
from notifier.tools.catcher import MailCatcher, eml_name
from tests.smtp_server import DEFAULT_TEXT, FaultySmtpServer, free_port

SHOP = "orders@flowers.test"
CUSTOMER = "lin@example.test"
MESSAGE = (
    b"From: Flowers <orders@flowers.test>\r\n"
    b"To: Ms Lin <lin@example.test>\r\n"
    b"Subject: Your flowers were delivered\r\n"
    b"Message-ID: <order-42.delivered@flowers.test>\r\n"
    b"\r\n"
    b"Delivered at 11:02, signed for by Ms Lin.\r\n"
)
SHORT = 0.5  # seconds: the timeout for tests where the server goes quiet


@pytest.fixture(params=[True, False], ids=["pipelined", "one-at-a-time"])
def smtp_server(request: pytest.FixtureRequest) -> Iterator[FaultySmtpServer]:
    with FaultySmtpServer(pipelining=request.param) as server:
        yield server


def send_one(config: SmtpConfig, *, rcpt_to: str = CUSTOMER) -> SendResult:
    async def run() -> SendResult:
        async with Sender(config) as sender:
            return await sender.send(mail_from=SHOP, rcpt_to=rcpt_to, message=MESSAGE)

    return asyncio.run(run())


def send_many(config: SmtpConfig, recipients: list[str]) -> list[SendResult]:
    """Send one after another over one Sender."""

    async def run() -> list[SendResult]:
        async with Sender(config) as sender:
            return [await sender.send(mail_from=SHOP, rcpt_to=rcpt, message=MESSAGE) for rcpt in recipients]

    return asyncio.run(run())


def wait_until(condition: Callable[[], bool], timeout: float = 1.0) -> bool:
    """The server runs in its own thread; give it a moment to catch up."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- the happy path and the pool ---------------------------------------------------------


def test_a_message_is_handed_over_intact(smtp_server: FaultySmtpServer) -> None:
    result = send_one(smtp_server.smtp_config())

    assert result.outcome is Outcome.SENT
    assert result.code == 250
    assert result.reply == "2.0.0 Message accepted"
    [received] = smtp_server.messages
    assert received.mail_from == SHOP
    assert received.rcpt_tos == (CUSTOMER,)
    assert received.message_id == "<order-42.delivered@flowers.test>"
    assert received.data == MESSAGE


def test_many_sends_share_a_few_connections(smtp_server: FaultySmtpServer) -> None:
    config = smtp_server.smtp_config(connections=2)

    async def run() -> list[SendResult]:
        async with Sender(config) as sender:
            return await asyncio.gather(
                *(
                    sender.send(mail_from=SHOP, rcpt_to=f"c{n}@example.test", message=MESSAGE)
                    for n in range(100)
                )
            )

    results = asyncio.run(run())

    assert [r.outcome for r in results] == [Outcome.SENT] * 100
    assert len(smtp_server.messages) == 100
    assert smtp_server.connections_opened <= 2
    assert {m.connection for m in smtp_server.messages} <= {1, 2}


def test_one_after_another_use_one_connection(smtp_server: FaultySmtpServer) -> None:
    results = send_many(smtp_server.smtp_config(), [f"c{n}@example.test" for n in range(10)])

    assert {r.outcome for r in results} == {Outcome.SENT}
    assert smtp_server.connections_opened == 1


def test_closing_the_sender_quits_every_connection(smtp_server: FaultySmtpServer) -> None:
    send_many(smtp_server.smtp_config(), [CUSTOMER, CUSTOMER])

    assert wait_until(lambda: smtp_server.connections_open == 0)


def test_a_closed_sender_refuses_to_send(smtp_server: FaultySmtpServer) -> None:
    async def run() -> None:
        sender = Sender(smtp_server.smtp_config())
        async with sender:
            pass
        await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=MESSAGE)

    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(run())


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "step", "outcome"),
    [
        (421, "RCPT", Outcome.TRANSIENT),
        (450, "RCPT", Outcome.TRANSIENT),
        (451, "RCPT", Outcome.TRANSIENT),
        (452, "RCPT", Outcome.TRANSIENT),
        (550, "RCPT", Outcome.PERMANENT),
        (553, "RCPT", Outcome.PERMANENT),
        (451, "MAIL", Outcome.TRANSIENT),
        (553, "MAIL", Outcome.PERMANENT),
        (451, "DATA", Outcome.TRANSIENT),
        (552, "DATA", Outcome.PERMANENT),
        (554, "DATA", Outcome.PERMANENT),
    ],
)
def test_refusals_are_classified_by_code(
    smtp_server: FaultySmtpServer, code: int, step: str, outcome: Outcome
) -> None:
    smtp_server.fail(code, on=step)  # type: ignore[arg-type]

    result = send_one(smtp_server.smtp_config())

    stage = {"MAIL": Stage.MAIL, "RCPT": Stage.RCPT, "DATA": Stage.DATA}[step]
    assert result == Refused(outcome=outcome, code=code, reply=DEFAULT_TEXT[code], stage=stage)
    assert smtp_server.messages == []


def test_the_servers_own_words_are_kept(smtp_server: FaultySmtpServer) -> None:
    smtp_server.fail(550, "5.1.1 <lin@example.test>: Recipient address rejected: User unknown")

    result = send_one(smtp_server.smtp_config())

    assert result.reply == "5.1.1 <lin@example.test>: Recipient address rejected: User unknown"


def test_a_refusal_leaves_the_connection_usable(smtp_server: FaultySmtpServer) -> None:
    smtp_server.fail(550)

    results = send_many(smtp_server.smtp_config(), [CUSTOMER, CUSTOMER])

    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.SENT]
    assert smtp_server.connections_opened == 1


def test_after_421_the_next_message_goes_on_a_new_connection(
    smtp_server: FaultySmtpServer,
) -> None:
    smtp_server.fail(421)

    results = send_many(smtp_server.smtp_config(), [CUSTOMER, CUSTOMER])

    assert [r.outcome for r in results] == [Outcome.TRANSIENT, Outcome.SENT]
    assert smtp_server.connections_opened == 2


def test_a_refusal_for_one_recipient_does_not_touch_others(
    smtp_server: FaultySmtpServer,
) -> None:
    smtp_server.fail(550, recipient="gone@example.test", times=None)

    results = send_many(smtp_server.smtp_config(), ["gone@example.test", CUSTOMER, "gone@example.test"])

    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.SENT, Outcome.PERMANENT]
    assert [m.rcpt_tos for m in smtp_server.messages] == [(CUSTOMER,)]


@pytest.mark.parametrize(
    "address",
    [
        "lin@example.test\r\nRCPT TO:<someone@else.test>",
        "lin@example.test, mei@example.test",  # aiosmtplib alone would send to lin only
        "Ms Lin <lin@example.test>",
        "not an address",
        "",
    ],
)
def test_an_address_that_is_not_a_plain_mailbox_is_permanent(
    smtp_server: FaultySmtpServer, address: str
) -> None:
    result = send_one(smtp_server.smtp_config(), rcpt_to=address)

    assert result.outcome is Outcome.PERMANENT
    assert "is not a plain address" in result.reply
    assert smtp_server.messages == []
    assert smtp_server.connections_opened == 0


def test_a_non_ascii_address_goes_with_smtputf8(smtp_server: FaultySmtpServer) -> None:
    result = send_one(smtp_server.smtp_config(), rcpt_to="林美玲@例子.test")

    assert result.outcome is Outcome.SENT
    assert smtp_server.messages[0].rcpt_tos == ("林美玲@例子.test",)


# -- connections that break ----------------------------------------------------------------


def test_a_connection_dropped_during_data_is_transient_and_replaced(
    smtp_server: FaultySmtpServer,
) -> None:
    smtp_server.drop(on="DATA")

    results = send_many(smtp_server.smtp_config(), [CUSTOMER, CUSTOMER])

    assert results[0].outcome is Outcome.TRANSIENT
    assert results[0].code is None
    assert "dropped the connection" in results[0].reply
    assert results[1].outcome is Outcome.SENT
    assert smtp_server.connections_opened == 2
    assert len(smtp_server.messages) == 1


def test_a_server_that_stops_answering_is_transient_within_the_timeout(
    smtp_server: FaultySmtpServer,
) -> None:
    smtp_server.hang(on="DATA")
    started = time.monotonic()

    async def run() -> tuple[SendResult, float, SendResult]:
        async with Sender(smtp_server.smtp_config(timeout=SHORT)) as sender:
            hung = await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=MESSAGE)
            waited = time.monotonic() - started
            after = await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=MESSAGE)
            return hung, waited, after

    hung, waited, after = asyncio.run(run())

    assert hung.outcome is Outcome.TRANSIENT
    assert "no reply" in hung.reply
    assert SHORT <= waited < 3 * SHORT  # the timeout, not the 30 s default
    assert after.outcome is Outcome.SENT
    assert smtp_server.connections_opened == 2


def test_a_server_that_never_greets_stalls(smtp_server: FaultySmtpServer) -> None:
    smtp_server.hang(on="connect")

    result = send_one(smtp_server.smtp_config(timeout=SHORT))

    assert result.outcome is Outcome.STALLED
    assert result.reply == f"no greeting from 127.0.0.1:{smtp_server.port} in time"


def test_nothing_listening_stalls() -> None:
    port = free_port()

    result = send_one(SmtpConfig(host="127.0.0.1", port=port, timeout=SHORT))

    assert result == SendResult(
        outcome=Outcome.STALLED, code=None, reply=f"connection refused by 127.0.0.1:{port}"
    )


def test_a_restarted_server_is_used_again_without_blaming_a_message(
    smtp_server: FaultySmtpServer,
) -> None:
    async def run() -> list[SendResult]:
        async with Sender(smtp_server.smtp_config(timeout=SHORT)) as sender:
            results = [await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=MESSAGE)]
            smtp_server.stop()
            results.append(await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=MESSAGE))
            results.append(await sender.check())
            smtp_server.start()
            results.append(await sender.check())
            results.append(await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=MESSAGE))
            return results

    sent, while_down, check_down, check_up, sent_again = asyncio.run(run())

    assert sent.outcome is Outcome.SENT
    # The pooled connection the server closed is noticed, not used and failed on.
    assert while_down.outcome is Outcome.STALLED
    assert "connection refused" in while_down.reply
    assert check_down.outcome is Outcome.STALLED
    assert check_up.outcome is Outcome.SENT
    assert sent_again.outcome is Outcome.SENT
    assert len(smtp_server.messages) == 2


def test_a_server_restarted_between_sends_costs_no_message(
    smtp_server: FaultySmtpServer,
) -> None:
    async def run() -> list[SendResult]:
        async with Sender(smtp_server.smtp_config(timeout=SHORT)) as sender:
            first = await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=MESSAGE)
            smtp_server.stop()
            smtp_server.start()
            second = await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=MESSAGE)
            return [first, second]

    results = asyncio.run(run())

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert smtp_server.connections_opened == 1  # counted since the restart


# -- login and TLS -------------------------------------------------------------------------


def test_a_good_login_sends(smtp_server: FaultySmtpServer) -> None:
    smtp_server.require_auth("shop", "s3cret")

    result = send_one(smtp_server.smtp_config(username="shop", password="s3cret", insecure_auth=True))

    assert result.outcome is Outcome.SENT
    assert len(smtp_server.messages) == 1


def test_a_refused_login_stalls_and_says_why(smtp_server: FaultySmtpServer) -> None:
    smtp_server.require_auth("shop", "s3cret")

    result = send_one(smtp_server.smtp_config(username="shop", password="wrong-pass", insecure_auth=True))

    assert result.outcome is Outcome.STALLED
    assert result.code == 535
    assert result.reply == (
        f"AUTH with 127.0.0.1:{smtp_server.port} failed (535 5.7.8 Authentication credentials invalid)"
    )
    assert smtp_server.messages == []


def test_a_missing_login_stalls_rather_than_failing_each_message(
    smtp_server: FaultySmtpServer,
) -> None:
    smtp_server.require_auth("shop", "s3cret")

    result = send_one(smtp_server.smtp_config())

    assert result.outcome is Outcome.STALLED
    assert result.code == 530


def test_starttls_asked_for_but_not_offered_stalls(smtp_server: FaultySmtpServer) -> None:
    result = send_one(smtp_server.smtp_config(starttls=True))

    assert result.outcome is Outcome.STALLED
    assert "STARTTLS" in result.reply
    assert smtp_server.messages == []


def test_starttls_offered_but_refused_by_the_url_is_not_used(tls_context: ssl.SSLContext) -> None:
    # The certificate is self-signed: had the client upgraded, it would fail. Upgrading
    # whenever STARTTLS is offered (the default) is tested in test_tls.py.
    with FaultySmtpServer(tls_context=tls_context) as server:
        result = send_one(server.smtp_config(starttls=False))

    assert result.outcome is Outcome.SENT


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server-side TLS context with a fresh self-signed certificate."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "smtps"])
def test_tls_with_login_sends(tls_context: ssl.SSLContext, implicit_tls: bool) -> None:
    with FaultySmtpServer(tls_context=tls_context, implicit_tls=implicit_tls) as server:
        server.require_auth("shop", "s3cret")
        scheme = "smtps" if implicit_tls else "smtp"
        query = "verify=false" if implicit_tls else "starttls=true&verify=false"
        url = f"{scheme}://shop:s3cret@127.0.0.1:{server.port}?{query}"

        result = send_one(SmtpConfig.from_url(url, timeout=SHORT))

        assert result.outcome is Outcome.SENT
        assert len(server.messages) == 1


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "smtps"])
def test_an_untrusted_certificate_stalls(tls_context: ssl.SSLContext, implicit_tls: bool) -> None:
    with FaultySmtpServer(tls_context=tls_context, implicit_tls=implicit_tls) as server:
        config = server.smtp_config(implicit_tls=implicit_tls, starttls=not implicit_tls, timeout=SHORT)

        result = send_one(config)

        assert result.outcome is Outcome.STALLED
        assert "certificate verify failed" in result.reply
        assert server.messages == []


# -- exactly what aiosmtplib's sendmail would send ------------------------------------------


class _Recorder(asyncio.Protocol):
    """A bare SMTP server that accepts every message and keeps every byte it is sent."""

    def __init__(self, log: list[bytes], extensions: bytes) -> None:
        self.log, self.extensions = log, extensions
        self.buffer, self.in_data = b"", False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 recorder\r\n")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.log.append(data)
        self.buffer += data
        while True:
            if self.in_data:
                end = 3 if self.buffer.startswith(b".\r\n") else self.buffer.find(b"\r\n.\r\n") + 5
                if end == 4:
                    return
                self.buffer, self.in_data = self.buffer[end:], False
                self.transport.write(b"250 2.0.0 queued\r\n")
                continue
            line, found, rest = self.buffer.partition(b"\r\n")
            if not found:
                return
            self.buffer = rest
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.transport.write(b"250-recorder\r\n" + self.extensions + b"250 HELP\r\n")
            elif verb == b"DATA":
                self.in_data = True
                self.transport.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                self.transport.write(b"250 OK\r\n")


class _Withholding(asyncio.Protocol):
    """Offers PIPELINING and answers MAIL, RCPT and DATA only once all three have come, in
    one write; answers the message in two writes, a multi-line reply cut in the middle. A
    client that waited for each reply before the next command would wait forever."""

    def __init__(self, writes: list[int]) -> None:
        self.buffer = b""
        self.in_data = False
        self.writes = writes  # how many commands had arrived each time the server answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 withholding ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.in_data:
            if self.buffer.endswith(b"\r\n.\r\n"):
                self.buffer, self.in_data = b"", False
                self.transport.write(b"250-2.0.0 queued as\r\n")
                asyncio.get_running_loop().call_later(0.05, self.transport.write, b"250 2.0.0 A1B2\r\n")
            return
        if self.buffer.startswith(b"EHLO"):
            self.buffer = b""
            self.transport.write(b"250-withholding\r\n250-PIPELINING\r\n250 HELP\r\n")
        elif self.buffer.startswith(b"QUIT"):
            self.transport.write(b"221 bye\r\n")
            self.transport.close()
        elif self.buffer.endswith(b"DATA\r\n"):
            self.writes.append(self.buffer.count(b"\r\n"))
            self.buffer, self.in_data = b"", True
            self.transport.write(b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 go ahead\r\n")


def test_with_pipelining_mail_rcpt_and_data_go_together_and_every_reply_is_read() -> None:
    writes: list[int] = []

    async def run() -> list[SendResult]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Withholding(writes), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = SmtpConfig(host="127.0.0.1", port=port, connections=1, timeout=5)
        async with Sender(config) as sender:
            results = [await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=MESSAGE) for _ in range(3)]
        server.close()
        await server.wait_closed()
        return results

    results = asyncio.run(run())

    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert results[0].reply == "2.0.0 queued as 2.0.0 A1B2"  # both lines of the reply, in order
    assert writes == [3, 3, 3], "MAIL, RCPT and DATA arrived together for every message"


WIRE_MESSAGES = [
    MESSAGE,
    b"bare\nline feeds\rand carriage returns\r\n",
    b".a leading dot\r\n.\r\n..two\nand.\n.after a bare LF",
    b"no line break at the end",
    b"",
]
WIRE_ADDRESSES = [(SHOP, CUSTOMER), (SHOP, "group:lin@example.test"), ("店@花.test", "林美玲@例子.test")]


def _transcript(extensions: bytes, send: Callable[[int], object]) -> bytes:
    async def run() -> bytes:
        log: list[bytes] = []
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Recorder(log, extensions), "127.0.0.1", 0)
        await send(server.sockets[0].getsockname()[1])  # type: ignore[misc]
        server.close()
        await server.wait_closed()
        return b"".join(log)

    return asyncio.run(run())


@pytest.mark.parametrize(
    "extensions", [b"250-SIZE 10485760\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n", b""], ids=["esmtp", "bare"]
)
def test_the_bytes_on_the_wire_are_what_sendmail_sends(extensions: bytes) -> None:
    """MAIL (with SIZE and SMTPUTF8 as offered), RCPT, DATA and the dot-stuffed message,
    byte for byte, and the same outcomes, as SMTP.sendmail for the same messages."""
    ours: list[SendResult] = []

    async def with_sender(port: int) -> None:
        async with Sender(SmtpConfig(host="127.0.0.1", port=port, connections=1)) as sender:
            for mail_from, rcpt_to in WIRE_ADDRESSES:
                for message in WIRE_MESSAGES:
                    ours.append(await sender.send(mail_from=mail_from, rcpt_to=rcpt_to, message=message))

    async def with_sendmail(port: int) -> None:
        client = None
        for mail_from, rcpt_to in WIRE_ADDRESSES:
            options = [] if (mail_from + rcpt_to).isascii() else ["SMTPUTF8"]
            for message in WIRE_MESSAGES:
                if client is None:
                    client = SMTP(hostname="127.0.0.1", port=port, start_tls=False)
                    await client.connect()
                    await client.ehlo()
                try:
                    await client.sendmail(mail_from, [rcpt_to], message, mail_options=options)
                except SMTPNotSupported:
                    client.close()  # as the pool does after this error: a new connection
                    client = None
        if client is not None:
            await client.quit()

    sent = _transcript(extensions, with_sender)

    assert sent == _transcript(extensions, with_sendmail)
    assert b"MAIL FROM:<orders@flowers.test>" in sent
    assert (b"SIZE=" in sent.upper()) == bool(extensions)
    outcomes = [result.outcome for result in ours]
    utf8 = Outcome.SENT if extensions else Outcome.PERMANENT  # a non-ASCII address needs SMTPUTF8
    assert outcomes == [Outcome.SENT] * 10 + [utf8] * 5


def test_a_message_with_bare_line_feeds_and_leading_dots_arrives_as_given(
    smtp_server: FaultySmtpServer,
) -> None:
    message = b"Subject: dots\n\n.one\n..two\r\n.\r\nlast line without an end"

    async def run() -> SendResult:
        async with Sender(smtp_server.smtp_config()) as sender:
            return await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=message)

    assert asyncio.run(run()).outcome is Outcome.SENT
    [received] = smtp_server.messages
    assert received.data == b"Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nlast line without an end\r\n"


@given(message=st.binary(max_size=200) | st.lists(st.sampled_from([b"\r", b"\n", b".", b"a"])).map(b"".join))
def test_the_data_payload_is_aiosmtplibs(message: bytes) -> None:
    normalized = normalize_message_line_endings(message)

    assert data_payload(message) == (PERIOD_REGEX.sub(b"..", normalized) + b".\r\n", len(normalized))


mailbox_text = st.text(st.sampled_from("ab.-+_'!#$%&*/=?^`{|}~:林é0"), min_size=1, max_size=8)


@given(local=mailbox_text, domain=mailbox_text)
def test_the_envelope_address_is_the_one_aiosmtplib_would_send(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    if MAILBOX.fullmatch(address):
        assert envelope_address(address) == parse_address(address)


# -- the classification table --------------------------------------------------------------

TABLE: list[tuple[BaseException, Outcome, int | None]] = [
    # One refused recipient, however aiosmtplib wraps it: by its code.
    (SMTPRecipientsRefused([SMTPRecipientRefused(550, "No such user", CUSTOMER)]),
     Outcome.PERMANENT, 550),
    (SMTPRecipientsRefused([SMTPRecipientRefused(452, "Mailbox full", CUSTOMER)]),
     Outcome.TRANSIENT, 452),
    (SMTPRecipientsRefused([]), Outcome.PERMANENT, None),
    (SMTPRecipientRefused(421, "Closing", CUSTOMER), Outcome.TRANSIENT, 421),
    (SMTPRecipientRefused(451, "Later", CUSTOMER), Outcome.TRANSIENT, 451),
    (SMTPRecipientRefused(553, "Not allowed", CUSTOMER), Outcome.PERMANENT, 553),
    (SMTPSenderRefused(553, "Sender rejected", SHOP), Outcome.PERMANENT, 553),
    (SMTPSenderRefused(530, "Authentication required", SHOP), Outcome.STALLED, 530),
    (SMTPDataError(554, "Rejected as spam"), Outcome.PERMANENT, 554),
    (SMTPDataError(451, "Later"), Outcome.TRANSIENT, 451),
    (SMTPResponseException(-1, "Malformed SMTP response line"), Outcome.TRANSIENT, -1),
    # Subclasses of SMTPResponseException that must not be judged by their code.
    (SMTPAuthenticationError(535, "Credentials invalid"), Outcome.STALLED, 535),
    (SMTPAuthenticationError(454, "Temporary auth failure"), Outcome.STALLED, 454),
    (SMTPConnectResponseError(421, "Too many connections"), Outcome.STALLED, 421),
    (SMTPConnectResponseError(554, "No SMTP service here"), Outcome.STALLED, 554),
    (SMTPHeloError(501, "Bad HELO"), Outcome.STALLED, 501),
    # A connect timeout is a timeout too, but the server is unreachable: STALLED.
    (SMTPConnectTimeoutError("Timed out connecting"), Outcome.STALLED, None),
    (SMTPConnectError("Error connecting"), Outcome.STALLED, None),
    (SMTPReadTimeoutError("Timed out waiting for server response"), Outcome.TRANSIENT, None),
    (SMTPTimeoutError("Timed out while upgrading transport"), Outcome.TRANSIENT, None),
    (SMTPServerDisconnected("Connection lost"), Outcome.TRANSIENT, None),
    (SMTPNotSupported("SMTPUTF8 is not supported by this server"), Outcome.PERMANENT, None),
    (SMTPException("SMTP STARTTLS extension not supported by server."), Outcome.STALLED, None),
    (SMTPException("The SMTP AUTH extension is not supported"), Outcome.STALLED, None),
    # Plain Python errors; several are subclasses of one another.
    (ssl.SSLCertVerificationError("certificate verify failed"), Outcome.STALLED, None),
    (ssl.SSLError("wrong version number"), Outcome.STALLED, None),
    (TimeoutError(), Outcome.TRANSIENT, None),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), Outcome.STALLED, None),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), Outcome.TRANSIENT, None),
    (BrokenPipeError(errno.EPIPE, "Broken pipe"), Outcome.TRANSIENT, None),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), Outcome.STALLED, None),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), Outcome.STALLED, None),
    (ValueError("Address contains a prohibited control character"), Outcome.PERMANENT, None),
    (RuntimeError("something unforeseen"), Outcome.TRANSIENT, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("exc", "outcome", "code"), TABLE, ids=[f"{type(e).__name__}-{o}" for e, o, _ in TABLE]
)
def test_classify(exc: BaseException, outcome: Outcome, code: int | None) -> None:
    result = classify(exc)

    assert (result.outcome, result.code) == (outcome, code)
    assert result.reply


def test_classify_keeps_the_servers_text_on_one_line() -> None:
    result = classify(SMTPDataError(554, "5.7.1 Rejected\n5.7.1 see https://help.test"))

    assert result.reply == "5.7.1 Rejected 5.7.1 see https://help.test"


def test_any_failure_while_connecting_stalls_with_the_cause_code() -> None:
    error = ServerUnusable(step="NOOP", address="mail.example:25")
    error.__cause__ = SMTPResponseException(421, "4.3.2 Shutting down")

    result = classify(error)

    assert result == SendResult(
        outcome=Outcome.STALLED,
        code=421,
        reply="NOOP with mail.example:25 failed (421 4.3.2 Shutting down)",
    )


def test_a_refused_connection_is_said_in_plain_words() -> None:
    cause = SMTPConnectError("Error connecting to mail.example on port 25: [Errno 111]")
    cause.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    error = ServerUnusable(step="connect", address="mail.example:25")
    error.__cause__ = cause

    assert classify(error).reply == "connection refused by mail.example:25"


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://localhost:25", SmtpConfig(host="localhost", port=25)),
        ("smtp://mail.example", SmtpConfig(host="mail.example", port=25)),
        ("smtp://mail.example:2525/", SmtpConfig(host="mail.example", port=2525)),
        (
            "smtp://user:pass@mail.example:587?starttls=true",
            SmtpConfig(host="mail.example", port=587, username="user", password="pass", starttls=True),
        ),
        ("smtps://mail.example:465", SmtpConfig(host="mail.example", port=465, implicit_tls=True)),
        ("smtps://mail.example", SmtpConfig(host="mail.example", port=465, implicit_tls=True)),
        (
            "SMTP://relay.test?verify=false&timeout=10",
            SmtpConfig(host="relay.test", port=25, validate_certs=False, timeout=10.0),
        ),
        ("smtp://relay.test?timeout=2m", SmtpConfig(host="relay.test", port=25, timeout=120.0)),
        (
            "smtp://shop%40flowers.test:p%40ss%3Aw%2Frd@relay.test:587?starttls=yes",
            SmtpConfig(
                host="relay.test",
                port=587,
                username="shop@flowers.test",
                password="p@ss:w/rd",
                starttls=True,
            ),
        ),
        ("smtp://[::1]:2525", SmtpConfig(host="::1", port=2525)),
    ],
)
def test_from_url(url: str, expected: SmtpConfig) -> None:
    assert SmtpConfig.from_url(url) == expected


def test_from_url_takes_pool_size_and_timeout_from_settings() -> None:
    config = SmtpConfig.from_url("smtp://relay.test", connections=8, timeout=5.0)

    assert (config.connections, config.timeout) == (8, 5.0)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://mail.example", "must start with smtp:// or smtps://, not 'http'"),
        ("mail.example:25", "must start with smtp:// or smtps://"),
        ("smtp://mail.example?tls=yes", "option 'tls' is not known"),
        ("smtp://mail.example?starttls=maybe", "must be true or false"),
        ("smtp://mail.example?starttls=true&starttls=false", "given twice"),
        ("smtp://mail.example?timeout=soon", "timeout='soon' is not a number of seconds"),
        ("smtp://mail.example?timeout=0", "more than 0 seconds"),
        ("smtps://mail.example?starttls=true", "starttls=true does not apply"),
        ("smtp://mail.example:99999", "port that is not a number"),
        ("smtp://mail.example:0", "not between 1 and 65535"),
        ("smtp://", "names no host"),
        ("smtp://mail.example/inbox", "must not have a path"),
    ],
)
def test_from_url_refuses_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("?", r"\?")):
        SmtpConfig.from_url(url)


def test_the_password_is_never_shown() -> None:
    config = SmtpConfig.from_url("smtp://shop:hunter2-secret@relay.test:587?starttls=true")

    for shown in (repr(config), str(config), f"{config}", config.redacted_url()):
        assert "hunter2-secret" not in shown
    assert "password=<secret>" in repr(config)
    assert config.redacted_url() == "smtp://shop:***@relay.test:587?starttls=true"


def test_the_redacted_url_reads_back_to_the_same_server() -> None:
    config = SmtpConfig.from_url("smtps://a%40b:pw@[::1]:2465?verify=false&timeout=7", timeout=9)

    again = SmtpConfig.from_url(config.redacted_url())

    assert config.redacted_url() == "smtps://a%40b:***@[::1]:2465?verify=false&timeout=7"
    assert again.password == "***"
    assert again == SmtpConfig(
        host="::1", port=2465, username="a@b", password="***", implicit_tls=True,
        validate_certs=False, timeout=7.0,
    )  # fmt: skip


def test_a_config_without_password_shows_none() -> None:
    config = SmtpConfig(host="localhost", port=25)

    assert "password=None" in repr(config)
    assert config.redacted_url() == "smtp://localhost:25"


# -- back-off ------------------------------------------------------------------------------


def test_backoff_doubles_within_the_jitter() -> None:
    rng = random.Random(7)

    waits = [backoff(n, first=60, rng=rng) for n in range(1, 7)]

    for n, wait in enumerate(waits, start=1):
        assert 0.8 * 60 * 2 ** (n - 1) <= wait <= 1.2 * 60 * 2 ** (n - 1)
    assert waits == sorted(waits)
    assert len(set(waits)) == len(waits)


def test_backoff_is_jittered_and_repeatable_with_a_seed() -> None:
    first = [backoff(3, first=60, rng=random.Random(seed)) for seed in range(20)]
    again = [backoff(3, first=60, rng=random.Random(seed)) for seed in range(20)]

    assert first == again
    assert len(set(first)) > 10  # not all the same wait


@given(attempt=st.integers(1, 5000), seed=st.integers(0, 2**32))
def test_backoff_never_passes_the_cap(attempt: int, seed: int) -> None:
    wait = backoff(attempt, first=60, cap=3600, rng=random.Random(seed))

    assert 0.8 * min(3600, 60 * 2 ** min(attempt - 1, 10)) <= wait <= 3600


@given(attempt=st.integers(1, 12), seed_a=st.integers(0, 2**32), seed_b=st.integers(0, 2**32))
def test_backoff_grows_whatever_the_jitter(attempt: int, seed_a: int, seed_b: int) -> None:
    now = backoff(attempt, first=1, cap=1e9, rng=random.Random(seed_a))
    later = backoff(attempt + 1, first=1, cap=1e9, rng=random.Random(seed_b))

    assert later > now


@pytest.mark.parametrize(("attempt", "first"), [(0, 60.0), (-3, 60.0), (1, -1.0)])
def test_backoff_refuses_nonsense(attempt: int, first: float) -> None:
    with pytest.raises(ValueError):
        backoff(attempt, first=first)


def test_backoff_of_nothing_is_nothing() -> None:
    assert backoff(5, first=0) == 0.0


def test_a_first_wait_beyond_the_cap_is_capped() -> None:
    waits = [backoff(1, first=7200, cap=3600, rng=random.Random(seed)) for seed in range(20)]

    assert all(0.8 * 3600 <= wait <= 3600 for wait in waits)


# -- the mail catcher ----------------------------------------------------------------------


def test_the_catcher_keeps_and_saves_every_message(tmp_path: Path) -> None:
    encoded = b"Subject: =?utf-8?q?Ihre_Blumen_wurden_zugestellt_=E2=80=94_11:02?="
    message = MESSAGE.replace(b"Subject: Your flowers were delivered", encoded)

    with MailCatcher(out_dir=tmp_path / "outbox") as catcher:
        assert catcher.port != 0
        assert catcher.url == f"smtp://127.0.0.1:{catcher.port}"

        async def run() -> list[SendResult]:
            async with Sender(SmtpConfig.from_url(catcher.url)) as sender:
                return [
                    await sender.send(mail_from=SHOP, rcpt_to=CUSTOMER, message=body)
                    for body in (message, MESSAGE)
                ]

        results = asyncio.run(run())

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    first, second = catcher.messages
    assert first.subject == "Ihre Blumen wurden zugestellt — 11:02"
    assert first.message_id == "<order-42.delivered@flowers.test>"
    assert (first.mail_from, first.rcpt_tos) == (SHOP, (CUSTOMER,))
    assert second.data == MESSAGE
    files = sorted((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == [
        "0001-ihre-blumen-wurden-zugestellt-11-02.eml",
        "0002-your-flowers-were-delivered.eml",
    ]
    assert files[1].read_bytes() == MESSAGE


def test_the_catcher_without_a_folder_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    with MailCatcher() as catcher:
        result = send_one(SmtpConfig.from_url(catcher.url))

    assert result.outcome is Outcome.SENT
    assert len(catcher.messages) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("number", "subject", "name"),
    [
        (1, "Your order has shipped!", "0001-your-order-has-shipped.eml"),
        (12, "../../etc/passwd", "0012-etc-passwd.eml"),
        (3, "", "0003-no-subject.eml"),
        (4, "您的订单已发货", "0004-您的订单已发货.eml"),
        (5, "x" * 200, "0005-" + "x" * 60 + ".eml"),
    ],
)
def test_eml_names_are_safe(number: int, subject: str, name: str) -> None:
    assert eml_name(number, subject) == name
