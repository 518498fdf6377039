"""The preview gallery of `notifier web`, through a real server, a real HTTP client and a real browser."""

from __future__ import annotations

import contextlib
import email
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from markupsafe import escape
from starlette.applications import Starlette

from notifier.compose import links
from notifier.compose.rendering import Renderer
from notifier.config.settings import Secret, Settings
from notifier.core.locale import LOCALES
from notifier.db.engine import make_engine
from notifier.tools.checking import preview
from notifier.tools.web import create_app
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

KEY = "gallery-test-key"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,2000",
    # A sandboxed iframe gets a renderer process of its own, which the headless screenshot does not
    # always wait for (about one shot in three showed an empty frame); in-process it is drawn every time.
    # The sandbox attribute itself still applies.
    "--disable-features=IsolateSandboxedIframes",
]


@dataclass
class Site:
    http: httpx.Client
    settings: Settings
    base: str

    @property
    def templates(self) -> Path:
        return self.settings.templates


def _settings(db_url: str, project: Path, smtp_url: str) -> Settings:
    return replace(
        Settings(),
        database_url=Secret(db_url),
        smtp_url=Secret(smtp_url),
        rules=project / "rules.yaml",
        templates=project / "templates",
        secret_key=Secret(KEY),
        smtp_timeout=timedelta(seconds=5),
    )


@contextlib.contextmanager
def _start(settings: Settings, engine: sa.Engine, serve: Callable[[Starlette], str]) -> Iterator[Site]:
    base = serve(create_app(settings, engine=engine))
    with httpx.Client(base_url=base, timeout=30) as http:
        yield Site(http, settings, base)


@pytest.fixture
def site(
    sqlite_url: str, project: Path, smtp_server: FaultySmtpServer, serve: Callable[[Starlette], str]
) -> Iterator[Site]:
    """The web app on sample data (SQLite; the database is not read), with an editable copy of templates/."""
    engine = make_engine(sqlite_url)
    with _start(_settings(sqlite_url, project, smtp_server.url), engine, serve) as site:
        yield site
    engine.dispose()


def _cell(page: str, template: str, locale: str) -> str:
    """The gallery's table cell for one template in one locale."""
    found = re.search(rf'<td data-template="{template}" data-locale="{locale}">(.*?)</td>', page, re.S)
    assert found, f"no cell for {template} {locale}"
    return found.group(1)


def _headers(page: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", page))


# --- the gallery and the detail pages -------------------------------------------------------------


def test_the_gallery_lists_every_template_in_every_locale_with_its_subject(site: Site) -> None:
    page = site.http.get("/preview")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    templates = Renderer(site.templates).template_names()
    assert {"order_confirmation", "price_change_warning", "case_follow_up"} <= set(templates)
    for template in templates:
        for locale in LOCALES:
            assert re.match(
                rf'\s*<a href="/preview/{template}/{locale}">[^<]+</a>', _cell(page.text, template, locale)
            )
    for template in ("order_confirmation", "order_delivered", "price_change_warning", "case_follow_up"):
        for locale in LOCALES:  # the subject `notifier preview` renders
            subject = preview(site.settings, template, locale=locale).subject
            assert f'<a href="/preview/{template}/{locale}">{escape(subject)}</a>' in _cell(
                page.text, template, locale
            )
    assert '<input name="order" inputmode="numeric"' in page.text  # the form for real data
    assert "No warnings" in _cell(page.text, "order_confirmation", "zh-TW")


def test_a_detail_page_shows_subject_sandboxed_html_text_and_headers(site: Site) -> None:
    rendered = preview(site.settings, "order_confirmation", locale="zh-TW")
    page = site.http.get("/preview/order_confirmation/zh-TW")
    assert page.status_code == 200
    assert f"<h2>{escape(rendered.subject)}</h2>" in page.text
    # The HTML part is escaped into srcdoc of an iframe that may run no script at all.
    assert f'<iframe sandbox title="HTML part" srcdoc="{escape(rendered.html)}">' in page.text
    assert "<table" not in page.text.split("<iframe", 1)[1].split("</iframe>", 1)[0]
    assert f"<pre>{escape(rendered.text)}</pre>" in page.text
    headers = _headers(page.text)
    assert headers["From"] == str(escape("Blossom & Co <care@blossom.example>"))
    assert headers["To"] == str(escape("林美玲 <meiling.lin@example.com>"))
    assert headers["Subject"] == str(escape(rendered.subject))
    assert re.fullmatch(r"&lt;[0-9a-f]{32}@blossom\.example&gt;", headers["Message-ID"])
    assert "List-Unsubscribe" not in headers  # transactional
    # The page itself runs only its own live-reload script.
    policy = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce and f'<script nonce="{nonce.group(1)}">' in page.text and "/preview/version" in page.text
    assert "default-src 'none'" in policy


def test_only_the_marketing_template_carries_list_unsubscribe(site: Site) -> None:
    page = site.http.get("/preview/price_change_warning/en")
    headers = _headers(page.text)
    url = links.unsubscribe_url(site.settings.public_url, KEY, "mei.lin@example.com")
    assert headers["List-Unsubscribe"] == str(
        escape(f"<{url}>, <mailto:care@blossom.example?subject=unsubscribe>")
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    gallery = site.http.get("/preview").text
    tags = dict(re.findall(r'<div class="name">([^<]+)</div>(.*?)</th>', gallery, re.S))
    assert "marketing" in tags["price_change_warning"] and "marketing" not in tags["order_confirmation"]
    for template in ("order_confirmation", "order_dispatched", "case_received", "case_follow_up"):
        assert "List-Unsubscribe" not in _headers(site.http.get(f"/preview/{template}/en").text)


def test_the_raw_html_is_served_under_a_strict_content_security_policy(site: Site) -> None:
    reply = site.http.get("/preview/order_delivered/zh-CN/html")
    assert reply.status_code == 200
    assert reply.text == preview(site.settings, "order_delivered", locale="zh-CN").html
    assert reply.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:"
    )


def test_unknown_template_or_locale_is_a_404_page(site: Site) -> None:
    for path in ("/preview/no_such/en", "/preview/order_confirmation/fr", "/preview/..%2Frules/en/html"):
        reply = site.http.get(path)
        assert reply.status_code == 404, path


# --- warnings -------------------------------------------------------------------------------------


def test_every_kind_of_warning_shows_and_the_pages_still_answer(site: Site) -> None:
    folder = site.templates
    for part in ("subject.txt", "html", "txt"):
        (folder / "order_dispatched" / f"zh-CN.{part}").unlink()  # no Simplified Chinese
    (folder / "order_delivered" / "en.txt").unlink()  # no hand-written text part
    long_subject = "Your <b>roses</b> & more: " + "a very long subject line " * 4
    (folder / "thank_you" / "en.subject.txt").write_text(long_subject, encoding="utf-8")
    (folder / "case_received" / "zh-TW.html").write_text(
        '{% extends "_layout.html" %}\n{% block content %}\n'
        "<p>{{ order.no_such_field }}</p>\n{% endblock %}\n",
        encoding="utf-8",
    )

    page = site.http.get("/preview")
    assert page.status_code == 200
    assert "No zh-CN translation: these customers get the en version." in _cell(
        page.text, "order_dispatched", "zh-CN"
    )
    assert "No hand-written text part (en.txt): it is derived from the HTML." in _cell(
        page.text, "order_delivered", "en"
    )
    long_cell = _cell(page.text, "thank_you", "en")
    assert f"The subject is {len(long_subject.strip())} characters" in long_cell
    assert "&lt;b&gt;roses&lt;/b&gt; &amp; more" in long_cell and "<b>roses" not in page.text
    broken = _cell(page.text, "case_received", "zh-TW")
    assert "(does not render)" in broken
    assert re.search(r"case_received/zh-TW\.html:3: .*no_such_field", broken), broken
    assert "No warnings" in _cell(page.text, "case_received", "en")

    detail = site.http.get("/preview/case_received/zh-TW")
    assert detail.status_code == 200 and "This message does not render" in detail.text
    assert "case_received/zh-TW.html:3" in detail.text and "<iframe" not in detail.text
    raw = site.http.get("/preview/case_received/zh-TW/html")
    assert raw.status_code == 422 and "no_such_field" in raw.text
    fallback = site.http.get("/preview/order_dispatched/zh-CN")
    assert fallback.status_code == 200 and "these customers get the en version" in fallback.text


def test_a_syntax_error_is_shown_on_the_page_not_as_a_server_error(site: Site) -> None:
    (site.templates / "order_confirmation" / "en.html").write_text("{% if %}\n", encoding="utf-8")
    page = site.http.get("/preview")
    assert page.status_code == 200
    assert re.search(r'<p class="note err">[^<]*order_confirmation/en\.html:1: syntax error', page.text)
    assert "syntax error" in _cell(page.text, "order_confirmation", "en")
    assert "No warnings" in _cell(page.text, "order_dispatched", "en")  # the rest still render
    assert site.http.get("/preview/order_confirmation/en").status_code == 200


# --- send a test to me ----------------------------------------------------------------------------


def test_send_a_test_delivers_exactly_one_message_to_that_address(
    site: Site, smtp_server: FaultySmtpServer
) -> None:
    reply = site.http.post("/preview/order_confirmation/zh-TW/send", data={"email": "me@blossom.example"})
    assert reply.status_code == 200, reply.text
    assert "Sent to me@blossom.example" in reply.text and "accepted it (250" in reply.text
    [received] = smtp_server.messages
    assert received.rcpt_tos == ("me@blossom.example",) and received.mail_from == "care@blossom.example"
    message = email.message_from_bytes(received.data, policy=default_policy)
    assert message["To"] == "me@blossom.example"
    assert message["Subject"] == preview(site.settings, "order_confirmation", locale="zh-TW").subject


def test_send_a_test_of_the_marketing_template_unsubscribes_only_the_tester(
    site: Site, smtp_server: FaultySmtpServer
) -> None:
    reply = site.http.post("/preview/price_change_warning/en/send", data={"email": "me@blossom.example"})
    assert reply.status_code == 200
    [received] = smtp_server.messages
    message = email.message_from_bytes(received.data, policy=default_policy)
    assert (
        links.unsubscribe_url(site.settings.public_url, KEY, "me@blossom.example")
        in message["List-Unsubscribe"]
    )


def test_a_bad_address_is_refused_with_a_reason_and_nothing_is_sent(
    site: Site, smtp_server: FaultySmtpServer
) -> None:
    for bad, reason in (("not an address", "contains a space"), ("me@", "has no domain"), ("", "is empty")):
        reply = site.http.post("/preview/order_confirmation/en/send", data={"email": bad})
        assert reply.status_code == 400 and "Not sent" in reply.text and reason in reply.text, reply.text
    # Another site cannot make a visitor's browser send mail.
    cross = site.http.post(
        "/preview/order_confirmation/en/send",
        data={"email": "me@x.example"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    assert smtp_server.messages == []


def test_a_refusing_smtp_server_is_reported_in_plain_words(site: Site, smtp_server: FaultySmtpServer) -> None:
    smtp_server.fail(550, on="RCPT")
    reply = site.http.post("/preview/order_confirmation/en/send", data={"email": "gone@blossom.example"})
    assert reply.status_code == 502
    assert "Not sent: the mail server at" in reply.text and "refused it (550" in reply.text


# --- live reload ----------------------------------------------------------------------------------


def test_the_version_changes_when_a_template_is_edited(site: Site) -> None:
    first = site.http.get("/preview/version")
    assert first.status_code == 200 and first.text == site.http.get("/preview/version").text
    page = site.http.get("/preview/order_confirmation/en").text
    assert f'const seen = "{first.text}"' in page  # the page polls against the version it was made from
    subject = site.templates / "order_confirmation" / "en.subject.txt"
    subject.write_text("Order {{ order.number }} is confirmed, thank you\n", encoding="utf-8")
    second = site.http.get("/preview/version").text
    assert second != first.text
    assert "Order 1042 is confirmed, thank you" in site.http.get("/preview/order_confirmation/en").text
    (site.templates / "order_confirmation" / "notes.md").write_text("a new file", encoding="utf-8")
    assert site.http.get("/preview/version").text != second


# --- real data ------------------------------------------------------------------------------------


def test_a_real_order_renders_that_orders_data(
    settings: Settings, engine: sa.Engine, shop: Shop, serve: Callable[[Starlette], str]
) -> None:
    customer = shop.customer(name="Chen Jia-hui", email="jiahui@example.com", locale="zh-TW")
    peonies = shop.product(name="Pink peonies in a jar", price="88.00", currency="TWD")
    order = shop.order(customer, items=[(peonies, 2)], currency="TWD", ship_to_address="88 Orchid Road")
    shop.event("order", order, "placed")
    with _start(settings, engine, serve) as site:
        _check_real_order(site, order)


def _check_real_order(site: Site, order: int) -> None:
    page = site.http.get(f"/preview/order_confirmation/en?order={order}")
    assert page.status_code == 200
    assert "Pink peonies in a jar" in page.text and "88 Orchid Road" in page.text and str(order) in page.text
    assert "Red roses, a dozen" not in page.text  # not the sample order
    assert _headers(page.text)["To"] == str(escape("Chen Jia-hui <jiahui@example.com>"))
    assert f'action="/preview/order_confirmation/en/send?order={order}"' in page.text
    gallery = site.http.get(f"/preview?order={order}")
    assert gallery.status_code == 200 and re.search(rf"with\s+order {order}\b", gallery.text)
    assert f'href="/preview/order_confirmation/zh-TW?order={order}"' in gallery.text
    case_cell = _cell(gallery.text, "case_received", "en")  # an order id cannot fill a case message
    assert "(does not render)" in case_cell and "try ?case=ID" in case_cell
    missing = site.http.get("/preview/order_confirmation/en?order=999999")
    assert missing.status_code == 200 and "cannot use order data" in missing.text
    junk = site.http.get("/preview/order_confirmation/en?order=abc")
    assert junk.status_code == 200 and "is not an id" in junk.text


# --- in a real browser ----------------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI") or os.environ.get("NOTIFIER_REQUIRE_BROWSER"):
        pytest.fail("chromium is required here (CI or NOTIFIER_REQUIRE_BROWSER) but is not installed")
    pytest.skip("chromium is not installed (apt-get install -y chromium); this browser test runs in CI")


def _browser(chromium: str, profile: Path, *args: str) -> str:
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB pixels) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed, header = 8, b"", b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        header = body if kind == b"IHDR" else header
        compressed += body if kind == b"IDAT" else b""
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, "an unexpected kind of PNG"
    size = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(compressed), width * size
    previous, rows = bytearray(stride), []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 2:  # Up, the commonest: one pass without the general loop
            line = bytearray((a + b) & 255 for a, b in zip(line, previous, strict=True))
        for i in range(stride) if kind in (1, 3, 4) else ():
            left = line[i - size] if i >= size else 0
            up, corner = previous[i], (previous[i - size] if i >= size else 0)
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            else:  # Paeth
                guess = left + up - corner
                near = min(
                    (abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner)
                )
                line[i] = (line[i] + near[2]) & 255
        rows.append(bytes(line) if size == 3 else b"".join(line[x : x + 3] for x in range(0, stride, 4)))
        previous = line
    return width, height, rows


def _colours(rows: list[bytes], left: int = 0, right: int | None = None) -> Counter[bytes]:
    return Counter(row[x : x + 3] for row in rows for x in range(left * 3, (right or len(row) // 3) * 3, 3))


def test_in_a_real_browser_every_entry_renders_and_the_pages_are_not_blank(
    site: Site, tmp_path: Path
) -> None:
    chromium = _chromium()
    dom = _browser(chromium, tmp_path / "profile", "--dump-dom", f"{site.base}/preview")
    for template in Renderer(site.templates).template_names():
        assert f'<div class="name">{template}</div>' in dom
        for locale in LOCALES:
            assert f'data-template="{template}" data-locale="{locale}"' in dom
            assert f'href="/preview/{template}/{locale}"' in dom

    shots = {"gallery": "/preview", "detail": "/preview/order_confirmation/zh-TW"}
    pictures = {}
    for name, path in shots.items():
        _browser(chromium, tmp_path / "profile", f"--screenshot={tmp_path / name}.png", site.base + path)
        width, height, rows = pictures[name] = _png((tmp_path / f"{name}.png").read_bytes())
        assert (width, height) == (1280, 2000)
        colours = _colours(rows[::2])
        assert len(colours) > 50, f"{name}: only {len(colours)} colours"
        commonest = colours.most_common(1)[0]
        assert commonest[0] != b"\xff\xff\xff" or commonest[1] < 0.9 * sum(colours.values()), name
        assert rows[30].count(b"\xb0\x3a\x5b") > 100, f"{name}: the header bar is missing"
    # The email's own HTML was drawn inside the sandboxed iframe (left column, below the headings).
    rows = pictures["detail"][2]
    assert len(_colours(rows[300:1000:3], 40, 660)) > 20, "the iframe looks empty"
