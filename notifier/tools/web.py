"""`notifier web`: the pages that links in emails point to.

`/unsubscribe/{token}` is the RFC 8058 one-click unsubscribe; `/not-solved/{token}` lets a customer
say a resolved case is not solved. A GET only shows a confirmation page, because mail scanners and
link previews follow every link they see; the change happens on POST (a mail client's one-click
request, or the page's button). Tokens are signed (notifier.compose.links): a link acts only on its own
address or case.
"""

# ruff: noqa: RUF001  (the Chinese pages use full-width punctuation on purpose)
from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs

import sqlalchemy as sa
import uvicorn
from jinja2 import Environment
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from notifier.compose import links
from notifier.config.rules_file import load_rules
from notifier.config.settings import Settings
from notifier.core.context import brand_of
from notifier.core.locale import normalize_locale
from notifier.core.timing import utcnow
from notifier.db import store
from notifier.db.engine import make_engine
from notifier.db.store import template_versions
from notifier.db.subjects import CASES, CUSTOMERS
from notifier.errors import ConfigError, NotifierError
from notifier.run.metrics import metrics_app
from notifier.tools.editor import editor_routes
from notifier.tools.gallery import gallery_routes
from notifier.tools.web_auth import start_refusal

log = logging.getLogger(__name__)

NOT_SOLVED = "not_solved"
# A second "not solved" for the same case this soon is a double click, not new news.
REPEAT_WINDOW = timedelta(minutes=10)
MAX_BODY = 64 * 1024  # a comment form is small; refuse to buffer anything bigger
MAX_COMMENT = 4000
_LOCK_NAMESPACE = 0x4E4F54  # PostgreSQL advisory-lock class for "not solved" per case
# The token is in the URL: keep the pages out of caches, search indexes and Referer headers.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
NO_KEY = "Links cannot be checked: NOTIFIER_SECRET_KEY is not set (the key the daemon signs them with).\n"
DB_DOWN = "We could not reach our records just now. Nothing was changed; please try the link again soon.\n"

LOCALES = ("en", "zh-CN", "zh-TW")
# The words of every page as (en, zh-CN, zh-TW). `{address}`, `{case}`, `{team}` are filled in escaped.
_PHRASES: dict[str, tuple[str, str, str]] = {
    "invalid_title": ("This link is not valid", "此链接无效", "此連結無效"),
    "invalid": (
        "It may have been cut short or changed on the way. Please open it again from the email; if it "
        "still does not work, reply to that email and we will sort it out for you.",
        "链接可能在传递过程中被截断或改动了。请从邮件中重新打开；如果仍然不行，直接回复那封邮件，我们会帮您处理。",
        "連結可能在傳送過程中被截斷或更動了。請從郵件中重新開啟；如果仍然不行，直接回覆那封郵件，我們會協助您處理。",
    ),
    "unsub_title": ("Stop marketing emails?", "不再接收营销邮件？", "不再接收行銷郵件？"),
    "unsub_ask": (
        "We will stop sending marketing emails to {address}.",
        "我们将不再向 {address} 发送营销邮件。",
        "我們將不再寄送行銷郵件至 {address}。",
    ),
    "unsub_keep": (
        "Emails about your orders, deliveries and service cases still come, so you always know "
        "where things stand.",
        "有关订单、配送和服务单的邮件仍会照常发送，让您随时了解进展。",
        "關於訂單、配送和客服案件的郵件仍會照常寄送，讓您隨時掌握進度。",
    ),
    "unsub_button": ("Unsubscribe", "退订", "取消訂閱"),
    "unsub_done_title": ("You are unsubscribed", "您已退订", "您已取消訂閱"),
    "unsub_done": (
        "You will get no more marketing emails from us at {address}.",
        "我们不会再向 {address} 发送营销邮件。",
        "我們不會再寄送行銷郵件至 {address}。",
    ),
    "ns_title": ("Is your problem not solved?", "问题还没解决？", "問題還沒解決？"),
    "ns_ask": (
        "Tell us that case {case} is not solved, and {team} will look at it again and get back to you.",
        "告诉我们服务单 {case} 的问题还没有解决，{team}会重新查看并主动联系您。",
        "告訴我們案件 {case} 的問題還沒解決，{team}會重新檢視並主動與您聯絡。",
    ),
    "ns_comment": ("What is still wrong? (optional)", "还有哪里不对？（选填）", "還有哪裡不對？（選填）"),
    "ns_button": ("My problem is not solved", "问题还没解决", "問題還沒解決"),
    "ns_done_title": ("Thank you for telling us", "谢谢您告诉我们", "謝謝您告訴我們"),
    "ns_done": (
        "We have noted it on case {case}. {team} will look at it again and get back to you by email.",
        "我们已记下服务单 {case} 的情况。{team}会重新查看，并通过邮件与您联系。",
        "我們已記下案件 {case} 的情況。{team}會重新檢視，並透過郵件與您聯絡。",
    ),
    "team": ("The {brand} team", "{brand} 团队", "{brand} 團隊"),
    "our_team": ("Our customer care team", "我们的客服团队", "我們的客服團隊"),
}
WORDS = {locale: {key: texts[i] for key, texts in _PHRASES.items()} for i, locale in enumerate(LOCALES)}

_PAGE = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{{ title }}</title>
<style>body{margin:0;background:#f6f4f1;color:#222;font:16px/1.55 system-ui,sans-serif}
main{max-width:34rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:8px}h1{font-size:1.4rem}
blockquote{margin:1rem 0;padding:.5rem 1rem;background:#f6f4f1;white-space:pre-wrap}
textarea{width:100%;box-sizing:border-box;font:inherit;margin:.5rem 0 1rem}button{font:inherit}
button{padding:.6rem 1.2rem;border:0;border-radius:6px;background:#b03a5b;color:#fff}</style></head>
<body><main><h1>{{ title }}</h1>
{% for paragraph in paragraphs %}<p>{{ paragraph }}</p>
{% endfor %}{% if quote %}<blockquote>{{ quote }}</blockquote>
{% endif %}{% if button %}<form method="post" action="{{ action }}">
{% if comment_label %}<label for="comment">{{ comment_label }}</label>
<textarea id="comment" name="comment" rows="4" maxlength="{{ max_comment }}"></textarea>
{% endif %}<button type="submit">{{ button }}</button></form>
{% endif %}</main></body></html>
""",
    globals={"max_comment": MAX_COMMENT},
)


def _say(words: dict[str, str], key: str, **values: str) -> Markup:
    """One localized sentence with its values escaped (our words are trusted, values are not)."""
    return Markup(words[key]).format(**values)


def _brand_name(settings: Settings) -> str | None:
    """The sender's name from rules.yaml, so pages say who will answer; None if unreadable."""
    try:
        rules = load_rules(settings.rules, template_exists=lambda _name: True, capture=settings.capture)
        return brand_of(rules)["name"] or None
    except (NotifierError, OSError, ValueError) as exc:  # cosmetic: the pages work without it
        log.info("pages will not name the team: %s", exc)
        return None


def _accepted_locale(request: Request) -> str:
    """The first language in Accept-Language we have words for, else en (browsers list best first)."""
    for item in request.headers.get("accept-language", "").split(","):
        tag = item.split(";")[0].strip()
        if tag and tag != "*" and normalize_locale(tag) in WORDS:
            return normalize_locale(tag)
    return "en"


class _LinkPages:
    """The routes (async) and the database work they hand to the thread pool (sync)."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.secret = settings.secret_key.reveal() if settings.secret_key else None
        self.engine = engine
        self.brand = _brand_name(settings)

    def page(
        self, request: Request, locale: str, title: str, *paragraphs: str, status: int = 200, **parts: object
    ) -> HTMLResponse:
        html = _PAGE.render(parts, lang=locale, title=title, paragraphs=paragraphs, action=request.url.path)
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    def verify(self, request: Request, purpose: str) -> str | Response:
        """The token's value, or the response that refuses it."""
        if self.secret is None:
            return PlainTextResponse(NO_KEY, status_code=503, headers=_HEADERS)
        try:
            value = links.verify(self.secret, purpose, request.path_params["token"])
        except links.InvalidToken:
            value = None
        # A case is named by its number; any other value was not made by not_solved_url.
        if value is None or (purpose == "not-solved" and not value.isdigit()):
            words = WORDS[locale := _accepted_locale(request)]  # the link told us nothing to trust
            return self.page(request, locale, words["invalid_title"], words["invalid"], status=400)
        return value

    def locale_of(self, who: str | int) -> str | None:
        """The locale of the customer with this address, or of the one whose case has this id."""
        query = sa.select(CUSTOMERS.c.locale).order_by(CUSTOMERS.c.id).limit(1)
        if isinstance(who, str):
            query = query.where(sa.func.lower(sa.func.trim(CUSTOMERS.c.email)) == who.lower())
        else:
            query = query.join(CASES, CASES.c.customer_id == CUSTOMERS.c.id).where(CASES.c.id == who)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def unsubscribe_now(self, address: str) -> None:
        with self.engine.begin() as conn:
            store.suppress(conn, address, "unsubscribed", utcnow())

    def record_not_solved(self, case_id: int, comment: str | None) -> bool:
        """Record the feedback unless the same case said so moments ago; True if recorded."""
        now = utcnow()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Two clicks racing in two transactions must not both see "nothing yet".
                # (SQLite needs no lock: its transactions begin IMMEDIATE, one writer at a time.)
                key = (case_id + 2**31) % 2**32 - 2**31  # fit the id into the lock's int4 key
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_NAMESPACE, key)))
            elif conn.dialect.name == "mysql":
                store.hold(conn, "feedback.lock", now)  # a click is rare: one lock for every case
            seen = store.FEEDBACK.c
            recent = sa.select(seen.id).where(
                seen.case_id == case_id, seen.type == NOT_SOLVED, seen.occurred_at >= now - REPEAT_WINDOW
            )
            if conn.execute(recent.limit(1)).first() is not None:
                return False
            data = json.dumps({"comment": comment}, ensure_ascii=False) if comment else None
            store.record_feedback(conn, case_id, NOT_SOLVED, now, data=data)
            return True

    async def words_for(self, request: Request, who: str | int) -> tuple[str, dict[str, str]]:
        """The customer's locale (else the browser's, else en) and its words."""
        locale = await run_in_threadpool(self.locale_of, who)
        locale = locale if locale in WORDS else _accepted_locale(request)
        return locale, WORDS[locale]

    async def unsubscribe(self, request: Request) -> Response:
        address = self.verify(request, "unsubscribe")
        if isinstance(address, Response):
            return address
        locale, words = await self.words_for(request, address)
        if request.method == "GET":
            ask, button = _say(words, "unsub_ask", address=address), words["unsub_button"]
            return self.page(request, locale, words["unsub_title"], ask, words["unsub_keep"], button=button)
        # Any POST with a valid token counts: RFC 8058 clients send `List-Unsubscribe=One-Click`
        # multipart or url-encoded, our button sends nothing; the signed token is the proof.
        await run_in_threadpool(self.unsubscribe_now, address)
        done = _say(words, "unsub_done", address=address)
        return self.page(request, locale, words["unsub_done_title"], done, words["unsub_keep"])

    async def not_solved(self, request: Request) -> Response:
        value = self.verify(request, "not-solved")
        if isinstance(value, Response):
            return value
        locale, words = await self.words_for(request, case_id := int(value))
        team = _say(words, "team", brand=self.brand) if self.brand else words["our_team"]
        if request.method == "GET":
            ask = _say(words, "ns_ask", case=str(case_id), team=team)
            label, button = words["ns_comment"], words["ns_button"]
            return self.page(request, locale, words["ns_title"], ask, comment_label=label, button=button)
        fields = await _read_form(request)
        if fields is None:
            return PlainTextResponse("That is more than this form takes.\n", status_code=413)
        comment = (fields.get("comment") or [""])[0].strip()[:MAX_COMMENT] or None
        if not await run_in_threadpool(self.record_not_solved, case_id, comment):
            log.info("case %s: a repeated 'not solved' within %s was not recorded", case_id, REPEAT_WINDOW)
        done = _say(words, "ns_done", case=str(case_id), team=team)
        return self.page(request, locale, words["ns_done_title"], done, quote=comment)


async def _read_form(request: Request) -> dict[str, list[str]] | None:
    """The url-encoded fields of the body ({} for other encodings), or None if it is too big."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


async def _healthz(_request: Request) -> Response:
    return PlainTextResponse("ok")


async def _database_down(_request: Request, exc: Exception) -> Response:
    log.warning("the database is unreachable: %s", str(exc).splitlines()[0] if str(exc) else exc)
    return PlainTextResponse(DB_DOWN, status_code=503, headers={"Retry-After": "60", **_HEADERS})


def create_app(settings: Settings, *, engine: sa.Engine | None = None, preview: bool = True) -> Starlette:
    """The ASGI app; it disposes of the engine at shutdown only if it made it. `preview` adds
    the template gallery, which shows customer data: keep it off on a public listener."""
    owned = engine is None
    engine = make_engine(settings.database_url.reveal()) if engine is None else engine
    pages = _LinkPages(settings, engine)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        if owned:
            engine.dispose()

    routes = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/unsubscribe/{token}", pages.unsubscribe, methods=["GET", "POST"]),
        Route("/not-solved/{token}", pages.not_solved, methods=["GET", "POST"]),
    ]
    routes.append(Route("/metrics", metrics_app(settings, engine)))
    if preview:
        routes += gallery_routes(settings, engine)
    if settings.editor:  # off unless asked for; serve() refuses it on a public address without TLS
        routes += editor_routes(settings, engine)
    handlers = {sa.exc.OperationalError: _database_down}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


def _no_versions_table(settings: Settings) -> str | None:
    """Why the editor cannot keep versions in this database, or None."""
    engine = make_engine(settings.database_url.reveal())
    try:
        with engine.connect() as conn:
            if template_versions.versions_table_exists(conn):
                return None
    except sa.exc.SQLAlchemyError as exc:
        return f"the template editor needs the database: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return "the template editor keeps its versions in notifier's tables: run notifier init-db first."


def serve(settings: Settings, host: str, port: int, *, preview: bool) -> None:
    """Run the app under uvicorn until interrupted (HTTPS with NOTIFIER_WEB_TLS_CERT and _KEY);
    NotifierError when it cannot listen there."""
    if settings.editor and (why := start_refusal(settings, host) or _no_versions_table(settings)):
        raise ConfigError(why)
    _can_listen(host, port)
    cert, key = (str(path) if path else None for path in (settings.web_tls_cert, settings.web_tls_key))
    # No access log: the URLs carry the tokens that allow an unsubscribe.
    app = create_app(settings, preview=preview)
    uvicorn.run(
        app, host=host, port=port, log_level="info", access_log=False, ssl_certfile=cert, ssl_keyfile=key
    )


def _can_listen(host: str, port: int) -> None:
    """Say in words, before uvicorn starts, that the address is taken or cannot be used."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise NotifierError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port or --host"
        ) from exc
