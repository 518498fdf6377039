"""`notifier check` looks at the order system's side of the database: the integration tables or
views have the columns and types SPEC §2 names, the wake-up trigger sits on tables, and rules
whose tables are missing are named as never able to fire."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from notifier.cli import app
from notifier.config.settings import Settings


def cli(settings: Settings, *args: str) -> Result:
    base = [
        "--database-url",
        settings.database_url.reveal(),
        "--rules",
        str(settings.rules),
        "--templates",
        str(settings.templates),
    ]
    # The shipped rules hold marketing mail, which `check` refuses without the secret key.
    return CliRunner().invoke(app, [*base, *args], env={"NOTIFIER_SECRET_KEY": "k" * 32})


def _sql(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def test_what_init_db_made_passes_and_empty_event_tables_are_a_note(settings: Settings) -> None:
    result = cli(settings, "check")
    assert result.exit_code == 0, result.output
    assert "case_events: no events yet: 9 case rule(s) (case-received," in result.stdout
    assert "have nothing to act on so far" in result.stdout and "OK" in result.stdout


def test_every_missing_table_and_column_is_named_at_once(settings: Settings, engine: sa.Engine) -> None:
    # A shop like django-oscar: orders as a view over its own table, with no promised date,
    # and no cases at all.
    _sql(
        engine,
        "ALTER TABLE orders RENAME TO shop_orders",
        "CREATE VIEW orders AS SELECT id, customer_id, placed_at, status, total, currency, "
        "ship_to_name, ship_to_address FROM shop_orders",
        "DROP TABLE case_events",
        "DROP TABLE cases",
    )
    result = cli(settings, "check")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "orders: no column promised_date (a date, SPEC §2)" in result.output
    assert "cases: no such table or view (notifier init-db creates an empty one)" in result.output
    assert "case_events: no such table or view" in result.output
    assert "can never fire on this database" in result.output
    assert "9 case rule(s) (case-received, case-reply-due-team, case-overdue-team, case-overdue-customer" in (
        result.output
    )
    assert "4 problem(s) in the database" in result.output  # all at once, nothing else


def test_a_missing_reference_table_points_to_the_shops_views_first(
    settings: Settings, engine: sa.Engine
) -> None:
    # A shop developer who has not made the views yet: init-db would make an empty table
    # where the view belongs, so the words name the views before init-db.
    _sql(engine, "ALTER TABLE customers RENAME TO shop_customers")
    result = cli(settings, "check")
    assert result.exit_code == 1, result.output
    assert (
        "customers: no such table or view: beside a shop, create the shop's view first (README "
        '"Putting notifier beside your shop"); for a new install, notifier init-db creates an empty table'
    ) in result.output
    assert "Traceback" not in result.output


def test_a_column_notifier_cannot_read_is_named_with_its_type(settings: Settings, engine: sa.Engine) -> None:
    # The order number is text in many shops; notifier's key is the integer id.
    _sql(
        engine,
        "DROP TABLE order_events",
        "CREATE TABLE order_events (id VARCHAR(20) PRIMARY KEY, order_id INTEGER, type VARCHAR(40), "
        "occurred_at TIMESTAMP, data TEXT)",
    )
    result = cli(settings, "check")
    assert result.exit_code == 1, result.output
    assert "order_events: column id is VARCHAR(20); notifier needs an integer" in result.output
    assert "occurred_at" not in result.output and "order_events: column data" not in result.output


def test_a_32_bit_event_id_is_a_note_on_postgres_and_mariadb(
    settings: Settings, engine: sa.Engine, db_url: str
) -> None:
    _sql(engine, "DROP TABLE product_events", _OLD_PRODUCT_EVENTS)
    result = cli(settings, "check")
    assert result.exit_code == 0, result.output
    note = "product_events: column id is INTEGER: its ids end at 2,147,483,647 (BIGINT goes on)"
    sqlite = db_url.startswith("sqlite")  # SQLite's INTEGER is 64-bit
    assert (note in result.stdout) == (not sqlite), result.stdout


_OLD_PRODUCT_EVENTS = (
    "CREATE TABLE product_events (id INTEGER PRIMARY KEY, product_id INTEGER, type VARCHAR(255), "
    "occurred_at TIMESTAMP, data TEXT)"
)


def test_check_without_a_database_says_it_did_not_look(project: Path) -> None:
    base = ["--database-url", f"sqlite:///{project / 'none.db'}", "--rules", str(project / "rules.yaml")]
    key = {"NOTIFIER_SECRET_KEY": "k" * 32}
    result = CliRunner().invoke(app, [*base, "--templates", str(project / "templates"), "check"], env=key)
    assert result.exit_code == 0, result.output
    assert "database: not there (yet); its tables and views were not checked" in result.stdout
    assert not (project / "none.db").exists()


@pytest.mark.postgres
def test_the_wakeup_trigger_is_refused_on_a_view_and_found_by_check(
    settings: Settings, engine: sa.Engine, db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    _sql(
        engine,
        "ALTER TABLE order_events RENAME TO shop_order_events",
        "CREATE VIEW order_events AS SELECT * FROM shop_order_events",
    )
    result = cli(settings, "init-db", "--notify-trigger")
    assert result.exit_code == 1, result.output
    assert "no wake-up trigger on order_events: a view, where a trigger never fires" in result.output
    assert "wake-up trigger installed on case_events, product_events" in result.stdout
    assert cli(settings, "check").exit_code == 0

    # Installed by hand (PostgreSQL accepts it): check names it as the problem it is.
    _sql(
        engine,
        "CREATE TRIGGER notifier_wake AFTER INSERT ON order_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION notifier_wake()",
    )
    found = cli(settings, "check")
    assert found.exit_code == 1
    assert "order_events: the wake-up trigger is on a view, where it never fires" in found.output
