"""MariaDB / MySQL: what differs from PostgreSQL under the same guarantees (every test that
takes `db_url` runs on MariaDB too; these are the MySQL-only parts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from notifier.config.settings import Secret, Settings, load_settings
from notifier.db import store
from notifier.db.engine import init_db, make_engine, normalize_url
from notifier.db.store.base import insert_new
from tests.conftest import _fresh_mariadb
from tests.test_claims import _row as _claims_row
from tests.test_integration_schema import cli

pytestmark = pytest.mark.mariadb


@pytest.fixture
def maria(mariadb_url: str) -> str:
    """An empty MariaDB database made by init-db."""
    engine = _fresh_mariadb(mariadb_url)
    init_db(engine)
    engine.dispose()
    return mariadb_url


@pytest.mark.parametrize("plain", ["mysql://u@h/db", "mariadb://u@h/db", "mysql+pymysql://u@h/db"])
def test_the_plain_mysql_urls_use_pymysql(plain: str) -> None:
    assert normalize_url(plain) == "mysql+pymysql://u@h/db"
    assert load_settings({"database_url": plain}).database_url.reveal() == plain


def test_the_engine_reads_committed_rows_in_utf8mb4_and_utc(maria: str) -> None:
    """READ COMMITTED: at MySQL's own REPEATABLE READ a transaction that read the event table
    once would never see an event committed after that, and its gap would expire unread."""
    engine = make_engine(maria)
    with engine.connect() as conn:
        isolation, charset, zone = conn.execute(
            sa.text("SELECT @@tx_isolation, @@character_set_connection, @@time_zone")
        ).one()
    engine.dispose()
    assert (isolation, charset, zone) == ("READ-COMMITTED", "utf8mb4", "+00:00")


def test_a_transaction_sees_an_event_committed_after_its_first_read(maria: str) -> None:
    engine = make_engine(maria)
    events = sa.table("order_events", sa.column("id"))
    insert = "INSERT INTO order_events (order_id, type, occurred_at) VALUES (1, 'placed', '2026-02-10 09:00')"
    with engine.connect() as reader, engine.connect() as writer:
        with reader.begin():
            assert reader.execute(sa.select(sa.func.count()).select_from(events)).scalar_one() == 0
            with writer.begin():
                writer.execute(sa.text(insert))
            assert reader.execute(sa.select(sa.func.count()).select_from(events)).scalar_one() == 1
    engine.dispose()


def test_big_messages_four_byte_text_and_microseconds_round_trip(maria: str) -> None:
    """LONGBLOB (a BLOB ends at 64 KB), utf8mb4 (emoji), DATETIME(6), keys byte for byte."""
    engine = make_engine(maria)
    body = b"x" * 300_000
    due = datetime(2026, 2, 10, 9, 0, 0, 123456, tzinfo=UTC)
    with engine.begin() as conn:
        rows = [_row(key="Ann:🌷", due_at=due), _row(key="ann:🌷", due_at=due + timedelta(hours=1))]
        assert store.insert_notifications(conn, rows) == 2, "keys differing in case are two keys"
        conn.execute(store.NOTIFICATIONS.update().values(message=body, subject="Ihre Bestellung 🌷"))
    with engine.connect() as conn:
        query = sa.select(store.NOTIFICATIONS).order_by(store.NOTIFICATIONS.c.id)
        found = conn.execute(query).mappings().all()
    engine.dispose()
    assert [len(row["message"]) for row in found] == [300_000, 300_000]
    assert found[0]["subject"] == "Ihre Bestellung 🌷"
    assert found[0]["due_at"] == due.replace(tzinfo=None), "stored as UTC, to the microsecond"


def test_an_aware_time_in_another_zone_is_stored_as_utc(maria: str) -> None:
    engine = make_engine(maria)
    taipei = datetime(2026, 2, 10, 17, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Taipei"))
    with engine.begin() as conn:
        store.insert_notifications(conn, [_row(key="k", due_at=taipei)])
        stored = conn.execute(sa.select(store.NOTIFICATIONS.c.due_at)).scalar_one()
    engine.dispose()
    assert stored == datetime(2026, 2, 10, 17, 0)


def test_an_insert_that_meets_duplicates_counts_only_new_rows_and_still_fails_on_bad_ones(maria: str) -> None:
    """ON DUPLICATE KEY UPDATE, not INSERT IGNORE: a duplicate key is skipped (and not
    counted, though MySQL counts it as affected), a NULL where none may be still fails."""
    engine = make_engine(maria)
    with engine.begin() as conn:
        assert store.insert_notifications(conn, [_row(key="a"), _row(key="b")]) == 2
        assert store.insert_notifications(conn, [_row(key="a"), _row(key="c"), _row(key="b")]) == 1
        assert insert_new(conn, store.SUPPRESSIONS, "address", values=_suppressed("x@example.com")) == 1
        assert insert_new(conn, store.SUPPRESSIONS, "address", values=_suppressed("x@example.com")) == 0
        store.publish(conn, {"rules": "one"}, datetime(2026, 2, 10, tzinfo=UTC))
        store.publish(conn, {"rules": "two"}, datetime(2026, 2, 10, tzinfo=UTC))
        published = conn.execute(sa.select(store.STATE.c.value).where(store.STATE.c.key == "rules")).scalar()
    assert published == "two"
    with engine.connect() as conn:
        with pytest.raises(sa.exc.IntegrityError), conn.begin():  # counted "a" before it failed
            store.insert_notifications(conn, [_row(key="a"), {**_row(key="d"), "rule": None}])
        with conn.begin():
            assert store.insert_notifications(conn, [_row(key="e"), _row(key="b")]) == 1
    engine.dispose()


def _row(key: str, **extra: object) -> dict[str, object]:
    return _claims_row(key, "order:1", "2026-02-10 09:00", **extra)


def _suppressed(address: str) -> dict[str, object]:
    return {"address": address, "reason": "unsubscribed", "created_at": datetime(2026, 2, 10, tzinfo=UTC)}


def test_init_db_refuses_the_wakeup_trigger_in_plain_words_and_changes_nothing(
    maria: str, project: Path
) -> None:
    engine = make_engine(maria)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE notifier_feedback"))
    engine.dispose()
    settings = Settings(
        database_url=Secret(maria), rules=project / "rules.yaml", templates=project / "templates"
    )
    result = cli(settings, "init-db", "--notify-trigger")
    assert result.exit_code == 2
    assert "--notify-trigger needs PostgreSQL (LISTEN/NOTIFY)" in result.output
    assert "their daemons poll for new events" in result.output
    engine = make_engine(maria)
    assert "notifier_feedback" not in sa.inspect(engine).get_table_names(), "nothing was changed"
    engine.dispose()
