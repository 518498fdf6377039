"""How long notifier.compose.mail.build_message takes per message.

    .venv/bin/python bench/bench_mail.py

Builds 20,000 distinct messages (names, subjects and Message-IDs vary; about 3 KB of
HTML each) and prints microseconds per message. For scale it also times the stdlib's
EmailMessage building an equivalent message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP

from notifier.compose.mail import Envelope, Rendered, build_message, make_message_id

COUNT = 20_000
STDLIB_COUNT = 1_000
FROM = "Blossom & Co <care@blossom.example>"
NAMES = ["Ms Lin", "林美玲", "O'Brien, Pat", "陳大文", "Zoë Ångström", None]

ROW = """\
      <tr>
        <td style="padding:8px 0;border-bottom:1px solid #eee">{item}</td>
        <td style="padding:8px 0;border-bottom:1px solid #eee;text-align:right">{qty}</td>
        <td style="padding:8px 0;border-bottom:1px solid #eee;text-align:right">{price}</td>
      </tr>
"""
HTML = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your order {number}</title></head>
<body style="margin:0;padding:0;background:#f6f3ef;font-family:Georgia,serif;color:#333">
  <div style="max-width:600px;margin:0 auto;padding:24px;background:#fff">
    <h1 style="font-size:22px;color:#7a2e3a">Your flowers are on the truck</h1>
    <p>Dear {name},</p>
    <p>Order <strong>{number}</strong> left our shop at 08:40 and is on its way to
    <em>12 Garden Lane, Taipei 106</em>. We will email you again the moment it is signed
    for, with the time and the name of the person who received it.</p>
    <table style="width:100%;border-collapse:collapse;font-size:14px">
{rows}    </table>
    <p style="font-size:16px">Total: <strong>NT$ 3,280</strong></p>
    <p>Carrier: Swift Couriers &mdash; tracking
    <a href="https://carrier.example/track/{number}">{number}</a></p>
    <p>Your flowers were cut this morning and packed in water; please put them in a
    vase within two hours of arrival and trim the stems by 2 cm.</p>
    <p>If anything looks wrong, reply to this email and a florist will get back to you
    by 18:00 today.</p>
    <p style="color:#888;font-size:12px">Blossom &amp; Co &middot; 8 Market Street</p>
  </div>
</body></html>
"""
ITEMS = [("Red roses, dozen", 1, "NT$ 1,680"), ("玫瑰花束 (粉)", 2, "NT$ 1,200"),
         ("Greeting card", 1, "NT$ 400")]


def sample(i: int) -> tuple[Rendered, Envelope]:
    number = f"1{i:06d}"
    name = NAMES[i % len(NAMES)]
    rows = "".join(ROW.format(item=item, qty=qty, price=price) for item, qty, price in ITEMS * 2)
    html = HTML.format(number=number, name=name or "customer", rows=rows)
    text = f"Dear {name or 'customer'},\n\nOrder {number} is on the truck.\n" * 8
    rendered = Rendered(subject=f"Your order {number} is on its way / 您的訂單已出貨",
                        html=html, text=text)
    envelope = Envelope(
        from_header=FROM, to_name=name, to_address=f"customer{i}@example.com",
        message_id=make_message_id(f"order.shipped:order:{number}", "blossom.example"),
        date=datetime(2025, 2, 10, tzinfo=UTC) + timedelta(seconds=i),
        extra_headers=(("List-Unsubscribe", f"<https://blossom.example/u/{i:032x}>"),
                       ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
    )
    return rendered, envelope


def stdlib_message(rendered: Rendered, envelope: Envelope) -> bytes:
    message = EmailMessage()
    message["From"] = envelope.from_header
    message["To"] = envelope.to_address
    message["Subject"] = rendered.subject
    message["Date"] = envelope.date
    message["Message-ID"] = envelope.message_id
    for name, value in envelope.extra_headers:
        message[name] = value
    message.set_content(rendered.text, cte="base64")
    message.add_alternative(rendered.html, subtype="html", cte="base64")
    return message.as_bytes(policy=SMTP)


def per_message_us(build: Callable[[Rendered, Envelope], bytes],
                   samples: list[tuple[Rendered, Envelope]]) -> float:
    started = time.perf_counter()
    for rendered, envelope in samples:
        build(rendered, envelope)
    return (time.perf_counter() - started) / len(samples) * 1e6


def main() -> None:
    samples = [sample(i) for i in range(COUNT)]
    size = sum(len(r.html.encode()) for r, _ in samples) / COUNT
    built = build_message(*samples[0])
    ours = per_message_us(build_message, samples)
    stdlib = per_message_us(stdlib_message, samples[:STDLIB_COUNT])
    print(f"{COUNT} messages, HTML {size / 1024:.1f} KB, message {len(built) / 1024:.1f} KB")
    print(f"notifier.compose.mail.build_message: {ours:7.1f} µs/message ({1e6 / ours:,.0f}/s)")
    print(f"stdlib EmailMessage:         {stdlib:7.1f} µs/message ({1e6 / stdlib:,.0f}/s)")


if __name__ == "__main__":
    main()
