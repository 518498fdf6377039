"""Nothing harmful passes `check`: a duration without a unit, marketing rules without the
secret key, a subject of two lines. And what was skipped for a reason now gone can be retried."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner, Result

from notifier.cli import app
from notifier.config.settings import Settings, load_settings
from notifier.config.validate import validate
from notifier.db import store
from notifier.errors import ConfigError
from tests.journey import notifications, run
from tests.test_cli_tools import outbox_row

KEY = {"NOTIFIER_SECRET_KEY": "test-secret"}


def check(project: Path, env: dict[str, str] | None = None) -> Result:
    args = ["--rules", str(project / "rules.yaml"), "--templates", str(project / "templates"), "check"]
    return CliRunner().invoke(app, args, env={"NOTIFIER_SECRET_KEY": None, **(env or {})})  # type: ignore[dict-item]


def test_a_duration_without_a_unit_is_refused_with_the_fix(project: Path) -> None:
    rules = project / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    assert "after: 48h" in text
    rules.write_text(text.replace("after: 48h", "after: 48", 1), encoding="utf-8")
    result = check(project, KEY)
    assert result.exit_code == 1
    assert "after: 48 has no unit: write 48h, 48m or 48s" in result.output
    line = text[: text.index("after: 48h")].count("\n") + 1
    assert f"rules.yaml:{line}:" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5s", timedelta(milliseconds=500)),
        ("500ms", timedelta(milliseconds=500)),
        ("2s", timedelta(seconds=2)),
    ],
)
def test_the_poll_interval_takes_fractions_of_a_second(text: str, expected: timedelta) -> None:
    settings = load_settings(environ={"NOTIFIER_POLL_INTERVAL": text}, config_file=None)
    assert settings.poll_interval == expected


def test_a_setting_without_a_unit_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="NOTIFIER_POLL_INTERVAL: 2 has no unit: write 2h, 2m or 2s"):
        load_settings(environ={"NOTIFIER_POLL_INTERVAL": "2"})


def test_marketing_rules_without_the_secret_key_fail_check_and_say_how_to_make_one(project: Path) -> None:
    keyless = check(project)
    assert keyless.exit_code == 1
    assert "rule 'price-rise-warning' is marketing mail" in keyless.output
    assert "NOTIFIER_SECRET_KEY" in keyless.output and "secrets.token_hex" in keyless.output
    assert check(project, KEY).exit_code == 0


@freeze_time("2026-02-10 03:00", real_asyncio=True)
def test_the_daemon_warns_at_start_without_the_secret_key(
    settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="notifier"):
        run(replace(settings, secret_key=None))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("price-rise-warning" in w and "NOTIFIER_SECRET_KEY" in w for w in warned), warned
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="notifier"):
        run(settings)
    assert not [r for r in caplog.records if "NOTIFIER_SECRET_KEY" in r.getMessage()]


def test_a_subject_of_two_lines_is_refused(project: Path) -> None:
    subject = project / "templates" / "order_confirmation" / "zh-TW.subject.txt"
    subject.write_text("訂單 {{ order.number }}\n已確認\n", encoding="utf-8")
    found = validate(project / "rules.yaml", project / "templates")
    words = [str(p) for p in found.problems]
    assert any("zh-TW.subject.txt" in w and "the subject is 2 lines" in w for w in words), words
    # A tag on a line of its own is not a second line of text.
    subject.write_text("{% if order %}\n訂單 {{ order.number }} 已確認\n{% endif %}\n", encoding="utf-8")
    assert not validate(project / "rules.yaml", project / "templates").problems


def test_retry_requeues_skipped_mail_whose_reason_is_gone(settings: Settings, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            store.NOTIFICATIONS.insert(),
            [
                outbox_row(event_id=1, state="skipped", reason="no_secret_key", category="marketing"),
                outbox_row(event_id=2, state="skipped", reason="expired"),
            ],
        )
    keyless, stale = (row["id"] for row in notifications(engine, rule="order-confirmation"))
    base = ["--database-url", settings.database_url.reveal(), "--rules", str(settings.rules), "retry"]
    runner = CliRunner()
    without = runner.invoke(app, [*base, "--id", str(keyless)], env={"NOTIFIER_SECRET_KEY": None})  # type: ignore[dict-item]
    assert without.exit_code == 1 and "skipped (no_secret_key), and that still holds" in without.output
    expired = runner.invoke(app, [*base, "--id", str(stale)], env=KEY)
    assert expired.exit_code == 1 and "skipped (expired), and that still holds" in expired.output
    done = runner.invoke(app, [*base, "--skipped"], env=KEY)
    assert done.exit_code == 0 and "re-queued 1" in done.output, done.output
    states = {
        row["id"]: (row["state"], row["reason"]) for row in notifications(engine, rule="order-confirmation")
    }
    assert states == {keyless: ("queued", None), stale: ("skipped", "expired")}
