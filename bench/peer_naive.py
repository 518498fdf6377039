"""The naive peer: what a reasonable developer writes first, one order at a time.

    .venv/bin/python bench/peer_naive.py --db shop.db --port 2525 [--templates templates]

For every `order.placed` event, in id order: query the order, its customer and its items
with sqlite3; render the same template files notifier uses (order_confirmation en.subject.txt,
en.html, en.txt, with notifier's own Renderer, so the same sandbox and CSS inlining); build
the message with the stdlib's `email.message.EmailMessage` (default policy); hand it to one
reused `smtplib.SMTP` connection, sequentially. No outbox, no retries, no bookkeeping.
Prints one JSON line: {"sent": N, "seconds": time of the loop}.
"""

from __future__ import annotations

import argparse
import json
import smtplib
import sqlite3
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

from notifier.compose.rendering import Renderer

BRAND = {"name": "Blossom & Co", "email": "care@blossom.example"}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def context_for(db: sqlite3.Connection, event: sqlite3.Row) -> dict[str, Any]:
    order = db.execute("SELECT * FROM orders WHERE id = ?", (event["order_id"],)).fetchone()
    customer = db.execute("SELECT * FROM customers WHERE id = ?", (order["customer_id"],)).fetchone()
    rows = db.execute(
        "SELECT i.product_id, i.quantity, i.unit_price, p.sku, p.name FROM order_items i "
        "JOIN products p ON p.id = i.product_id WHERE i.order_id = ? ORDER BY i.id",
        (order["id"],),
    ).fetchall()
    items = [
        {"product_id": r["product_id"], "sku": r["sku"], "name": r["name"], "quantity": r["quantity"],
         "unit_price": Decimal(str(r["unit_price"])),
         "line_total": Decimal(str(r["unit_price"])) * r["quantity"]}
        for r in rows
    ]
    return {
        "customer": dict(customer),
        "order": {**dict(order), "number": str(order["id"]), "total": Decimal(str(order["total"])),
                  "placed_at": _when(order["placed_at"]),
                  "promised_date": date.fromisoformat(order["promised_date"])},
        "items": items,
        "event": {"id": event["id"], "type": "order.placed", "occurred_at": _when(event["occurred_at"]),
                  "data": {}},
        "case": None, "product": None, "reply_by": None,
        "links": {"unsubscribe": None, "not_solved": None},
        "brand": BRAND, "timezone": customer["timezone"], "now": datetime.now(UTC),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--templates", default=str(Path(__file__).resolve().parent.parent / "templates"))
    args = parser.parse_args()

    db = sqlite3.connect(args.db)
    db.row_factory = sqlite3.Row
    renderer = Renderer(Path(args.templates))
    started = time.perf_counter()
    sent = 0
    with smtplib.SMTP("127.0.0.1", args.port) as smtp:
        events = db.execute("SELECT * FROM order_events WHERE type = 'placed' ORDER BY id").fetchall()
        for event in events:
            context = context_for(db, event)
            rendered = renderer.render("order_confirmation", "en", context)
            customer = context["customer"]
            message = EmailMessage()
            message["From"] = formataddr((BRAND["name"], BRAND["email"]))
            message["To"] = formataddr((customer["name"], customer["email"]))
            message["Subject"] = rendered.subject
            message["Date"] = format_datetime(datetime.now(UTC))
            message["Message-ID"] = make_msgid(domain="blossom.example")
            message.set_content(rendered.text)
            message.add_alternative(rendered.html, subtype="html")
            smtp.send_message(message)
            sent += 1
    print(json.dumps({"sent": sent, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
