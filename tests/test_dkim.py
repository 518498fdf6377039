"""DKIM signing: every shipped message kind, as a real SMTP server received it, verifies
against the public key; a bad key stops notifier at start with a sentence."""

from __future__ import annotations

import asyncio
import base64
import email
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path

import dkim
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from freezegun import freeze_time
from starlette.applications import Starlette
from typer.testing import CliRunner

from notifier.cli import app
from notifier.compose import links
from notifier.compose.handover import Handover
from notifier.compose.mail import Envelope, build_message, make_message_id
from notifier.compose.samples import sample_context, trigger_of
from notifier.compose.signing import load_signer
from notifier.config.settings import Settings
from notifier.config.validate import load_checked
from notifier.core.context import brand_of
from notifier.core.locale import LOCALES, message_locale
from notifier.core.rules import Category
from notifier.core.timing import utcnow
from notifier.db.engine import make_engine
from notifier.errors import ConfigError
from notifier.smtp.pool import Sender
from notifier.tools.web import create_app
from tests.journey import parse, run
from tests.shop import Shop, ts
from tests.smtp_server import FaultySmtpServer

SHIPPED = Path(__file__).resolve().parent.parent
SELECTOR, DOMAIN = "mail2026", "blossom.example"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A 2048-bit RSA key file, and the DNS TXT record that publishes its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _verified(data: bytes, record: bytes) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else b""

    return bool(dkim.verify(data, dnsfunc=dns))


def _signed_headers(data: bytes) -> list[str]:
    value = email.message_from_bytes(data, policy=default_policy)["DKIM-Signature"]
    tags = dict(part.strip().split("=", 1) for part in str(value).split(";") if "=" in part)
    return [name.strip() for name in tags["h"].replace(" ", "").split(":")]


def _every_shipped_message() -> list[tuple[str, str, bytes]]:
    """(template, locale, message) for every shipped template in every locale, built as the
    daemon builds them: the rule's recipient, and List-Unsubscribe on marketing mail."""
    rules, renderer = load_checked(SHIPPED / "rules.yaml", SHIPPED / "templates")
    brand = brand_of(rules)
    found = []
    for template in renderer.template_names():
        rule = next(r for r in rules.rules if r.template == template)
        for locale in LOCALES:
            context = {**sample_context(trigger_of(template, rules), locale), "brand": brand}
            chosen = message_locale(renderer.locales_of(template), locale, rule.locale)
            rendered = renderer.render(template, chosen, context)
            to = rule.to or context["customer"]["email"]
            headers: tuple[tuple[str, str], ...] = ()
            if rule.category is Category.MARKETING:
                url = links.unsubscribe_url("https://shop.example", "secret", to)
                headers = (
                    ("List-Unsubscribe", f"<{url}>"),
                    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                )
            envelope = Envelope(
                from_header=rules.defaults.from_header,
                to_name=context["customer"]["name"],
                to_address=to,
                message_id=make_message_id(f"{template}:{locale}", DOMAIN, "0123456789abcdef"),
                date=utcnow() - timedelta(hours=3),
                extra_headers=headers,
            )
            found.append((template, locale, build_message(rendered, envelope)))
    return found


def test_every_shipped_message_kind_verifies_as_the_server_received_it(
    key_pair: tuple[Path, bytes], smtp_server: FaultySmtpServer
) -> None:
    signer = load_signer(key_pair[0], SELECTOR, DOMAIN)
    handover = Handover(utcnow, signer)
    messages = _every_shipped_message()

    async def send_all() -> None:
        async with Sender(smtp_server.smtp_config()) as sender:
            for _template, _locale, message in messages:
                result = await sender.send(
                    mail_from="care@blossom.example", rcpt_to="x@example.com", message=handover(message)
                )
                assert result.code == 250, result.reply

    asyncio.run(send_all())
    received = smtp_server.messages
    assert len(received) == len(messages) >= 14 * 3
    kinds = set()
    for (template, locale, _), got in zip(messages, received, strict=True):
        assert _verified(got.data, key_pair[1]), f"{template} ({locale}): the signature does not verify"
        signed = _signed_headers(got.data)
        assert {"from", "to", "subject", "date", "message-id", "content-type", "auto-submitted"} <= set(
            signed
        )
        # RFC 8058: one-click unsubscribe only counts when both headers are signed.
        assert {"list-unsubscribe", "list-unsubscribe-post"} <= set(signed)
        kinds.add(template)
    assert {"case_not_solved_team", "price_change_warning", "order_confirmation"} <= kinds
    # A changed byte breaks it: the check is real.
    tampered = received[0].data.replace(b"Subject: ", b"Subject: Re: ", 1)
    assert not _verified(tampered, key_pair[1])


def test_the_daemon_signs_each_attempt_after_its_date(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer, key_pair: tuple[Path, bytes]
) -> None:
    signing = replace(settings, dkim_key_file=key_pair[0], dkim_selector=SELECTOR, dkim_domain=DOMAIN)
    customer = shop.customer(name="王芳", email="wang@example.com", timezone="Asia/Taipei")
    order = shop.order(customer)
    shop.event("order", order, "placed", "2026-02-10 09:00")
    smtp_server.fail(451, on="DATA", times=1)
    with freeze_time(ts("2026-02-10 09:01"), real_asyncio=True):
        assert run(signing)[1].retrying == 1
    with freeze_time(ts("2026-02-10 15:01"), real_asyncio=True):
        assert run(signing)[1].sent == 1

    [got] = smtp_server.messages
    assert _verified(got.data, key_pair[1])
    message = parse(got)
    assert message["Date"].datetime == ts("2026-02-10 15:01"), "signed with the Date of the attempt"
    assert f"d={DOMAIN}" in str(message["DKIM-Signature"]).replace(" ", "")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            {"dkim_key_file": Path("/nonexistent/dkim.pem")},
            "NOTIFIER_DKIM_KEY_FILE: cannot read /nonexistent/dkim.pem",
        ),
        ({"dkim_key_file": "not-a-key"}, "is not an RSA private key in PEM form"),
        ({"dkim_selector": None}, "NOTIFIER_DKIM_SELECTOR is not set"),
        ({"dkim_selector": "two words"}, "NOTIFIER_DKIM_SELECTOR: 'two words' is not a selector"),
        ({"dkim_domain": "localhost!"}, "NOTIFIER_DKIM_DOMAIN: 'localhost!' is not a domain name"),
    ],
)
def test_a_bad_or_missing_key_stops_the_start_with_a_sentence(
    settings: Settings, key_pair: tuple[Path, bytes], tmp_path: Path, change: dict[str, object], says: str
) -> None:
    values: dict[str, object] = {
        "dkim_key_file": key_pair[0],
        "dkim_selector": SELECTOR,
        "dkim_domain": DOMAIN,
    }
    values.update(change)
    if values["dkim_key_file"] == "not-a-key":
        values["dkim_key_file"] = tmp_path / "dkim.pem"
        (tmp_path / "dkim.pem").write_text(
            "-----BEGIN RSA PRIVATE KEY-----\nbm9wZQ==\n-----END RSA PRIVATE KEY-----\n"
        )
    with pytest.raises(ConfigError) as raised:
        load_signer(values["dkim_key_file"], values["dkim_selector"], values["dkim_domain"])  # type: ignore[arg-type]
    assert says in str(raised.value)

    env = {
        "NOTIFIER_DATABASE_URL": settings.database_url.reveal(),
        "NOTIFIER_SMTP_URL": settings.smtp_url.reveal(),
    }
    env.update(
        {f"NOTIFIER_{name.upper()}": str(value) for name, value in values.items() if value is not None}
    )
    result = CliRunner().invoke(
        app,
        ["--rules", str(settings.rules), "--templates", str(settings.templates), "run", "--once"],
        env=env,
    )
    assert result.exit_code == 1, result.output
    assert "notifier cannot start" in result.output and says in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_test_send_from_the_preview_is_signed_like_the_daemons(
    settings: Settings,
    sqlite_url: str,
    smtp_server: FaultySmtpServer,
    key_pair: tuple[Path, bytes],
    serve: Callable[[Starlette], str],
) -> None:
    signing = replace(settings, dkim_key_file=key_pair[0], dkim_selector=SELECTOR, dkim_domain=DOMAIN)
    engine = make_engine(sqlite_url)
    with httpx.Client(base_url=serve(create_app(signing, engine=engine)), timeout=30) as http:
        reply = http.post("/preview/price_change_warning/zh-CN/send", data={"email": "me@blossom.example"})
    engine.dispose()

    assert reply.status_code == 200, reply.text
    [received] = smtp_server.messages
    assert _verified(received.data, key_pair[1])
    assert {"list-unsubscribe", "list-unsubscribe-post"} <= set(_signed_headers(received.data))
