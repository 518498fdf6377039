"""init-db: creates what is missing, upgrades notifier's own tables, harmless to repeat."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from notifier.db.engine import _alembic, init_db, make_engine, schema_revision
from notifier.db.migrations.env_names import VERSION_TABLE
from notifier.db.tables import NOTIFIER_TABLES
from tests.shop import ts


def _head() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_alembic(None)).get_current_head())  # type: ignore[arg-type]


HEAD = _head()


def test_the_newest_revision_is_the_template_versions() -> None:
    assert HEAD == "0005"  # 0004: 64-bit ids; 0005: notifier_template_versions


def _empty(url: str) -> sa.Engine:
    engine = make_engine(url)
    with engine.begin() as conn:
        for name in reversed(sa.inspect(conn).get_table_names()):
            conn.execute(sa.text(f"DROP TABLE {_quoted(conn, name)}"))
    return engine


def _quoted(conn: sa.Connection, name: str) -> str:
    """`name` as this database quotes it: "key" is a reserved word in MySQL."""
    return str(conn.dialect.identifier_preparer.quote_identifier(name))


def test_migrated_tables_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": lambda name, kind, _p: (
                    kind != "table" or (name.startswith("notifier_") and name != VERSION_TABLE)
                )
            },
        )
        ours = sa.MetaData()
        for table in NOTIFIER_TABLES:
            table.to_metadata(ours)
        differences = compare_metadata(context, ours)
    engine.dispose()
    assert differences == [], differences


def test_init_db_twice_is_harmless(db_url: str) -> None:
    engine = make_engine(db_url)
    assert init_db(engine) == []
    assert schema_revision(engine) == HEAD
    engine.dispose()


def test_upgrades_a_database_made_by_the_previous_schema(db_url: str) -> None:
    engine = _empty(db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic(conn), "0001")
    assert schema_revision(engine) == "0001"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO notifier_suppressions (address, reason, created_at) "
                "VALUES (:a, 'unsubscribed', :t)"
            ),
            {"a": "kept@example.com", "t": ts("2026-01-01 00:00")},
        )
    created = init_db(engine)
    assert "notifier_feedback" in created and "customers" in created
    assert schema_revision(engine) == HEAD
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT address FROM notifier_suppressions")).scalars().all()
    assert kept == ["kept@example.com"]
    engine.dispose()


def test_tables_made_before_migrations_are_adopted(db_url: str) -> None:
    engine = _empty(db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic(conn), "0001")
        conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))  # as create_all would have left it
    init_db(engine)
    assert schema_revision(engine) == HEAD
    assert "notifier_feedback" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_0003_adds_the_decision_columns_and_keeps_the_outbox(db_url: str) -> None:
    engine = _empty(db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic(conn), "0002")
        key = _quoted(conn, "key")
        conn.execute(
            sa.text(
                f"INSERT INTO notifier_notifications ({key}, rule, template, category, source, event_id, "
                "event_type, event_occurred_at, thread, subject_id, state, due_at, next_attempt_at, "
                "attempts, created_at, updated_at) VALUES ('k', 'r', 't', 'transactional', 'order', 1, "
                "'order.placed', :t, 'order:1', 1, 'queued', :t, :t, 0, :t, :t)"
            ),
            {"t": ts("2026-01-01 00:00")},
        )
    init_db(engine)
    assert schema_revision(engine) == HEAD
    with engine.connect() as conn:
        key = _quoted(conn, "key")
        query = sa.text(f"SELECT {key}, rule_fingerprint, due_basis FROM notifier_notifications")
        row = conn.execute(query).one()
    assert tuple(row) == ("k", None, None)
    engine.dispose()


BIG = 3_000_000_000  # above 2**31 - 1, where a 32-bit id ends


def test_0004_makes_ids_and_read_positions_64_bit(db_url: str) -> None:
    engine = _empty(db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic(conn), "0003")
        conn.execute(
            sa.text("INSERT INTO notifier_cursors (source, position, updated_at) VALUES ('order', 7, :t)"),
            {"t": ts("2026-01-01 00:00")},
        )
    init_db(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE notifier_cursors SET position = :p"), {"p": BIG})
        conn.execute(
            sa.text("INSERT INTO notifier_gaps (source, event_id, noticed_at) VALUES ('order', :p, :t)"),
            {"p": BIG + 1, "t": ts("2026-01-01 00:00")},
        )
        if conn.dialect.name == "postgresql":  # the outbox's own sequence goes past 2**31 too
            setval = "SELECT setval(pg_get_serial_sequence('notifier_attempts', 'id'), :p)"
            conn.execute(sa.text(setval), {"p": BIG})
        if conn.dialect.name == "mysql":
            conn.execute(sa.text(f"ALTER TABLE notifier_attempts AUTO_INCREMENT = {BIG + 1}"))
        conn.execute(
            sa.text(
                "INSERT INTO notifier_attempts (notification_id, at, outcome, reply, worker) "
                "VALUES (:p, :t, 'sent', '', '')"
            ),
            {"p": BIG, "t": ts("2026-01-01 00:00")},
        )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT position FROM notifier_cursors")).scalar_one() == BIG
        assert conn.execute(sa.text("SELECT event_id FROM notifier_gaps")).scalar_one() == BIG + 1
        attempt = conn.execute(sa.text("SELECT id, notification_id FROM notifier_attempts")).one()
    assert attempt.notification_id == BIG and (attempt.id > BIG or db_url.startswith("sqlite"))
    engine.dispose()
