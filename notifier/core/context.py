"""The template context: what conditions (`when:`, `send_at:`) and templates see.

One dict per message, built from the event, what it is about and the links; the contract is
documented in notifier.compose.rendering and written down per trigger in notifier.core.supply.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from notifier.core.addresses import parse_from
from notifier.core.rules import RuleSet
from notifier.core.values import Event, Subject


def event_value(event: Event) -> dict[str, Any]:
    """The `event` variable: id, type, occurred_at, data, and every documented key."""
    value: dict[str, Any] = dict(event.data)
    value.update(
        {"id": event.id, "type": event.type, "occurred_at": event.occurred_at, "data": dict(event.data)}
    )
    return value


def template_context(
    subject: Subject,
    event: Event,
    *,
    customer: dict[str, Any] | None = None,
    brand: Mapping[str, str],
    links: Mapping[str, str | None] | None = None,
    reply_by: datetime | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The dict conditions and templates see (the contract in rendering.py)."""
    person = customer or subject.customer or {}
    return {
        "customer": person or None,
        "order": subject.order,
        "items": subject.items,
        "event": event_value(event),
        "case": subject.case,
        "product": subject.product,
        "reply_by": reply_by,
        "links": {"unsubscribe": None, "not_solved": None, **(links or {})},
        "brand": dict(brand),
        "locale": person.get("locale", "en"),
        "timezone": person.get("timezone", "UTC"),
        "now": now,
    }


def brand_of(rules: RuleSet) -> dict[str, str]:
    """{name, email} from defaults.from, for templates."""
    name, email = parse_from(rules.defaults.from_header)
    return {"name": name or email, "email": email}
