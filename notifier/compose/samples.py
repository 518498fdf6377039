"""Sample template contexts: one complete, realistic context per trigger and locale.

`notifier check` renders every template with them, `notifier preview` and the preview
gallery show them, and rules.py checks `when` expressions against them. Each context
follows the contract in rendering.py: every documented key is present (optional ones
filled in, so a preview shows every line a template can print).

The sample story: a Valentine's order placed on Monday 9 February 2026, dispatched on
Thursday, delivered on Friday at 11:02 local time; a case opened the following Monday, promised
a reply by Tuesday 10:00, resolved on Wednesday and reported not solved on Saturday; a rose
price rise announced in January. Times are set in the customer's own timezone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from notifier.core.rules import RuleSet

__all__ = ["SAMPLE_TRIGGER_OF_TEMPLATE", "TRIGGERS", "sample_context", "trigger_of"]

TRIGGERS: tuple[str, ...] = (
    "order.placed",
    "order.dispatched",
    "order.delivered",
    "order.cancelled",
    "order.refunded",
    "order.out_for_delivery",
    "order.delivery_failed",
    "product.price_change",
    "case.opened",
    "case.agent_replied",
    "case.customer_replied",
    "case.resolved",
    "case.reopened",
    "case.not_solved",
    "schedule.tick",
)

# The trigger of each shipped template, for previewing a template no rule names.
SAMPLE_TRIGGER_OF_TEMPLATE: dict[str, str] = {
    "order_confirmation": "order.placed",
    "order_dispatched": "order.dispatched",
    "order_delivered": "order.delivered",
    "dispatch_delayed": "order.placed",
    "order_cancelled": "order.cancelled",
    "order_refunded": "order.refunded",
    "order_out_for_delivery": "order.out_for_delivery",
    "order_delivery_failed": "order.delivery_failed",
    "price_change_warning": "product.price_change",
    "case_received": "case.opened",
    "case_follow_up": "case.resolved",
    "case_overdue_customer": "case.opened",
    "case_overdue_team": "case.opened",
    "case_reply_due_team": "case.opened",
    "case_reopened": "case.reopened",
    "promise_day_apology": "order.placed",
    "carrier_quiet": "order.dispatched",
    "case_agent_replied": "case.agent_replied",
    "case_resolved": "case.resolved",
    "case_not_solved_team": "case.not_solved",
    "valentines_invitation": "schedule.tick",
}

# The shop's goods as the daemon reads them: products.name, and the names product_translations
# gives (the renderer picks the message locale's, core/names.py; the sample is not pre-translated).
_GOODS: dict[str, tuple[str, dict[str, str]]] = {
    "ROSE-RED-12": ("Red roses, a dozen", {"zh-CN": "十二枝红玫瑰", "zh-TW": "十二枝紅玫瑰"}),
    "CARD-VAL": ("Valentine's card", {"zh-CN": "情人节贺卡", "zh-TW": "情人節卡片"}),
    "VASE-GLASS": ("Clear glass vase", {"zh-CN": "透明玻璃花瓶", "zh-TW": "透明玻璃花瓶"}),
}

# Per locale: the people, places, quantities and prices (in the customer's currency) of the story.
_PEOPLE: dict[str, dict[str, Any]] = {
    "en": {
        "customer": "Ms Lin",
        "email": "mei.lin@example.com",
        "timezone": "Europe/London",
        "currency": "GBP",
        "ship_to_name": "Alex Morgan",
        "ship_to_address": "Flat 3, 12 Rose Lane\nLondon N1 7AB\nUnited Kingdom",
        "signed_by": "A. Morgan",
        "carrier": "DPD",
        "tracking_number": "15501234567890",
        "items": [
            ("ROSE-RED-12", 1, "45.00"),
            ("CARD-VAL", 2, "3.50"),
            ("VASE-GLASS", 1, "18.00"),
        ],
        "prices": ("45.00", "59.00"),
        "case_subject": "The roses arrived with broken stems",
        "agent": "Sam",
        "resolution": "We sent a replacement bouquet on 17 February.",
        "comment": "The roses are still wilted.",
        "cancel_reason": "The address could not be reached.",
        "refund_reason": "Two stems arrived broken.",
        "failed_reason": "Nobody was in and there is no safe place to leave the flowers.",
    },
    "zh-CN": {
        "customer": "王芳",
        "email": "wang.fang@example.com",
        "timezone": "Asia/Shanghai",
        "currency": "CNY",
        "ship_to_name": "李娜",
        "ship_to_address": "上海市徐汇区天钥桥路 100 号 5 楼 502 室",
        "signed_by": "李娜",
        "carrier": "顺丰速运",
        "tracking_number": "SF1402345678901",
        "items": [
            ("ROSE-RED-12", 1, "268.00"),
            ("CARD-VAL", 2, "15.00"),
            ("VASE-GLASS", 1, "89.00"),
        ],
        "prices": ("268.00", "328.00"),
        "case_subject": "玫瑰送到时花茎折断了",
        "agent": "小陈",
        "resolution": "我们已于 2 月 17 日补发一束新的花束。",
        "comment": "玫瑰还是蔫的。",
        "cancel_reason": "收货地址无法送达。",
        "refund_reason": "有两枝花茎送到时已折断。",
        "failed_reason": "家中无人。门口没有可以安全存放鲜花的地方。",
    },
    "zh-TW": {
        "customer": "林美玲",
        "email": "meiling.lin@example.com",
        "timezone": "Asia/Taipei",
        "currency": "TWD",
        "ship_to_name": "陳志明",
        "ship_to_address": "台北市大安區仁愛路四段 100 號 5 樓",
        "signed_by": "陳志明",
        "carrier": "黑貓宅急便",
        "tracking_number": "9012-3456-7890",
        "items": [
            ("ROSE-RED-12", 1, "1280"),
            ("CARD-VAL", 2, "60"),
            ("VASE-GLASS", 1, "450"),
        ],
        "prices": ("1280", "1580"),
        "case_subject": "玫瑰送達時花莖斷了",
        "agent": "小陳",
        "resolution": "我們已於 2 月 17 日補寄一束新的花束。",
        "comment": "玫瑰還是枯萎的。",
        "cancel_reason": "收件地址無法送達。",
        "refund_reason": "有兩枝花莖送達時已折斷。",
        "failed_reason": "無人在家。門口沒有可以安全存放鮮花的地方。",
    },
}

_BRAND = {"name": "Blossom & Co", "email": "care@blossom.example"}
_LINKS = {
    "unsubscribe": "http://127.0.0.1:8025/unsubscribe/sample-token",
    "not_solved": "http://127.0.0.1:8025/not-solved/sample-token",
}


def sample_context(trigger: str, locale: str = "en") -> dict[str, Any]:
    """A complete template context for one trigger, in "en", "zh-CN" or "zh-TW"
    (other locales get the English sample with their `locale` set)."""
    # A shop's own event (declared in the capture mapping) gets its source's story, no data.
    if trigger not in TRIGGERS and trigger.split(".", 1)[0] not in ("order", "case", "product"):
        known = ", ".join(TRIGGERS)
        raise ValueError(f"no sample for trigger {trigger!r}; known triggers: {known}")
    people = _PEOPLE.get(locale, _PEOPLE["en"])
    zone = ZoneInfo(people["timezone"])

    def at(day: int, hour: int, minute: int, month: int = 2) -> datetime:
        """A moment of the story, given in the customer's local time, stored in UTC."""
        return datetime(2026, month, day, hour, minute, tzinfo=zone).astimezone(UTC)

    currency = people["currency"]
    items = [
        {
            "product_id": 100 + index,
            "sku": sku,
            "name": _GOODS[sku][0],
            "names": dict(_GOODS[sku][1]),
            "quantity": quantity,
            "unit_price": Decimal(price),
            "line_total": Decimal(price) * quantity,
        }
        for index, (sku, quantity, price) in enumerate(people["items"], start=1)
    ]
    order = {
        "id": 1042,
        "number": "1042",
        "placed_at": at(9, 9, 15),
        "status": "placed",
        "total": sum((item["line_total"] for item in items), Decimal(0)),
        "currency": currency,
        "ship_to_name": people["ship_to_name"],
        "ship_to_address": people["ship_to_address"],
        "promised_date": date(2026, 2, 13),
    }
    case = {
        "id": 2087,
        "number": "2087",
        "subject": people["case_subject"],
        "status": "open",
        "priority": "normal",
        "opened_at": at(16, 16, 40),
    }
    old_price, new_price = (Decimal(price) for price in people["prices"])
    product = {
        "id": 101,
        "sku": "ROSE-RED-12",
        "name": _GOODS["ROSE-RED-12"][0],
        "names": dict(_GOODS["ROSE-RED-12"][1]),
        "tags": ["roses", "valentine"],
        "price": old_price,
        "currency": currency,
    }

    source, _ = trigger.split(".", 1)
    occurred_at, data, values, now_after = _event(trigger, people, at, order, old_price, new_price)
    if trigger == "order.dispatched":
        order["status"] = "dispatched"
    elif trigger == "order.delivered":
        order["status"] = "delivered"
    elif trigger == "order.cancelled":
        order["status"] = "cancelled"
    elif trigger == "order.refunded":
        order["status"] = "refunded"
    elif trigger in ("case.resolved", "case.not_solved"):
        case["status"] = "resolved"

    customer = {
        "id": 7,
        "name": people["customer"],
        "email": people["email"],
        "locale": locale,
        "timezone": people["timezone"],
        "marketing_opt_in": True,
    }
    event = {
        "id": 5001,
        "type": trigger,
        "occurred_at": occurred_at,
        "data": data,
        **values,
    }
    has_order = source in ("order", "case")
    return {
        "customer": customer,
        "order": order if has_order else None,
        "items": items if has_order else [],
        "event": event,
        "case": case if source == "case" else None,
        "product": product if source == "product" else None,
        # When a person promised to answer the case (from its priority); every case email may show it.
        "reply_by": _reply_by(trigger, at) if source == "case" else None,
        "links": dict(_LINKS),
        "brand": dict(_BRAND),
        "locale": locale,
        "timezone": people["timezone"],
        "now": occurred_at + now_after,
    }


def _event(
    trigger: str,
    people: dict[str, Any],
    at: Any,
    order: dict[str, Any],
    old_price: Decimal,
    new_price: Decimal,
) -> tuple[datetime, dict[str, Any], dict[str, Any], timedelta]:
    """(occurred_at, raw data as stored, documented keys as the contract types them,
    how long after the event the sample "now" is)."""
    minute = timedelta(minutes=1)
    if trigger == "order.placed":
        return order["placed_at"], {}, {}, minute
    if trigger == "order.dispatched":
        url = f"https://track.example.com/{people['tracking_number']}"
        raw = {
            "carrier": people["carrier"],
            "tracking_number": people["tracking_number"],
            "tracking_url": url,
            "eta": "2026-02-13",
        }
        return at(12, 7, 40), raw, {**raw, "eta": date(2026, 2, 13)}, minute
    if trigger == "order.delivered":
        delivered_at = at(13, 11, 2)
        raw = {"delivered_at": _stored(delivered_at), "signed_by": people["signed_by"]}
        return delivered_at, raw, {**raw, "delivered_at": delivered_at}, minute
    if trigger == "order.cancelled":
        refund = order["total"]
        raw = {"reason": people["cancel_reason"], "refund_amount": str(refund), "currency": order["currency"]}
        return at(10, 14, 5), raw, {**raw, "refund_amount": refund}, minute
    if trigger == "order.refunded":
        amount = Decimal(people["items"][0][2])
        raw = {"amount": str(amount), "currency": order["currency"], "reason": people["refund_reason"]}
        return at(14, 10, 30), raw, {**raw, "amount": amount}, minute
    if trigger == "order.out_for_delivery":
        start, end = at(13, 9, 0), at(13, 12, 0)
        raw = {"carrier": people["carrier"], "window_start": _stored(start), "window_end": _stored(end)}
        return at(13, 7, 45), raw, {**raw, "window_start": start, "window_end": end}, minute
    if trigger == "order.delivery_failed":
        next_attempt = at(14, 9, 0)
        raw = {"reason": people["failed_reason"], "next_attempt_at": _stored(next_attempt)}
        return at(13, 11, 2), raw, {**raw, "next_attempt_at": next_attempt}, minute
    if trigger == "product.price_change":
        effective_at = at(1, 0, 0, month=2)
        raw = {
            "old_price": str(old_price),
            "new_price": str(new_price),
            "currency": people["currency"],
            "effective_at": _stored(effective_at),
        }
        values = {
            "old_price": old_price,
            "new_price": new_price,
            "currency": people["currency"],
            "effective_at": effective_at,
        }
        # Announced on 5 January; the warning goes out 21 days before the change.
        return at(5, 10, 0, month=1), raw, values, timedelta(days=6, hours=1)
    if trigger == "case.opened":
        # "Now" is just past the promised reply time (Tuesday 10:00), when the overdue
        # notices go out; the acknowledgement, sent at once, does not show it.
        return at(16, 16, 40), {}, {}, timedelta(hours=17, minutes=25)
    if trigger == "case.agent_replied":
        raw = {"agent": people["agent"]}
        return at(17, 9, 30), raw, raw, minute
    if trigger == "case.customer_replied":
        return at(17, 12, 10), {}, {}, minute
    if trigger == "case.resolved":
        raw = {"resolution": people["resolution"]}
        return at(18, 15, 0), raw, raw, timedelta(days=3)
    if trigger == "schedule.tick":
        # A calendar rule's tick: 20 January, 10:00 local, three weeks before Valentine's Day.
        return at(20, 10, 0, month=1), {}, {}, minute
    if trigger == "case.not_solved":
        # The customer answered the follow-up (sent 3 days after the resolution).
        raw = {"comment": people["comment"]}
        return at(21, 18, 20), raw, raw, minute
    return at(22, 9, 0), {}, {}, minute  # case.reopened


def _reply_by(trigger: str, at: Any) -> datetime:
    """The promise of the story: Tuesday 10:00 for the case opened on Monday; reopened on
    Sunday the 22nd, it is promised afresh, one working day on: Tuesday the 24th, 09:00."""
    return at(24, 9, 0) if trigger == "case.reopened" else at(17, 10, 0)


def _stored(moment: datetime) -> str:
    """A timestamp as the order system stores it: UTC text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def trigger_of(template: str, rules: RuleSet | None) -> str:
    """The event a template is written for: from the rule naming it, else the shipped default."""
    for rule in rules.rules if rules else ():
        if rule.template == template:
            return rule.on
    try:
        return SAMPLE_TRIGGER_OF_TEMPLATE[template]
    except KeyError as exc:
        raise LookupError(f"no rule uses template {template!r}, so its sample data is unknown") from exc
