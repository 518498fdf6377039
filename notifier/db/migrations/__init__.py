"""Alembic migrations for notifier's own tables (the integration tables belong to the order system)."""
