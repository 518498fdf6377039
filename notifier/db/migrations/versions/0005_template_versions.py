"""Every version of a template file saved in the browser editor (or found changed on disk),
with who saved it and when: what the editor's history, diff and revert read.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notifier.db.schema import MYSQL_TABLE, NAME, TEXT, UTC_TIMESTAMP

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifier_template_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("path", NAME, nullable=False),
        sa.Column("content", TEXT, nullable=False),
        sa.Column("sha256", TEXT, nullable=False),
        sa.Column("author", TEXT, nullable=False),
        sa.Column("note", TEXT, nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sqlite_autoincrement=True,
        **MYSQL_TABLE,
    )
    op.create_index("ix_notifier_template_versions_path", "notifier_template_versions", ["path"])


def downgrade() -> None:
    op.drop_table("notifier_template_versions")
