"""The demo's shop and its simulated timeline: three customers (London, Shanghai, Taipei), each
walking the whole journey — an invitation, an order delivered at the second attempt, an order
cancelled and refunded, an order that never leaves the shop, a price rise, and a complaint that
waits too long, is answered, solved and visited again.

Every time here is UTC. London is UTC in January and February; Shanghai and Taipei are UTC+8,
so 01:12 UTC is 09:12 there. An order's `placed_at` is its own placed event's time, so what a
message quotes ("Placed: Monday 9 February, 09:30") is what the timeline did.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

# The clock starts the morning the valentines invitation goes out (20 January, 10:00 Taipei).
START = datetime(2026, 1, 20, 1, 0, tzinfo=UTC)

CUSTOMERS = [
    {"id": 1, "email": "emma.lin@example.com", "name": "Ms Emma Lin", "locale": "en",
     "timezone": "Europe/London", "marketing_opt_in": True},
    {"id": 2, "email": "wang.fang@example.cn", "name": "王芳", "locale": "zh-CN",
     "timezone": "Asia/Shanghai", "marketing_opt_in": True},
    {"id": 3, "email": "lin.meiling@example.tw", "name": "林美玲", "locale": "zh-TW",
     "timezone": "Asia/Taipei", "marketing_opt_in": True},
]  # fmt: skip
# The shop prices in pounds (products.price) and sells in each customer's own currency.
PRODUCTS = [
    {"id": 1, "sku": "ROSE-12", "name": "Twelve red roses", "tags": "roses,valentine", "price": 45},
    {"id": 2, "sku": "TULIP-10", "name": "Ten spring tulips", "tags": "tulips", "price": 28},
    {"id": 3, "sku": "VASE-G", "name": "Glass vase", "tags": "vase", "price": 16},
]
for _product in PRODUCTS:
    _product["currency"] = "GBP"
# product_translations: the names zh-CN and zh-TW customers read.
TRANSLATIONS = [
    {"product_id": 1, "locale": "zh-CN", "name": "十二枝红玫瑰"},
    {"product_id": 1, "locale": "zh-TW", "name": "十二枝紅玫瑰"},
    {"product_id": 2, "locale": "zh-CN", "name": "十枝春日郁金香"},
    {"product_id": 2, "locale": "zh-TW", "name": "十枝春日鬱金香"},
    {"product_id": 3, "locale": "zh-CN", "name": "玻璃花瓶"},
    {"product_id": 3, "locale": "zh-TW", "name": "玻璃花瓶"},
]
# Unit prices per currency the shop sells in: what a customer in London, Shanghai or Taipei pays.
PRICES: dict[str, dict[int, float]] = {
    "GBP": {1: 45, 2: 28, 3: 16},
    "CNY": {1: 398, 2: 248, 3: 138},
    "TWD": {1: 1680, 2: 1080, 3: 590},
}
# The roses go up on 1 March: one price-change event per currency (SPEC §2).
RISES = {"GBP": ("45.00", "52.00"), "CNY": ("398.00", "458.00"), "TWD": ("1680", "1880")}
CURRENCY = {1: "GBP", 2: "CNY", 3: "TWD"}
_TO = {
    1: ("Ms Emma Lin", "12 Rosebery Avenue, London EC1R 4SX"),
    2: ("王芳", "上海市徐汇区衡山路 88 号"),
    3: ("林美玲", "台北市大安區仁愛路四段 100 號"),
}


def _order(
    number: int, customer: int, items: list[tuple[int, int]], placed: str, promised: date
) -> dict[str, Any]:
    name, address = _TO[customer]
    return {
        "id": number, "customer_id": customer, "currency": CURRENCY[customer], "items": items,
        "ship_to_name": name, "ship_to_address": address, "promised_date": promised,
        "placed_at": datetime.fromisoformat(placed).replace(tzinfo=UTC),
    }  # fmt: skip


# Last Mother's Day's roses: why each customer is invited on 20 January and told of the rise.
PAST_ORDERS = [_order(1000 + c, c, [(1, 1)], "2025-05-08 01:00", date(2025, 5, 10)) for c in (1, 2, 3)]
ORDERS: list[dict[str, Any]] = [
    # Delivered at the second attempt (Emma's is big enough for the thank-you, when it is on).
    _order(1042, 1, [(1, 4), (3, 2)], "2026-02-09 09:00", date(2026, 2, 11)),
    _order(1043, 2, [(1, 2), (2, 1)], "2026-02-09 01:12", date(2026, 2, 11)),
    _order(1044, 3, [(2, 1), (3, 2)], "2026-02-09 01:24", date(2026, 2, 11)),
    # Never leave the shop: the dispatch-delayed apology, 48 hours on.
    _order(1045, 1, [(1, 1)], "2026-02-09 09:30", date(2026, 2, 10)),
    _order(1046, 2, [(2, 1)], "2026-02-09 01:40", date(2026, 2, 10)),
    _order(1047, 3, [(1, 1)], "2026-02-09 01:50", date(2026, 2, 10)),
    # Cancelled by the customer the same day, refunded the next.
    _order(1048, 1, [(2, 1)], "2026-02-09 10:00", date(2026, 2, 12)),
    _order(1049, 2, [(3, 1)], "2026-02-09 02:00", date(2026, 2, 12)),
    _order(1050, 3, [(3, 1)], "2026-02-09 02:10", date(2026, 2, 12)),
    # Dispatched, then no word from the carrier for two working days ("carrier has gone quiet"),
    # then delivered on the promised morning, so no promise-day apology is owed.
    _order(1051, 1, [(3, 1)], "2026-02-09 10:30", date(2026, 2, 13)),
    _order(1052, 2, [(1, 1)], "2026-02-09 02:20", date(2026, 2, 13)),
    _order(1053, 3, [(2, 1)], "2026-02-09 02:30", date(2026, 2, 13)),
]
# The three complaints, opened after the deliveries; high priority: a reply is promised in 4 hours.
CASES: list[dict[str, Any]] = [
    {"id": 501, "customer_id": 1, "order_id": 1042, "subject": "Two roses arrived wilted",
     "opened_at": "2026-02-12 09:00"},
    {"id": 502, "customer_id": 2, "order_id": 1043, "subject": "郁金香少了两枝",
     "opened_at": "2026-02-12 01:00"},
    {"id": 503, "customer_id": 3, "order_id": 1044, "subject": "花瓶有裂痕",
     "opened_at": "2026-02-12 01:30"},
]  # fmt: skip
# A resolution is quoted again three days later in the follow-up: dated, so it reads true then.
RESOLUTIONS = {
    501: "We sent two fresh roses on Thursday 12 February",
    502: "2月12日已为您补寄两枝郁金香",
    503: "2月12日已為您換寄一只新花瓶",
}

Step = tuple[str, str, int, str, dict[str, Any] | None]  # (when, source, id, event type, data)


def _journey(order: int, carrier: tuple[str, str], legs: tuple[str, str, str, str]) -> list[Step]:
    """Dispatched, out for delivery, nobody home, delivered the next day."""
    name, tracking = carrier
    dispatched, out, failed, delivered = legs
    day = out[:10]
    return [
        (dispatched, "order", order, "dispatched",
         {"carrier": name, "tracking_number": tracking, "tracking_url": f"https://track.example/{tracking}",
          "eta": day}),
        (out, "order", order, "out_for_delivery",
         {"carrier": name, "window_start": f"{day} {int(out[11:13]) + 1:02d}:00:00",
          "window_end": f"{day} {int(out[11:13]) + 4:02d}:00:00"}),
        (failed, "order", order, "delivery_failed",
         {"reason": FAILED_REASON[order], "next_attempt_at": f"{delivered[:10]} {out[11:13]}:00:00"}),
        (delivered, "order", order, "delivered",
         {"delivered_at": f"{delivered}:00", "signed_by": _TO[order - 1041][0]}),
    ]  # fmt: skip


# The carrier's words, in the customer's language.
FAILED_REASON = {
    1042: "No one at home; card left",
    1043: "收件人不在家",
    1044: "收件人不在，已留通知單",  # noqa: RUF001 (Chinese punctuation)
}


def _cancelled(number: int, cancelled: str, refunded: str, reason: str) -> list[Step]:
    """Cancelled by the customer, the whole amount refunded the next day."""
    order = next(o for o in ORDERS if o["id"] == number)
    currency = order["currency"]
    amount = f"{sum(PRICES[currency][pid] * qty for pid, qty in order['items']):.2f}"
    return [
        (
            cancelled,
            "order",
            number,
            "cancelled",
            {"reason": reason, "refund_amount": amount, "currency": currency},
        ),
        (refunded, "order", number, "refunded", {"amount": amount, "currency": currency}),
    ]


def _case(case: int, opened: str, late: str, replied: str, resolved: str, agent: str) -> list[Step]:
    """Opened, no reply within the 4 hours promised (both overdue notices), answered, solved."""
    return [
        (opened, "case", case, "opened", None),
        (late, "", 0, "", None),
        (replied, "case", case, "agent_replied", {"agent": agent}),
        (resolved, "case", case, "resolved", {"resolution": RESOLUTIONS[case]}),
    ]


TIMELINE: list[Step] = [
    # Each order's placed event at its placed_at: one time, so the timeline and the mail agree.
    *((f"{o['placed_at']:%Y-%m-%d %H:%M}", "order", o["id"], "placed", None) for o in ORDERS),
    # 20 January, 10:00 Taipei: the valentines invitation (a calendar rule). Shanghai and Taipei
    # read it at 10:00; London is asleep (quiet hours) and gets it at 08:00 her time.
    ("2026-01-20 02:00", "", 0, "", {"note": "10:00 in Taipei: the invitation"}),
    ("2026-01-20 08:00", "", 0, "", {"note": "08:00 in London: quiet hours end"}),
    *_journey(
        1042,
        ("Royal Mail", "RM123456789GB"),
        ("2026-02-10 07:00", "2026-02-10 09:00", "2026-02-10 12:30", "2026-02-11 10:02"),
    ),
    *_journey(
        1043,
        ("顺丰速运", "SF1234567890"),
        ("2026-02-09 23:30", "2026-02-10 01:00", "2026-02-10 04:30", "2026-02-11 02:15"),
    ),
    *_journey(
        1044,
        ("黑貓宅急便", "TC9876543210"),
        ("2026-02-09 23:00", "2026-02-10 01:10", "2026-02-10 05:00", "2026-02-11 03:02"),
    ),
    # The promise-day apology (on the promised day, in the afternoon local, unless delivered)
    # is shown here once rules.yaml has it: 10 February, 14:00 Shanghai and Taipei (06:00 UTC)
    # and 14:00 London — before the promised day ends, a day before the 48-hour apology below.
    ("2026-02-10 06:00", "", 0, "", {"note": "promise day, 14:00 in Shanghai and Taipei"}),
    ("2026-02-10 14:00", "", 0, "", {"note": "promise day, 14:00 in London"}),
    # 48 hours after placing, with nothing dispatched: the dispatch-delayed apology.
    ("2026-02-11 01:40", "", 0, "", None),
    ("2026-02-11 01:50", "", 0, "", None),
    # Two hours after each big order is delivered: the thank-you.
    ("2026-02-11 04:15", "", 0, "", None),
    ("2026-02-11 05:02", "", 0, "", None),
    ("2026-02-11 12:02", "", 0, "", None),
    ("2026-02-11 09:30", "", 0, "", None),
    *_cancelled(1048, "2026-02-09 11:00", "2026-02-10 10:00", "Ordered twice by mistake"),
    *_cancelled(1049, "2026-02-09 03:00", "2026-02-10 02:00", "重复下单"),
    *_cancelled(1050, "2026-02-09 03:10", "2026-02-10 02:10", "重複下單"),
    # Roses go up on 1 March: the buyers in each currency who asked for news hear of it first.
    *(
        (
            "2026-02-10 08:00",
            "product",
            1,
            "price_change",
            {"old_price": old, "new_price": new, "currency": currency, "effective_at": "2026-03-01 00:00:00"},
        )
        for currency, (old, new) in RISES.items()
    ),
    *_case(501, "2026-02-12 09:00", "2026-02-12 13:00", "2026-02-12 13:30", "2026-02-12 15:00", "Amy"),
    *_case(502, "2026-02-12 01:00", "2026-02-12 05:00", "2026-02-12 05:40", "2026-02-12 07:00", "小李"),
    *_case(503, "2026-02-12 01:30", "2026-02-12 05:30", "2026-02-12 06:00", "2026-02-12 07:30", "小陳"),
    # Handed to the carrier on Tuesday 10 February, 10:00 Taipei; two working days on the shop's
    # calendar later (Thursday 10:00 Taipei, 02:00 UTC), still nothing: the carrier has gone quiet.
    *(
        ("2026-02-10 02:00", "order", number, "dispatched", {"carrier": carrier, "tracking_number": track})
        for number, carrier, track in (
            (1051, "DPD", "15501234567890"),
            (1052, "中通快递", "ZT7788990011"),
            (1053, "新竹物流", "HCT556677889"),
        )
    ),
    ("2026-02-12 02:05", "", 0, "", {"note": "two working days since the parcels left, no word"}),
    *(
        (at, "order", number, "delivered", {"delivered_at": f"{at}:00", "signed_by": _TO[customer][0]})
        for number, customer, at in ((1051, 1, "2026-02-13 10:00"), (1052, 2, "2026-02-13 02:00"),
                                     (1053, 3, "2026-02-13 02:30"))
    ),
    # Three days after each resolution, the follow-up; Ms Lin clicks "not solved".
    ("2026-02-15 07:35", "", 0, "", None),
    ("2026-02-15 15:05", "", 0, "", None),
    ("2026-02-15 18:00", "case", 501, "not_solved", {"comment": "One of the new roses is wilted too"}),
    # The customers write again: each case is reopened and promised a reply afresh.
    ("2026-02-15 08:00", "case", 502, "reopened", None),
    ("2026-02-15 08:10", "case", 503, "reopened", None),
    ("2026-02-15 18:30", "case", 501, "reopened", None),
    ("2026-02-15 09:00", "case", 502, "agent_replied", {"agent": "小李"}),
    ("2026-02-15 09:10", "case", 503, "agent_replied", {"agent": "小陳"}),
    ("2026-02-15 19:00", "case", 501, "agent_replied", {"agent": "Amy"}),
    # The reopened promises' watches come due after the replies: nothing more is owed.
    ("2026-02-15 22:45", "", 0, "", {"note": "the reopened cases' reply times have passed"}),
]
TIMELINE.sort(key=lambda step: step[0])
