"""Secrets stay secret, and templates stay in their sandbox, end to end.

The SMTP password, the database password and NOTIFIER_SECRET_KEY never appear in logs
(even at -vv), in `notifier status` (text or --json), in error messages, in what is
recorded about an SMTP exchange, or in the emails. A template that reaches for Python
internals fails to render and sends nothing.
(Header injection is covered property by property in test_mail.py, and each sandbox
escape in test_rendering.py.)
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from notifier.config.settings import Secret, Settings
from notifier.db.engine import init_db, make_engine
from notifier.db.store import ATTEMPTS, STATE
from notifier.smtp.url import SmtpConfig
from tests.journey import notifications, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer, free_port

DB_PASSWORD = "DbPa55-SeCrEt"
SMTP_USER = "shop"
SMTP_PASSWORD = "SmtpPa55-SeCrEt"
SECRET_KEY = "KeyPa55-SeCrEt-for-links"
WRONG_PASSWORD = "WrongPa55-SeCrEt"


def _forms(secret: str) -> list[str]:
    """The secret as written, and as it travels in AUTH PLAIN / AUTH LOGIN (base64)."""
    return [
        secret,
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"\0{SMTP_USER}\0{secret}".encode()).decode(),
    ]


ALL_SECRETS = [
    form for secret in (DB_PASSWORD, SMTP_PASSWORD, SECRET_KEY, WRONG_PASSWORD) for form in _forms(secret)
]


def _leaks(text: str) -> list[str]:
    return [form for form in ALL_SECRETS if form in text]


def _notifier(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        env={**environment, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _with_password(url: str) -> str:
    """postgresql://postgres@host/db -> postgresql://postgres:<password>@host/db (trust auth ignores it)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{DB_PASSWORD}@{host}"


def _now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M}"


def test_settings_show_no_secret() -> None:
    settings = replace(
        Settings(),
        database_url=Secret(f"postgresql://postgres:{DB_PASSWORD}@db.internal:5432/shop"),
        smtp_url=Secret(f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@relay.internal:587?starttls=true"),
        secret_key=Secret(SECRET_KEY),
    )
    shown = settings.describe()
    assert _leaks(repr(shown)) == [] and _leaks(repr(settings)) == [] and _leaks(str(settings)) == []
    assert shown["database_url"] == "postgresql://postgres:***@db.internal:5432/shop"
    assert shown["smtp_url"] == "smtp://shop:***@relay.internal:587?starttls=true"
    assert shown["secret_key"] == "<secret>"
    smtp = SmtpConfig.from_url(settings.smtp_url.reveal())
    assert smtp.password == SMTP_PASSWORD  # kept, to log in with ...
    assert _leaks(repr(smtp)) == [] and _leaks(smtp.redacted_url()) == []  # ... and never shown


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    init_db(engine)
    engine.dispose()
    return postgres_url


@pytest.mark.postgres
def test_run_and_status_print_no_secret(
    pg_url: str, project: Path, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    smtp_server.require_auth(SMTP_USER, SMTP_PASSWORD)
    engine = make_engine(pg_url)
    shop = Shop(engine)
    order = shop.order(shop.customer(email="lin@example.com", timezone="UTC"))
    shop.event("order", order, "placed", _now())
    env = {
        "NOTIFIER_DATABASE_URL": _with_password(pg_url),
        "NOTIFIER_SMTP_URL": (
            f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@{smtp_server.host}:{smtp_server.port}?insecure_auth=true"
        ),
        "NOTIFIER_SECRET_KEY": SECRET_KEY,
        "NOTIFIER_RULES": str(project / "rules.yaml"),
        "NOTIFIER_TEMPLATES": str(project / "templates"),
    }
    ran = _notifier(env, "-vv", "run", "--once", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "sent order-confirmation" in ran.stderr, "the log has something to leak"
    assert _leaks(ran.stdout + ran.stderr) == []
    assert len(smtp_server.messages) == 1 and _leaks(smtp_server.messages[0].data.decode()) == []

    for args in (("status",), ("status", "--json"), ("-v", "history", "--order", str(order))):
        shown = _notifier(env, *args, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr[-3000:]
        assert _leaks(shown.stdout + shown.stderr) == [], args
    status = _notifier(env, "status", cwd=tmp_path).stdout
    assert f"postgres:***@{pg_url.split('@', 1)[1]}" in status and f"{SMTP_USER}:***@" in status
    with engine.connect() as conn:
        stored = [str(v) for row in conn.execute(sa.select(STATE)) for v in row]
        stored += [str(v) for row in conn.execute(sa.select(ATTEMPTS)) for v in row]
    engine.dispose()
    assert _leaks(" ".join(stored)) == []


def test_a_refused_login_records_and_logs_no_password(
    sqlite_url: str, project: Path, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    smtp_server.require_auth(SMTP_USER, SMTP_PASSWORD)
    engine = make_engine(sqlite_url)
    shop = Shop(engine)
    order = shop.order(shop.customer(email="lin@example.com", timezone="UTC"))
    shop.event("order", order, "placed", _now())
    env = {
        "NOTIFIER_DATABASE_URL": sqlite_url,
        "NOTIFIER_SMTP_URL": (
            f"smtp://{SMTP_USER}:{WRONG_PASSWORD}@{smtp_server.host}:{smtp_server.port}?insecure_auth=true"
        ),
        "NOTIFIER_SECRET_KEY": SECRET_KEY,
        "NOTIFIER_RULES": str(project / "rules.yaml"),
        "NOTIFIER_TEMPLATES": str(project / "templates"),
    }
    ran = _notifier(env, "-vv", "run", "--once", cwd=tmp_path)
    assert ran.returncode == 75, ran.stderr[-3000:]
    assert "AUTH" in ran.stderr, "the refusal is logged"
    assert _leaks(ran.stdout + ran.stderr) == []
    for args in (("status",), ("status", "--json"), ("history", "--order", str(order))):
        shown = _notifier(env, *args, cwd=tmp_path)
        assert shown.returncode == 0 and _leaks(shown.stdout + shown.stderr) == [], args
    with engine.connect() as conn:
        replies = list(conn.execute(sa.select(ATTEMPTS.c.reply)).scalars())
        published = dict(conn.execute(sa.select(STATE.c.key, STATE.c.value)).all())
    engine.dispose()
    assert "535" in published["smtp.last_error"], published  # the server's refusal, as it said it
    assert _leaks(" ".join(replies)) == [] and _leaks(" ".join(published.values())) == []


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("NOTIFIER_DATABASE_URL", f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:{free_port()}/shop"),
        ("NOTIFIER_DATABASE_URL", f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:notaport/shop"),
        ("NOTIFIER_DATABASE_URL", f"mysql://root:{DB_PASSWORD}@127.0.0.1/shop"),
        ("NOTIFIER_SMTP_URL", f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@relay.internal:99999"),
        ("NOTIFIER_SMTP_URL", f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@relay.internal/path"),
        ("NOTIFIER_SMTP_URL", f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@relay.internal?colour=red"),
        ("NOTIFIER_SMTP_URL", f"smtps://{SMTP_USER}:{SMTP_PASSWORD}@relay.internal?starttls=true"),
    ],
    ids=[
        "db-unreachable",
        "db-bad-port",
        "db-unknown-scheme",
        "smtp-bad-port",
        "smtp-path",
        "smtp-option",
        "smtp-tls",
    ],
)
def test_errors_about_a_url_do_not_repeat_its_password(
    sqlite_url: str, project: Path, tmp_path: Path, variable: str, url: str
) -> None:
    env = {
        "NOTIFIER_DATABASE_URL": sqlite_url,
        "NOTIFIER_SMTP_URL": "smtp://127.0.0.1:25",
        "NOTIFIER_RULES": str(project / "rules.yaml"),
        "NOTIFIER_TEMPLATES": str(project / "templates"),
        variable: url,
    }
    for args in (("-vv", "run", "--once"), ("status",), ("status", "--json")):
        if variable == "NOTIFIER_SMTP_URL" and args[0] == "status":
            continue  # status does not use the SMTP URL
        ran = _notifier(env, *args, cwd=tmp_path)
        assert ran.returncode != 0, (args, ran.stdout, ran.stderr)
        assert ran.stderr.strip(), "the failure is reported"
        assert _leaks(ran.stdout + ran.stderr) == [], (args, ran.stderr[-2000:])


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ event.data.__class__.__init__.__globals__ }}",  # (order.__class__: `check` refuses it)
        "{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}",
    ],
    ids=["mro", "globals", "os-popen"],
)
@freeze_time("2026-02-10 09:01", real_asyncio=True)
def test_a_template_reaching_for_python_internals_fails_and_sends_nothing(
    settings: Settings,
    shop: Shop,
    engine: sa.Engine,
    smtp_server: FaultySmtpServer,
    tmp_path: Path,
    payload: str,
) -> None:
    marker = tmp_path / "escaped"
    html = Path(settings.templates) / "order_confirmation" / "en.html"
    lines = html.read_text().splitlines()
    line = next(i for i, text in enumerate(lines) if "{% block content %}" in text) + 2
    # Only for this test's customer: the sample data `check` renders never reach it.
    guarded = '{% if customer.email == "lin@example.com" %}' + payload + "{% endif %}"
    lines.insert(line - 1, guarded.replace("{marker}", str(marker)))
    html.write_text("\n".join(lines) + "\n")
    order = shop.order(shop.customer(email="lin@example.com", timezone="UTC"))
    shop.event("order", order, "placed", "2026-02-10 09:00")
    code, result = run(settings)
    assert code == 0 and result.failed == 1 and result.sent == 0
    [row] = notifications(engine, rule="order-confirmation")
    assert row["state"] == "failed" and row["reason"] == "render_failed", row
    assert f"en.html:{line}" in row["detail"] and "not allowed" in row["detail"], row["detail"]
    assert row["message"] is None
    assert smtp_server.messages == []
    assert not marker.exists()
