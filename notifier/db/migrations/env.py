"""Alembic environment: runs on the connection `notifier init-db` hands over."""

from __future__ import annotations

from alembic import context

from notifier.db.migrations.env_names import VERSION_TABLE
from notifier.db.tables import NOTIFIER_TABLES

connection = context.config.attributes["connection"]
target = NOTIFIER_TABLES[0].metadata
context.configure(
    connection=connection,
    target_metadata=target,
    version_table=VERSION_TABLE,
    include_name=lambda name, kind, _parent: kind != "table" or (name or "").startswith("notifier_"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
