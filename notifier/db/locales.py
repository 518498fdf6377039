"""The locales the customers have, for `notifier check` (compose checks the templates
against them, but reading them is the database's business)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from notifier.core.locale import FALLBACK_LOCALE
from notifier.db.engine import make_engine, normalize_url
from notifier.errors import NotifierError

__all__ = ["customer_locales", "existing_engine"]


def existing_engine(database_url: str) -> sa.Engine | None:
    """An engine for a database that is there, or None: a SQLite file that does not exist is
    never created; PostgreSQL is given at most 5 s to answer (checked by the caller's connect)."""
    try:
        url = sa.engine.make_url(normalize_url(database_url))
    except sa.exc.ArgumentError:
        return None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).is_file():
            return None
        options: dict[str, Any] = {}
    else:
        options = {"connect_args": {"connect_timeout": 5}}
    try:
        return make_engine(database_url, **options)
    except (NotifierError, ImportError, sa.exc.SQLAlchemyError):
        return None


def customer_locales(database_url: str) -> set[str] | None:
    """The locales customers have (SELECT DISTINCT locale FROM customers), or None when the
    database cannot be read. Never creates a SQLite file; waits at most 5 s for PostgreSQL."""
    engine = existing_engine(database_url)
    if engine is None:
        return None
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT DISTINCT locale FROM customers")).scalars().all()
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return {row or FALLBACK_LOCALE for row in rows}
