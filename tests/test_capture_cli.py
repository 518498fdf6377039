"""`notifier capture` and `notifier check` with a capture mapping, through the real command:
an order the shop inserts is confirmed by email; a bad mapping is every problem at file:line
and no traceback; rules may name the mapping's own events; check lists never-firing rules."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from notifier.config.settings import Settings
from notifier.db.engine import make_engine
from tests.journey import parse, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

ROOT = Path(__file__).resolve().parent.parent
PLACED = """\
events:
  - event: order.placed
    table: orders
    on: insert
    subject: new.id
    occurred_at: new.placed_at
"""
GIFT_RULE = """\
  - name: gift-wrapped-note
    on: order.gift_wrapped
    template: order_confirmation
"""


def notifier(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "NOTIFIER_SECRET_KEY": "k" * 32,
    }
    env.pop("NOTIFIER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_once_confirms_an_order_the_shop_inserts_with_capture_installed(
    settings: Settings, db_url: str, project: Path, smtp_server: FaultySmtpServer
) -> None:
    (project / "capture.yaml").write_text(PLACED, encoding="utf-8")
    settings = replace(settings, capture=project / "capture.yaml")
    installed = notifier(project, "--database-url", db_url, "capture", "install")
    assert installed.returncode == 0, installed.stderr
    assert "installed 1 trigger(s)" in installed.stdout, installed.stdout
    checked = notifier(project, "--database-url", db_url, "capture", "check")
    assert checked.returncode == 0 and "installed and matching" in checked.stdout, checked.stdout
    engine = make_engine(db_url)
    shop = Shop(engine)
    customer = shop.customer(email="lin@example.tw")
    placed_at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")
    order = shop.order(customer, items=[(shop.product(), 2)], placed_at=placed_at)  # no event written by hand
    engine.dispose()
    code, _result = run(settings)
    assert code == 0
    confirmations = [parse(m) for m in smtp_server.messages if str(order) in str(parse(m)["Subject"])]
    assert len(confirmations) == 1, [parse(m)["Subject"] for m in smtp_server.messages]
    assert "lin@example.tw" in str(confirmations[0]["To"])
    removed = notifier(project, "--database-url", db_url, "capture", "remove")
    assert removed.returncode == 0 and "removed 1 capture trigger(s)" in removed.stdout, removed.stdout
    again = notifier(project, "--database-url", db_url, "capture", "check")
    assert again.returncode == 1 and "not installed" in again.stdout, again.stdout


def test_a_dry_run_prints_the_sql_and_changes_nothing(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "capture.yaml").write_text(PLACED, encoding="utf-8")
    shown = notifier(tmp_path, "--database-url", sqlite_url, "capture", "install", "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert (
        'CREATE TRIGGER "notifier_capture_1_' in shown.stdout and "dry run: nothing changed" in shown.stdout
    )
    checked = notifier(tmp_path, "--database-url", sqlite_url, "capture", "check")
    assert checked.returncode == 1 and "not installed (notifier capture install adds it)" in checked.stdout
    assert "do not match capture.yaml (1 missing)" in checked.stderr, checked.stderr


BAD = """\
events:
  - event: order.dispached
    table: orders
    on: inserted
    subject: new.id
  - event: order.gift_wrapped
    table: orders
    on: insert
    subject: old.id
    when:
      new.status: {between: [1, 2]}
    changed: [total]
    data:
      items: [1, 2]
"""


@pytest.mark.parametrize("command", [["capture", "install"], ["capture", "check"], ["check"]])
def test_a_bad_mapping_is_every_problem_at_its_line_and_no_traceback(
    project: Path, command: list[str]
) -> None:
    (project / "capture.yaml").write_text(BAD, encoding="utf-8")
    ran = notifier(project, "--database-url", f"sqlite:///{project / 'none.db'}", *command)
    output = ran.stdout + ran.stderr
    assert ran.returncode == 1 and "Traceback" not in output, output
    for line, words in [
        (2, "did you mean 'order.dispatched'?"),
        (4, "on 'inserted' must be insert, update or delete; did you mean 'insert'?"),
        (9, "'old.id': an insert has no old row (use new.id)"),
        (11, "unknown key 'between'"),
        (12, "changed applies to on: update only"),
        (14, "data items: new.col, old.col, now or a plain value"),
    ]:
        assert f"capture.yaml:{line}: " in output and words in output, (line, words, output)


def test_a_mapping_naming_a_column_the_shop_lacks_says_so_with_did_you_mean(
    sqlite_url: str, tmp_path: Path
) -> None:
    (tmp_path / "capture.yaml").write_text(PLACED.replace("new.placed_at", "new.placed"), encoding="utf-8")
    ran = notifier(tmp_path, "--database-url", sqlite_url, "capture", "install")
    output = ran.stdout + ran.stderr
    assert ran.returncode == 1 and "Traceback" not in output, output
    assert (
        "capture.yaml:6: entry 1 (order.placed): orders has no column 'placed'; did you mean 'placed_at'?"
        in output
    )


def test_a_rule_may_name_an_event_the_mapping_declares_and_not_one_it_does_not(project: Path) -> None:
    with (project / "rules.yaml").open("a", encoding="utf-8") as rules:
        rules.write(GIFT_RULE)
    refused = notifier(project, "check")
    assert refused.returncode == 1, refused.stdout
    assert "unknown event 'order.gift_wrapped'" in refused.stderr and "capture mapping" in refused.stderr
    (project / "capture.yaml").write_text(
        PLACED + "  - event: order.gift_wrapped\n    table: shop_giftwrap\n    on: insert\n"
        "    subject: new.order_id\n",
        encoding="utf-8",
    )
    accepted = notifier(project, "check")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "order.gift_wrapped" in accepted.stdout and "OK" in accepted.stdout


def test_check_lists_the_rules_that_can_never_fire_on_this_database(sqlite_url: str, project: Path) -> None:
    (project / "capture.yaml").write_text(PLACED, encoding="utf-8")
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:  # a delivery was written by the shop itself: that rule can fire
        conn.execute(
            sa.text(
                "INSERT INTO order_events (order_id, type, occurred_at) VALUES (1, 'delivered', '2026-02-10')"
            )
        )
    engine.dispose()
    ran = notifier(project, "--database-url", sqlite_url, "check")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    never = [line for line in ran.stdout.splitlines() if "can never fire on this database" in line]
    named = {line.split("'")[1] for line in never}
    case_rules = {
        "case-received", "case-reply-due-team", "case-overdue-team", "case-overdue-customer", "case-reopened",
        "case-reopened-reply-due-team", "case-reopened-overdue-customer", "case-follow-up", "case-not-solved",
    }  # fmt: skip
    assert case_rules <= named, never
    assert {"order-dispatched", "order-refunded", "price-rise-warning"} <= named, never
    assert not named & {"order-confirmation", "dispatch-delayed", "order-delivered"}, never
    assert "capture: the 0 trigger(s)" not in ran.stdout and "not installed" in ran.stdout


def test_the_daemon_sends_for_a_shops_own_event_the_mapping_declares(
    settings: Settings, db_url: str, project: Path, smtp_server: FaultySmtpServer
) -> None:
    with (project / "rules.yaml").open("a", encoding="utf-8") as rules:
        rules.write(GIFT_RULE)
    mapping = "events:\n  - event: order.gift_wrapped\n    table: shop_giftwrap\n    on: insert\n"
    (project / "capture.yaml").write_text(mapping + "    subject: new.order_id\n", encoding="utf-8")
    settings = replace(settings, capture=project / "capture.yaml")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE shop_giftwrap (id INTEGER PRIMARY KEY, order_id INTEGER)"))
    installed = notifier(project, "--database-url", db_url, "capture", "install")
    assert installed.returncode == 0, installed.stderr
    shop = Shop(engine)
    customer = shop.customer(email="wrap@example.tw")
    order = shop.order(customer, items=[(shop.product(), 1)])
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO shop_giftwrap (id, order_id) VALUES (1, :order)"), {"order": order})
    engine.dispose()
    code, _result = run(settings)
    assert code == 0
    sent = [parse(m) for m in smtp_server.messages]
    assert [str(m["To"]) for m in sent] == ["Ms Lin <wrap@example.tw>"]
    assert str(order) in str(sent[0]["Subject"])


@pytest.mark.postgres
def test_a_user_without_the_privilege_is_told_so_and_nothing_changes(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = make_engine(postgres_url)
    role = f"capture_nopriv_{os.getpid()}"
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    from notifier.db.engine import init_db

    init_db(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA public TO {role}"))
    try:
        (tmp_path / "capture.yaml").write_text(PLACED, encoding="utf-8")
        url = postgres_url.replace("postgres@", f"{role}@", 1)
        ran = notifier(tmp_path, "--database-url", url, "capture", "install")
        output = ran.stdout + ran.stderr
        assert ran.returncode == 1 and "Traceback" not in output, output
        assert "the database refused the capture triggers" in output and "privileges" in output, output
        with engine.connect() as conn:
            count = "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'notifier_capture_%'"
            assert conn.execute(sa.text(count)).scalar_one() == 0
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"REVOKE ALL ON SCHEMA public FROM {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))
        engine.dispose()
