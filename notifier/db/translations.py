"""Products' names in the customers' languages, from the optional table `product_translations`.

A shop may have no such table (or view): whether it has one is looked up once per engine
(once per `run --once`, once per daemon start), and without it every product keeps
`products.name`. The names are read for a whole batch of products in one query per 500; the
renderer picks the one of the message's locale (notifier.core.names), so the name and the
rest of the message agree on the language.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable

import sqlalchemy as sa

from notifier.core.locale import normalize_locale
from notifier.db.schema import ProductTranslation

TRANSLATIONS: sa.Table = ProductTranslation.__table__  # type: ignore[attr-defined]
_CHUNK = 500
_present: weakref.WeakKeyDictionary[sa.Engine, bool] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def has_translations(conn: sa.Connection) -> bool:
    """Whether this database has `product_translations` (asked of it once per engine: a table
    the shop adds while the daemon runs is seen after a restart)."""
    with _lock:
        known = _present.get(conn.engine)
    if known is None:
        inspector = sa.inspect(conn)
        known = TRANSLATIONS.name in {*inspector.get_table_names(), *inspector.get_view_names()}
        with _lock:
            _present[conn.engine] = known
    return known


def product_names(conn: sa.Connection, product_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Product id -> {locale: name}. A row whose name is not text, or blank, is left out (the
    product keeps `products.name` in that locale); "zh_TW" counts as "zh-TW", unless a row
    spelt "zh-TW" says otherwise."""
    wanted = sorted({i for i in product_ids if isinstance(i, int) and not isinstance(i, bool)})
    if not wanted or not has_translations(conn):
        return {}
    t = TRANSLATIONS
    found: dict[int, dict[str, str]] = {}
    exact: set[tuple[int, str]] = set()
    for start in range(0, len(wanted), _CHUNK):
        query = sa.select(t.c.product_id, t.c.locale, t.c.name).where(
            t.c.product_id.in_(wanted[start : start + _CHUNK])
        )
        for product_id, locale, name in conn.execute(query):
            if not isinstance(locale, str) or not isinstance(name, str) or not name.strip():
                continue
            code = normalize_locale(locale)
            spelt = locale.strip() == code
            if (product_id, code) in exact and not spelt:
                continue
            found.setdefault(product_id, {})[code] = " ".join(name.split())
            if spelt:
                exact.add((product_id, code))
    return found
