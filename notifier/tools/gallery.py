"""The template preview gallery of `notifier web`, under /preview.

    GET  /preview                          every template in every locale: subject, warnings, link
    GET  /preview/version                  a fingerprint of the templates; the pages poll it to reload
    GET  /preview/{template}/{locale}      subject, HTML part (sandboxed), text part, headers
    GET  /preview/{template}/{locale}/html the rendered HTML alone, under a strict Content-Security-Policy
    POST /preview/{template}/{locale}/send "send a test to me": the form's `email` gets it over SMTP

Every page takes `?order=ID`, `?case=ID` or `?product=ID` to render with that real record instead
of the sample data. Templates render as the daemon renders them: the rules in force give a template's
trigger and category, the Renderer picks up edits by itself, and a render error is shown on the
page with its file and line, never as a server error.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from notifier.compose import links
from notifier.compose.handover import Handover
from notifier.compose.mail import Envelope, Rendered, build_message, make_message_id
from notifier.compose.rendering import Renderer, TemplateError
from notifier.compose.samples import sample_context, trigger_of
from notifier.compose.signing import load_signer
from notifier.config.rules_file import load_rules
from notifier.config.settings import Settings
from notifier.config.validate import load_checked
from notifier.core.addresses import InvalidAddress, check_address, same_mailbox
from notifier.core.context import brand_of
from notifier.core.locale import LOCALES, message_locale
from notifier.core.rules import Category, Rule, RuleSet
from notifier.core.timing import utcnow
from notifier.core.values import Outcome
from notifier.errors import ConfigError, RulesError
from notifier.smtp.pool import Sender
from notifier.smtp.url import SmtpConfig
from notifier.tools import checking
from notifier.tools.editor_files import daemon_says
from notifier.tools.gallery_pages import PAGES, SOURCES

__all__ = ["Cell", "Gallery", "gallery_routes", "templates_fingerprint"]

SUBJECT_LIMIT = 80  # longer subjects are cut off in most inboxes
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:"
_SCRIPT_CSP = "script-src 'nonce-{nonce}'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'"
PAGE_CSP = f"{HTML_CSP}; {_SCRIPT_CSP}; base-uri 'none'"
MAX_FORM = 8 * 1024
_NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}
Ref = tuple[str, int] | None  # the real record to render with, or None for sample data


@dataclass(slots=True)
class Cell:
    """One template in one locale: what it renders to, the message built from it, what to fix."""

    template: str
    locale: str
    used: str  # the locale actually rendered ("en" when the translation is missing)
    rendered: Rendered | None = None
    context: dict[str, Any] = field(default_factory=dict, repr=False)
    message: bytes | None = None
    mail_from: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class State:
    """The rules (None when unreadable) and templates in force, and what is wrong with them."""

    rules: RuleSet | None
    renderer: Renderer
    problems: list[str]

    def locales(self) -> list[str]:
        """en, zh-CN, zh-TW, then any other locale some template has."""
        names = self.renderer.template_names()
        extra = {code for name in names for code in self.renderer.locales_of(name)} - set(LOCALES)
        return [*LOCALES, *sorted(extra)]

    def rule(self, template: str) -> Rule | None:
        return next((r for r in self.rules.rules if r.template == template), None) if self.rules else None

    def marketing(self, template: str) -> bool:
        rule = self.rule(template)
        return rule is not None and rule.category == Category.MARKETING


def templates_fingerprint(templates: Path, *also: Path) -> str:
    """'<latest mtime in ns>-<file count>' over the templates folder (and `also`): changes on any edit."""
    latest, count = 0, 0
    for folder, subfolders, files in os.walk(templates):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for path in [folder, *(os.path.join(folder, name) for name in files), *map(str, also)]:
            try:
                latest = max(latest, os.stat(path).st_mtime_ns)
            except OSError:
                continue
        count += len(files)
    return f"{latest}-{count}"


class Gallery:
    """Renders cells for the pages (sync, in the thread pool) and answers the routes (async)."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine

    def state(self) -> State:
        """The rules and templates as `notifier check` sees them; problems are reported, not raised."""
        try:
            return State(
                *load_checked(self.settings.rules, self.settings.templates, capture=self.settings.capture), []
            )
        except RulesError as exc:
            problems = [str(problem) for problem in exc.problems]
        renderer = Renderer(self.settings.templates)
        try:
            rules: RuleSet | None = load_rules(
                self.settings.rules, template_exists=renderer.has_template, capture=self.settings.capture
            )
        except RulesError:
            rules = None
        return State(rules, renderer, problems)

    def context(self, trigger: str, locale: str, ref: Ref, rules: RuleSet | None) -> dict[str, Any]:
        """Sample data for the trigger, or the real record's (as `notifier preview --order` has it)."""
        if ref is None:
            context = sample_context(trigger, locale)
            context["brand"] = brand_of(rules) if rules else context["brand"]
            return context
        if rules is None:
            raise LookupError("real data needs valid rules: fix the problems with the rules file first")
        with self.engine.connect() as conn:
            return checking._real_context(conn, trigger, ref[0], ref[1], rules, locale)

    def cell(self, state: State, template: str, locale: str, ref: Ref, cache: dict[Any, Any]) -> Cell:
        """Render one template in one locale with its warnings; `cache` shares contexts in a request."""
        renderer = state.renderer
        cell = Cell(template, locale, message_locale(renderer.locales_of(template), locale))
        if locale not in renderer.locales_of(template):
            cell.warnings.append(f"No {locale} translation: these customers get the {cell.used} version.")
        if not (self.settings.templates / template / f"{cell.used}.txt").is_file():
            cell.warnings.append(f"No hand-written text part ({cell.used}.txt): it is derived from the HTML.")
        trigger = ""
        try:
            trigger = trigger_of(template, state.rules)
            if (trigger, locale) not in cache:
                try:
                    cache[trigger, locale] = self.context(trigger, locale, ref, state.rules)
                except (LookupError, ValueError, sa.exc.SQLAlchemyError) as exc:
                    cache[trigger, locale] = LookupError(
                        f"cannot use {ref[0] if ref else 'sample'} data: {exc}"
                    )
            if isinstance(context := cache[trigger, locale], Exception):
                raise context
            cell.context = context
            cell.rendered = renderer.render(template, cell.used, context)
            if ref is not None:  # shown empty, never invented: say what the record lacks
                cell.warnings.extend(checking.real_data_warnings(context, trigger, ref[0]))
        except (TemplateError, LookupError) as exc:
            source = trigger.split(".")[0]
            hint = (
                f" (this message is about a {source}: try ?{source}=ID)" if ref and ref[0] != source else ""
            )
            cell.error = f"{exc}{hint}"
            return cell
        if (length := len(cell.rendered.subject)) > SUBJECT_LIMIT:
            cell.warnings.append(f"The subject is {length} characters; inboxes cut it at {SUBJECT_LIMIT}.")
        return cell

    def build(self, state: State, cell: Cell, to: str | None = None) -> None:
        """The message as the daemon would build it (to `to` when given), and its headers parsed back."""
        if cell.rendered is None:
            return
        rule, brand, customer = state.rule(cell.template), cell.context["brand"], cell.context["customer"]
        address = to or (rule.to if rule is not None and rule.to else (customer or {}).get("email") or "")
        extra: tuple[tuple[str, str], ...] = ()
        if state.marketing(cell.template):
            if (secret := self.settings.secret_key) is None:
                cell.warnings.append("NOTIFIER_SECRET_KEY is not set: marketing mail is not sent without it.")
                url = f"{self.settings.public_url.rstrip('/')}/unsubscribe/(needs-NOTIFIER_SECRET_KEY)"
            else:
                url = links.unsubscribe_url(self.settings.public_url, secret.reveal(), address)
            unsubscribe = f"<{url}>, <mailto:{brand['email']}?subject=unsubscribe>"
            extra = (
                ("List-Unsubscribe", unsubscribe),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            )
        sender = f"{brand['name']} <{brand['email']}>"
        domain = brand["email"].rsplit("@")[-1]
        envelope = Envelope(
            from_header=state.rules.defaults.from_header if state.rules else sender,
            to_name=customer["name"] if customer and same_mailbox(address, customer["email"]) else None,
            to_address=address,
            message_id=make_message_id(f"preview:{cell.template}:{cell.used}:{address}", domain),
            date=utcnow(),
            extra_headers=extra,
        )
        try:
            cell.message = build_message(cell.rendered, envelope)
        except ValueError as exc:  # InvalidAddress included
            cell.error = f"The message cannot be built: {exc}"
            return
        cell.mail_from = brand["email"]
        parsed = BytesHeaderParser(policy=default_policy).parsebytes(cell.message)
        cell.headers = [(name, str(value)) for name, value in parsed.items()]

    # -- routes ------------------------------------------------------------------------

    def page(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        """A gallery page; its live-reload script runs under a nonce, nothing else may."""
        nonce = secrets.token_urlsafe(12)
        version = templates_fingerprint(self.settings.templates, self.settings.rules)
        daemon = daemon_says(self.engine, self.settings.templates)  # which templates the daemon uses
        values = {"query": "", "ref": None, "problems": [], **values, "nonce": nonce, "version": version}
        values["daemon"], values["editor"] = daemon, self.settings.editor
        headers = {**_NO_STORE, "Content-Security-Policy": PAGE_CSP.format(nonce=nonce)}
        return HTMLResponse(PAGES.get_template(name).render(values), status_code=status, headers=headers)

    def view(self, name: str, state: State, ref: Ref, problem: str | None, **values: Any) -> HTMLResponse:
        """The gallery or a detail page, with the problems of the rules and of the query on top."""
        problems, query = [*state.problems, *filter(None, [problem])], _query(ref)
        return self.page(name, locales=state.locales(), problems=problems, ref=ref, query=query, **values)

    def result(self, status: int, says: str, back: str = "/preview") -> HTMLResponse:
        """A sentence on what happened, and the way back."""
        return self.page("result", status, ok=status == 200, says=says, back=back)

    async def index(self, request: Request) -> Response:
        ref, problem = _ref(request)
        state = await run_in_threadpool(self.state)

        def rows() -> list[tuple[str, str, bool, list[Cell]]]:
            cache: dict[Any, Any] = {}
            found, locales = [], state.locales()
            for name in state.renderer.template_names():
                try:
                    trigger = trigger_of(name, state.rules)
                except LookupError:
                    trigger = "no rule uses it"
                cells = [self.cell(state, name, locale, ref, cache) for locale in locales]
                found.append((name, trigger, state.marketing(name), cells))
            return found

        return self.view("gallery", state, ref, problem, rows=await run_in_threadpool(rows))

    async def detail(self, request: Request) -> Response:
        found = await self._one(request)
        if isinstance(found, Response):
            return found
        cell, state, ref, problem = found
        return self.view("detail", state, ref, problem, cell=cell)

    async def html(self, request: Request) -> Response:
        found = await self._one(request)
        if isinstance(found, Response):
            return found
        if (rendered := found[0].rendered) is None:
            return PlainTextResponse(f"This message does not render:\n{found[0].error}\n", 422, _NO_STORE)
        return HTMLResponse(rendered.html, headers={**_NO_STORE, "Content-Security-Policy": HTML_CSP})

    async def send(self, request: Request) -> Response:
        """Send the message to the address in the form, and say what the SMTP server answered."""
        back = request.url.path.removesuffix("/send") + _query(_ref(request)[0])
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return self.result(403, "Send tests from the preview page itself.", back)
        body = b""
        async for chunk in request.stream():
            if len(body := body + chunk) > MAX_FORM:
                return self.result(413, "That is more than this form takes.", back)
        try:
            address = check_address((parse_qs(body.decode("utf-8", "replace")).get("email") or [""])[0])
        except InvalidAddress as exc:
            return self.result(400, f"Not sent: {exc}.", back)
        found = await self._one(request, to=address)
        if isinstance(found, Response):
            return found
        cell = found[0]
        if cell.message is None:
            return self.result(422, f"Not sent: {cell.error}", back)
        try:
            timeout = self.settings.smtp_timeout.total_seconds()
            config = SmtpConfig.from_url(
                self.settings.smtp_url.reveal(), connections=1, timeout=timeout,
                ehlo_name=self.settings.smtp_ehlo_name,
            )
            # Dated and signed as the daemon's messages are, so a test send scores as they do.
            settings = self.settings
            signer = load_signer(settings.dkim_key_file, settings.dkim_selector, settings.dkim_domain)
            handover = Handover(utcnow, signer)
        except ConfigError as exc:
            return self.result(500, f"Not sent: {exc}.", back)
        async with Sender(config) as sender:
            message = handover(cell.message)
            result = await sender.send(mail_from=cell.mail_from, rcpt_to=address, message=message)
        server = f"the mail server at {config.address}"
        reply = f"{result.code} {result.reply}" if result.code else result.reply
        says = {
            Outcome.SENT: f"Sent to {address}: {server} accepted it ({reply}).",
            Outcome.TRANSIENT: f"Not sent: {server} said to try again later ({reply}).",
            Outcome.PERMANENT: f"Not sent: {server} refused it ({reply}).",
            Outcome.STALLED: f"Not sent: {server} cannot be used right now ({reply}).",
        }[result.outcome]
        return self.result(200 if result.outcome == Outcome.SENT else 502, says, back)

    async def version(self, _request: Request) -> Response:
        paths = (self.settings.templates, self.settings.rules)
        return PlainTextResponse(await run_in_threadpool(templates_fingerprint, *paths), headers=_NO_STORE)

    async def _one(
        self, request: Request, to: str | None = None
    ) -> tuple[Cell, State, Ref, str | None] | Response:
        """The cell the path names, its message built (to `to` if given), or the "no such template" page."""
        template, locale = request.path_params["template"], request.path_params["locale"]
        ref, problem = _ref(request)
        state = await run_in_threadpool(self.state)
        if template not in state.renderer.template_names() or locale not in state.locales():
            return self.result(404, f"There is no template {template!r} in {locale!r}.")

        def one() -> Cell:
            cell = self.cell(state, template, locale, ref, {})
            self.build(state, cell, to)
            return cell

        return await run_in_threadpool(one), state, ref, problem


def _ref(request: Request) -> tuple[Ref, str | None]:
    """The real record asked for (the first of order, case, product given), or why it cannot be used."""
    for source in SOURCES:
        if value := request.query_params.get(source, "").strip():
            if value.isascii() and value.isdigit():
                return (source, int(value)), None
            return None, f"{source} {value!r} is not an id (a whole number): showing sample data instead."
    return None, None


def _query(ref: Ref) -> str:
    return f"?{urlencode({ref[0]: ref[1]})}" if ref else ""


def gallery_routes(settings: Settings, engine: sa.Engine) -> list[Route]:
    """The /preview routes, for notifier.tools.web.create_app."""
    gallery = Gallery(settings, engine)
    return [
        Route("/preview", gallery.index, methods=["GET"]),
        Route("/preview/version", gallery.version, methods=["GET"]),
        Route("/preview/{template}/{locale}", gallery.detail, methods=["GET"]),
        Route("/preview/{template}/{locale}/html", gallery.html, methods=["GET"]),
        Route("/preview/{template}/{locale}/send", gallery.send, methods=["POST"]),
    ]
