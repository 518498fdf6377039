"""A product's name in the message's language: the one choice, made where every message renders.

Products and order items carry `names` ({locale: name}, from the shop's optional table
`product_translations`). Once the message's locale is chosen (notifier.core.locale), `in_locale`
gives the context whose `product.name` and `items[].name` are the names in that locale, and
`products.name` where the shop gave none: a zh-TW message takes the zh-TW name only (never the
zh-CN one), else the product's own. The renderer calls it, so the daemon, `check`, `preview`
and the gallery cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def name_in(thing: Mapping[str, Any], locale: str) -> Any:
    """The name of a product (or an order item) in `locale`, else its own `name`."""
    names = thing.get("names")
    if isinstance(names, Mapping):
        found = names.get(locale)
        if isinstance(found, str) and found:
            return found
    return thing.get("name")


def _named(thing: Any, locale: str) -> Any:
    if not isinstance(thing, Mapping) or "name" not in thing:
        return thing
    name = name_in(thing, locale)
    return thing if name == thing["name"] else {**thing, "name": name}


def in_locale(context: Mapping[str, Any], locale: str) -> dict[str, Any]:
    """The context with product and item names in `locale` (new dicts; `context` is unchanged)."""
    values = dict(context)
    if values.get("product") is not None:
        values["product"] = _named(values["product"], locale)
    items = values.get("items")
    if isinstance(items, list):
        values["items"] = [_named(item, locale) for item in items]
    return values
