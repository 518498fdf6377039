"""TLS by default, against a real aiosmtpd server with a test CA's certificate (trustme).

STARTTLS is used whenever the server offers it; a password never goes over a connection
that is not encrypted unless the URL says `insecure_auth=true`, and the refusal says what
to do; `cafile=` trusts a private CA; the EHLO name is a setting, warned about when it is
not fully qualified.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
import trustme
from freezegun import freeze_time

from notifier.config.settings import Secret, Settings, load_settings
from notifier.core.values import Outcome, SendResult
from notifier.db.store import STATE
from notifier.errors import ConfigError
from notifier.run.daemon import EXIT_SMTP_UNAVAILABLE
from notifier.run.pipeline import Pipeline
from notifier.smtp.pool import Sender
from notifier.smtp.url import SmtpConfig
from tests.journey import notifications, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

TIMEOUT = 5.0
MESSAGE = b"From: care@flowers.test\r\nTo: lin@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def cafile(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """The server's side: a certificate for 127.0.0.1 issued by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def tls_server(server_context: ssl.SSLContext) -> Iterator[FaultySmtpServer]:
    """A server that offers STARTTLS and wants a login."""
    with FaultySmtpServer(tls_context=server_context) as server:
        server.require_auth("shop", "s3cret")
        yield server


def send(url: str, **overrides: object) -> SendResult:
    config = replace(SmtpConfig.from_url(url, timeout=TIMEOUT), **overrides)

    async def go() -> SendResult:
        async with Sender(config) as sender:
            return await sender.send(
                mail_from="care@flowers.test", rcpt_to="lin@example.com", message=MESSAGE
            )

    return asyncio.run(go())


def address(server: FaultySmtpServer) -> str:
    return f"127.0.0.1:{server.port}"


# -- STARTTLS whenever it is offered --------------------------------------------------------


def test_starttls_is_used_when_offered_though_the_url_does_not_ask(
    tls_server: FaultySmtpServer, cafile: str
) -> None:
    result = send(f"smtp://shop:s3cret@{address(tls_server)}?cafile={cafile}")

    assert result.outcome is Outcome.SENT, result
    assert tls_server.logins == [("shop", True)]  # the password went over TLS
    assert [m.tls for m in tls_server.messages] == [True]


def test_starttls_without_a_login_is_used_too_and_a_server_without_it_still_works(
    server_context: ssl.SSLContext, cafile: str, smtp_server: FaultySmtpServer
) -> None:
    with FaultySmtpServer(tls_context=server_context) as server:
        result = send(f"smtp://{address(server)}?cafile={cafile}")

        assert result.outcome is Outcome.SENT, result
        assert [m.tls for m in server.messages] == [True]
    assert send(smtp_server.url).outcome is Outcome.SENT  # no STARTTLS offered: plain, as before
    assert [m.tls for m in smtp_server.messages] == [False]


# -- no password in clear ---------------------------------------------------------------------


def test_a_password_is_not_sent_over_plain_text_and_the_refusal_says_what_to_do(
    smtp_server: FaultySmtpServer,
) -> None:
    smtp_server.require_auth("shop", "s3cret")

    result = send(f"smtp://shop:s3cret@{address(smtp_server)}")

    assert result.outcome is Outcome.STALLED
    assert result.reply == (
        f"not logging in to {address(smtp_server)} as 'shop': the connection is not encrypted "
        "(the server does not offer STARTTLS), so the password would travel in clear. Use a "
        "server that offers STARTTLS, or smtps://; if the network to it is private, add "
        "?insecure_auth=true to NOTIFIER_SMTP_URL"
    )
    assert smtp_server.logins == [] and smtp_server.messages == []


def test_insecure_auth_true_sends_the_password_over_plain_text(smtp_server: FaultySmtpServer) -> None:
    smtp_server.require_auth("shop", "s3cret")

    result = send(f"smtp://shop:s3cret@{address(smtp_server)}?insecure_auth=true")

    assert result.outcome is Outcome.SENT
    assert smtp_server.logins == [("shop", False)]


def test_starttls_false_with_a_password_is_refused_too(tls_server: FaultySmtpServer) -> None:
    result = send(f"smtp://shop:s3cret@{address(tls_server)}?starttls=false")

    assert result.outcome is Outcome.STALLED
    assert "(the URL says starttls=false)" in result.reply
    assert tls_server.logins == []


def test_run_once_refuses_in_plain_words_in_the_log_and_status(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp_server.require_auth("shop", "s3cret")
    customer = shop.customer(email="lin@example.com", timezone="UTC")
    order = shop.order(customer, items=[(shop.product(price="30.00"), 1)])
    shop.event("order", order, "placed", "2026-02-10 09:00")
    login = replace(settings, smtp_url=Secret(f"smtp://shop:s3cret@{address(smtp_server)}"))

    with freeze_time(ts("2026-02-10 09:01"), real_asyncio=True):
        exit_code, _ = run(login)

    assert exit_code == EXIT_SMTP_UNAVAILABLE
    [row] = notifications(engine, rule="order-confirmation")
    assert row["state"] in ("queued", "sending") and row["attempts"] == 0  # held, not failed
    with engine.connect() as conn:
        state = {key: value for key, value in conn.execute(sa.select(STATE.c.key, STATE.c.value))}
    assert "insecure_auth=true" in state["smtp.last_error"]
    logged = [r for r in caplog.records if "SMTP server unusable" in r.getMessage()]
    assert logged and "password would travel in clear" in logged[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.WARNING)
    assert smtp_server.logins == []


# -- a private CA -----------------------------------------------------------------------------


def test_a_certificate_of_a_private_ca_stalls_and_names_cafile(tls_server: FaultySmtpServer) -> None:
    result = send(f"smtp://shop:s3cret@{address(tls_server)}")

    assert result.outcome is Outcome.STALLED
    assert "certificate verify failed" in result.reply and "?cafile=PATH" in result.reply
    assert tls_server.logins == []


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "smtps"])
def test_cafile_trusts_the_private_ca(
    server_context: ssl.SSLContext, cafile: str, implicit_tls: bool
) -> None:
    with FaultySmtpServer(tls_context=server_context, implicit_tls=implicit_tls) as server:
        scheme = "smtps" if implicit_tls else "smtp"

        result = send(f"{scheme}://{address(server)}?cafile={cafile}")

        assert result.outcome is Outcome.SENT, result
        assert [m.tls for m in server.messages] == [True]


def test_the_url_options_are_read_checked_and_shown(cafile: str, tmp_path: Path) -> None:
    config = SmtpConfig.from_url(f"smtp://shop:pw@relay.test:587?cafile={cafile}&insecure_auth=yes")
    assert (config.cafile, config.insecure_auth, config.starttls) == (cafile, True, None)
    assert config.redacted_url() == f"smtp://shop:***@relay.test:587?cafile={cafile}&insecure_auth=true"
    assert SmtpConfig.from_url("smtp://relay.test?starttls=false").starttls is False
    with pytest.raises(ConfigError, match=r"cafile='.*missing\.pem': no such file"):
        SmtpConfig.from_url(f"smtp://relay.test?cafile={tmp_path / 'missing.pem'}")
    with pytest.raises(ConfigError, match="insecure_auth='maybe' must be true or false"):
        SmtpConfig.from_url("smtp://relay.test?insecure_auth=maybe")


# -- the EHLO name ----------------------------------------------------------------------------


def test_the_configured_ehlo_name_is_what_the_server_hears(
    server_context: ssl.SSLContext, cafile: str
) -> None:
    with FaultySmtpServer(tls_context=server_context) as server:
        url = f"smtp://{address(server)}?cafile={cafile}"

        result = send(url, ehlo_name="mail.flowers.test")

        assert result.outcome is Outcome.SENT, result
        assert server.ehlo_names == ["mail.flowers.test", "mail.flowers.test"]  # before and after STARTTLS


def test_the_ehlo_name_is_a_setting_and_defaults_to_the_machine_name(smtp_server: FaultySmtpServer) -> None:
    settings = load_settings(environ={"NOTIFIER_SMTP_EHLO_NAME": "mail.flowers.test"})
    assert settings.smtp_ehlo_name == "mail.flowers.test"
    assert SmtpConfig.from_url(smtp_server.url).ehlo_name == socket.getfqdn()
    with pytest.raises(ConfigError, match="is not a host name"):
        SmtpConfig.from_url(smtp_server.url, ehlo_name="mail flowers")


@pytest.mark.parametrize(
    ("name", "warned"), [("localhost", True), ("mail.flowers.test", False)], ids=["bare", "qualified"]
)
def test_an_ehlo_name_that_is_not_fully_qualified_is_warned_about_at_start(
    settings: Settings, caplog: pytest.LogCaptureFixture, name: str, warned: bool
) -> None:
    with caplog.at_level(logging.WARNING):
        Pipeline(replace(settings, smtp_ehlo_name=name)).engine.dispose()

    warnings = [r.getMessage() for r in caplog.records if "EHLO name" in r.getMessage()]
    assert bool(warnings) is warned, warnings
    if warned:
        assert "'localhost' is not a fully qualified domain name" in warnings[0]
        assert "NOTIFIER_SMTP_EHLO_NAME" in warnings[0]
