"""Names shared by the migration environment and `init-db`."""

VERSION_TABLE = "notifier_alembic_version"  # its own name: the order system may use Alembic too
