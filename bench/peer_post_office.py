"""The django-post-office peer: a queue in the database, sent by its own batch sender.

    bench/.venv/bin/python bench/peer_post_office.py --db shop.db --port 2525 \
        --templates DIR --workdir DIR

Runs in its own virtualenv (bench/.venv: Django, django-post-office), never in notifier's.
Configures Django in-process (an SQLite file in --workdir, INSTALLED_APPS post_office, the
SMTP backend pointed at the sink), migrates, stores one EmailTemplate whose subject, HTML and
text are notifier's rendered order confirmation turned into Django template syntax
(`write_templates`, run from notifier's virtualenv, makes those files: same markup with CSS
already inlined, three items in a loop). Then, untimed, it reads every `order.placed` event
of the shop database and queues one mail each with `mail.send_many(...,
template=..., context=..., priority='medium')` (post-office renders at queue time), and
times `send_queued_mail_until_done()` with its defaults (batches of 100, 5 sending threads).
Prints one JSON line: sent, queue_seconds, send_seconds, send_cpu_seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sqlite3
import time
from pathlib import Path
from typing import Any

SAMPLE_ITEMS = ("Red roses, a dozen", "Valentine's card", "Clear glass vase")


def write_templates(directory: Path) -> None:
    """notifier's en order confirmation (sample data) as Django templates: subject, html, txt."""
    from notifier.compose.rendering import Renderer
    from notifier.compose.samples import sample_context

    root = Path(__file__).resolve().parent.parent / "templates"
    rendered = Renderer(root).render("order_confirmation", "en", sample_context("order.placed", "en"))
    html = rendered.html
    first = html.rfind("<tr>", 0, html.index(SAMPLE_ITEMS[0]))
    end = html.index("</tr>", html.index(SAMPLE_ITEMS[2])) + len("</tr>\n")
    row = html[first : html.index("</tr>", first) + len("</tr>\n")]
    row = (row.replace(f">{SAMPLE_ITEMS[0]}<", ">{{ item.name }}<")
           .replace(">1</td>", ">{{ item.quantity }}</td>").replace(">£45.00<", ">{{ item.line_total }}<"))
    html = html[:first] + "{% for item in items %}" + row + "{% endfor %}\n" + html[end:]
    html = re.sub(r"<strong>Alex Morgan</strong><br>\n.*?United Kingdom",
                  "<strong>{{ ship_to_name }}</strong><br>\n{{ ship_to_address|linebreaksbr }}",
                  html, flags=re.S)
    text = re.sub(r"(?m)^- .*\n(?:- .*\n)*", "{% for item in items %}- {{ item.name }} \u00d7 "
                  "{{ item.quantity }}: {{ item.line_total }}\n{% endfor %}", rendered.text, count=1)
    text = re.sub(r"Deliver to: Alex Morgan\n(?: {12}.*\n)+",
                  "Deliver to: {{ ship_to_name }}\n{{ ship_to_address }}\n", text)
    text = "{% autoescape off %}" + text + "{% endautoescape %}"
    for sample, field in (("Ms Lin", "name"), ("1042", "number"), ("£70.00", "total"),
                          ("Friday 13 February 2026", "promised"), ("Friday 13 February", "promised")):
        html, text = html.replace(sample, f"{{{{ {field} }}}}"), text.replace(sample, f"{{{{ {field} }}}}")
    assert not any(s in html or s in text for s in (*SAMPLE_ITEMS, "Alex Morgan", "1042")), "conversion"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "subject.txt").write_text("Order {{ number }} confirmed", encoding="utf-8")
    (directory / "body.html").write_text(html, encoding="utf-8")
    (directory / "body.txt").write_text(text, encoding="utf-8")


def contexts(shop: str) -> list[tuple[str, dict[str, Any]]]:
    db = sqlite3.connect(shop)
    db.row_factory = sqlite3.Row
    result = []
    for event in db.execute("SELECT order_id FROM order_events WHERE type = 'placed' ORDER BY id").fetchall():
        order = db.execute("SELECT * FROM orders WHERE id = ?", (event["order_id"],)).fetchone()
        customer = db.execute("SELECT * FROM customers WHERE id = ?", (order["customer_id"],)).fetchone()
        items = db.execute("SELECT i.quantity, i.unit_price, p.name FROM order_items i JOIN products p "
                           "ON p.id = i.product_id WHERE i.order_id = ? ORDER BY i.id", (order["id"],))
        money = "{:.2f} " + order["currency"]
        result.append((customer["email"], {
            "name": customer["name"], "number": str(order["id"]), "total": money.format(order["total"]),
            "items": [{"name": r["name"], "quantity": r["quantity"],
                       "line_total": money.format(r["unit_price"] * r["quantity"])} for r in items],
            "ship_to_name": order["ship_to_name"], "ship_to_address": order["ship_to_address"],
            "promised": order["promised_date"],
        }))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--templates", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()

    import django
    from django.conf import settings
    from django.core.management import call_command

    args.workdir.mkdir(parents=True, exist_ok=True)
    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(args.workdir / "po.db")}},
        INSTALLED_APPS=["django.contrib.contenttypes", "post_office"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=args.port, DEFAULT_FROM_EMAIL="care@blossom.example",
        USE_TZ=True, LOGGING_CONFIG=None,
        POST_OFFICE={"BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"},
                     "DEFAULT_PRIORITY": "medium", "MESSAGE_ID_ENABLED": True,
                     "MESSAGE_ID_FQDN": "blossom.example"},
    )
    django.setup()
    call_command("migrate", verbosity=0)
    import logging

    from post_office import mail
    from post_office.models import EmailTemplate

    logging.getLogger("post_office").setLevel(logging.WARNING)
    template = EmailTemplate.objects.create(
        name="order_confirmation",
        subject=(args.templates / "subject.txt").read_text(encoding="utf-8"),
        html_content=(args.templates / "body.html").read_text(encoding="utf-8"),
        content=(args.templates / "body.txt").read_text(encoding="utf-8"),
    )
    started = time.perf_counter()
    queue = contexts(args.db)
    for start in range(0, len(queue), 500):
        mail.send_many([
            {"recipients": [email], "sender": "Blossom & Co <care@blossom.example>", "template": template,
             "context": context, "priority": "medium"}
            for email, context in queue[start : start + 500]
        ])
    queued = time.perf_counter() - started
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    mail.send_queued_mail_until_done(lockfile=str(args.workdir / "post_office"))
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    print(json.dumps({"sent": len(queue), "queue_seconds": queued, "send_seconds": seconds,
                      "send_cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
