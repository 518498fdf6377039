"""What each trigger supplies to conditions and templates, written down once.

A rule's trigger decides what its context can hold: an `order.placed` message has no case, a
product event has no order, a case may or may not be about an order. `SUPPLIES` gives, per
event type, every name the context holds, which are always present, which may be None and
which are None, and the attributes each has (the contract documented in
notifier.compose.rendering; the event keys come from notifier.core.vocabulary, so the two
cannot drift). notifier.compose.contract checks templates and conditions against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from notifier.core.rules import SCHEDULE_TICK, Rule
from notifier.core.vocabulary import VOCABULARY


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    """What the context holds under a name or an attribute.

    kind: "record" (a dict with known keys), "list", "scalar", "none" (always None for this
    trigger), "any" (not known statically: nothing is checked), "macro" or "module".
    """

    kind: str
    label: str = ""  # how messages name it: "order", "event", "text", "a date"
    fields: Mapping[str, Shape] = field(default_factory=dict)
    item: Shape | None = None  # lists: the shape of each element
    py: type | None = None  # scalars and lists: the Python type, for attribute checks
    nullable: bool = False  # may be None
    open: bool = False  # a record with keys nobody documents (event.data): anything goes
    why: str = ""  # why it is (or may be) None, in plain words
    macro: Any = None  # macros: where they are defined


ANY = Shape(kind="any")


_KIND_TYPES: dict[str, tuple[type, str]] = {
    "text": (str, "text"),
    "date": (date, "a date"),
    "timestamp": (datetime, "a date and time"),
    "money": (Decimal, "an amount"),
    "int": (int, "a whole number"),
    "bool": (bool, "true or false"),
}


def _scalar(kind: str, *, nullable: bool = False, why: str = "") -> Shape:
    py, label = _KIND_TYPES[kind]
    return Shape(kind="scalar", label=label, py=py, nullable=nullable, why=why)


def _record(label: str, fields: Mapping[str, Shape], **options: Any) -> Shape:
    return Shape(kind="record", label=label, fields=dict(fields), **options)


def _none(label: str, why: str) -> Shape:
    return Shape(kind="none", label=label, why=why)


_NOT_SENT = "None when the event's data does not have it"


CUSTOMER = _record(
    "customer",
    {
        "id": _scalar("int"),
        "name": _scalar("text"),
        "email": _scalar("text"),
        "locale": _scalar("text"),
        "timezone": _scalar("text"),
        "marketing_opt_in": _scalar("bool"),
    },
)


ORDER = _record(
    "order",
    {
        "id": _scalar("int"),
        "number": _scalar("text"),
        "placed_at": _scalar("timestamp"),
        "status": _scalar("text"),
        "total": _scalar("money"),
        "currency": _scalar("text"),
        "ship_to_name": _scalar("text"),
        "ship_to_address": _scalar("text"),
        "promised_date": _scalar("date", nullable=True, why="None when no delivery date was promised"),
    },
)


# A product's names by locale (product_translations); `name` is already the message locale's.
NAMES = _record("names", {}, open=True)


ITEM = _record(
    "item",
    {
        "product_id": _scalar("int"),
        "sku": _scalar("text"),
        "name": _scalar("text"),
        "names": NAMES,
        "quantity": _scalar("int"),
        "unit_price": _scalar("money"),
        "line_total": _scalar("money"),
    },
)


ITEMS = Shape(kind="list", label="a list", item=ITEM, py=list)


CASE = _record(
    "case",
    {
        "id": _scalar("int"),
        "number": _scalar("text"),
        "subject": _scalar("text"),
        "status": _scalar("text"),
        "priority": _scalar("text"),
        "opened_at": _scalar("timestamp"),
    },
)


PRODUCT = _record(
    "product",
    {
        "id": _scalar("int"),
        "sku": _scalar("text"),
        "name": _scalar("text"),
        "names": NAMES,
        "tags": Shape(kind="list", label="a list", item=_scalar("text"), py=list),
        "price": _scalar("money"),
        "currency": _scalar("text"),
    },
)


LINKS = _record(
    "links",
    {
        "unsubscribe": _scalar("text", nullable=True, why="None when no secret key is set"),
        "not_solved": _scalar(
            "text", nullable=True, why="only case messages have it, and only with a secret key set"
        ),
    },
)


BRAND = _record("brand", {"name": _scalar("text"), "email": _scalar("text")})


def _event(event_type: str) -> Shape:
    fields: dict[str, Shape] = {
        "id": _scalar("int"),
        "type": _scalar("text"),
        "occurred_at": _scalar("timestamp"),
        "data": _record("event.data", {}, open=True),
    }
    for key, kind in VOCABULARY.get(event_type, {}).items():
        fields[key] = _scalar(kind, nullable=True, why=_NOT_SENT)
    return _record("event", fields)


@dataclass(frozen=True, slots=True)
class Supply:
    """Every name a template gets for one trigger, and its shape."""

    event_type: str
    names: Mapping[str, Shape]
    variant: str = ""  # "" or why this differs from the event type's usual supply

    @property
    def kind(self) -> str:
        """What the event is about: 'order', 'case' or 'product'."""
        return self.event_type.split(".", 1)[0]

    @property
    def present(self) -> frozenset[str]:
        """Names that always hold a value."""
        return frozenset(n for n, s in self.names.items() if s.kind != "none" and not s.nullable)

    @property
    def optional(self) -> frozenset[str]:
        """Names that may be None: use them inside {% if name %}."""
        return frozenset(n for n, s in self.names.items() if s.kind != "none" and s.nullable)

    @property
    def absent(self) -> frozenset[str]:
        """Names that are always None for this trigger."""
        return frozenset(n for n, s in self.names.items() if s.kind == "none")


def _supply(event_type: str) -> Supply:
    kind = event_type.split(".", 1)[0]
    order: Shape = ORDER
    case: Shape = _none("case", "there is no case: only case events have one")
    product: Shape = _none("product", "there is no product: only product events have one")
    reply_by: Shape = _none("reply_by", "only case events promise a reply time")
    items: Shape = ITEMS
    if kind == "case":
        case = CASE
        order = replace(ORDER, nullable=True, why="a case need not be about an order")
        reply_by = _scalar("timestamp")
    elif kind == "product":
        product = PRODUCT
        order = _none("order", "there is no order: a product event is not about one order")
    elif kind != "order":  # a calendar tick: about no order, case or product
        order = _none("order", f"there is no order: a {kind} rule is not about one order")
    names = {
        "customer": CUSTOMER,
        "order": order,
        "items": items,
        "event": _event(event_type),
        "case": case,
        "product": product,
        "reply_by": reply_by,
        "links": LINKS,
        "brand": BRAND,
        "locale": _scalar("text"),
        "timezone": _scalar("text"),
        "now": _scalar("timestamp"),
    }
    return Supply(event_type, names)


SUPPLIES: dict[str, Supply] = {event_type: _supply(event_type) for event_type in (*VOCABULARY, SCHEDULE_TICK)}


def supply_for(rule: Rule) -> Supply:
    """What a rule's templates get: its trigger's supply (a product rule without `audience:`
    is sent to its `to:` address and has no customer)."""
    supply = SUPPLIES.get(rule.on) or _supply(rule.on)
    if supply.kind == "product" and rule.audience is None:
        why = "a product rule without audience: has no customer; it goes to its to: address"
        names = {**supply.names, "customer": _none("customer", why)}
        return Supply(supply.event_type, names, variant="no audience")
    return supply


_BEFORE_CUSTOMER = "an audience rule's condition is evaluated once per event: there is no customer yet"


def condition_supply(rule: Rule) -> Supply:
    """What a rule's `when:` and `send_at:` see: the same names as its templates, except that
    an audience rule's conditions run once per event, before there is a customer."""
    supply = supply_for(rule)
    if rule.audience is None:
        return supply
    names = {**supply.names, "customer": _none("customer", _BEFORE_CUSTOMER)}
    return Supply(supply.event_type, names, variant="condition of an audience rule")
