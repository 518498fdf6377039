"""The event vocabulary (SPEC §2) and how a stored event row becomes an `Event`.

Pure: a row is any mapping with id, type, subject_id, occurred_at and data; the database
readers in notifier.db.events hand them over. A row that cannot be used keeps its problem in
plain words instead of raising, so one bad row never stops a batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from notifier.core.timing import as_utc
from notifier.core.values import Event, kind_of

# The event vocabulary (SPEC §2): each event's documented data keys and their kinds.
VOCABULARY: dict[str, dict[str, str]] = {
    "order.placed": {},
    "order.dispatched": {
        "carrier": "text",
        "tracking_number": "text",
        "tracking_url": "text",
        "eta": "date",
    },
    "order.delivered": {"delivered_at": "timestamp", "signed_by": "text"},
    "order.cancelled": {"reason": "text", "refund_amount": "money", "currency": "text"},
    "order.refunded": {"amount": "money", "currency": "text", "reason": "text"},
    "order.out_for_delivery": {"carrier": "text", "window_start": "timestamp", "window_end": "timestamp"},
    "order.delivery_failed": {"reason": "text", "next_attempt_at": "timestamp"},
    "product.price_change": {
        "old_price": "money",
        "new_price": "money",
        "currency": "text",
        "effective_at": "timestamp",
    },
    "case.opened": {},
    "case.agent_replied": {"agent": "text"},
    "case.customer_replied": {},
    "case.resolved": {"resolution": "text"},
    "case.reopened": {},
    "case.not_solved": {"comment": "text"},  # a customer clicked "not solved" (notifier_feedback)
}



def known_events(declared: Iterable[str] = ()) -> tuple[str, ...]:
    """The event types a rule may name: the vocabulary, then those the capture mapping
    (capture.yaml) declares beyond it, a shop's own. The one answer to "is this event known"."""
    return (*VOCABULARY, *sorted(set(declared) - set(VOCABULARY)))


# Largest run of missing ids remembered as gaps; a bigger jump is a sequence jump, not commits.
MAX_GAP_RUN = 1000


def parse_timestamp(value: Any) -> datetime:
    """A database or JSON timestamp -> aware UTC datetime (naive means UTC, per the schema)."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        return as_utc(datetime.fromisoformat(text))
    raise ValueError(f"{value!r} is not a timestamp")


def _convert(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "timestamp":
        return parse_timestamp(value)
    if kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    if kind == "money":
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not an amount") from exc
    return str(value)


def typed_data(event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The event's data with documented keys converted (times, dates, amounts) and present.

    Raises ValueError naming the key when a documented value cannot be read.
    """
    result = dict(data)
    for key, kind in VOCABULARY.get(event_type, {}).items():
        try:
            result[key] = _convert(kind, data.get(key))
        except ValueError as exc:
            raise ValueError(f"data key {key!r}: {exc}") from exc
    return result


def _parse_data(raw: Any) -> tuple[dict[str, Any], str | None]:
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, dict):
        return raw, None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        return {}, f"data is not valid JSON ({exc})"
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        return {}, f"data is JSON but not an object: {raw[:60]!r}"
    return value, None


def event_from_row(source: str, row: Mapping[str, Any]) -> Event:
    """A database row -> Event; a row that cannot be used keeps its problem in words."""
    event_type = f"{kind_of(source)}.{row['type']}"
    data, problem = _parse_data(row["data"])
    try:
        occurred_at = parse_timestamp(row["occurred_at"])
    except (ValueError, TypeError):
        return Event(
            source=source,
            id=row["id"],
            type=event_type,
            subject_id=row["subject_id"],
            occurred_at=as_utc(datetime(1970, 1, 1)),
            problem=f"occurred_at {row['occurred_at']!r} is not a timestamp",
        )
    if problem is None:
        try:
            data = typed_data(event_type, data)
        except ValueError as exc:
            problem = str(exc)
    return Event(
        source=source,
        id=row["id"],
        type=event_type,
        subject_id=row["subject_id"],
        occurred_at=occurred_at,
        data=MappingProxyType(data),
        problem=problem,
    )


def missing_ids(position: int, events: list[Event]) -> list[int]:
    """Ids skipped between `position` and the events read after it (ascending ids)."""
    missing: list[int] = []
    previous = position
    for event in events:
        run = event.id - previous - 1
        if 0 < run <= MAX_GAP_RUN:
            missing.extend(range(previous + 1, event.id))
        previous = event.id
    return missing
