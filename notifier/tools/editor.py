"""The template editor of `notifier web`, under /edit (on with NOTIFIER_EDITOR; README: The web app).

    GET  /edit/login, POST /edit/login, POST /edit/logout  its own sign-in (tools/web_auth.py)
    GET  /edit                                   the files, and which templates the daemon uses
    GET  /edit/file/{path}                       one file: text, live preview, kept versions
    POST /edit/preview/{path}                    the draft rendered in every locale (the gallery's cells)
    POST /edit/save/{path}                       written only if `check` accepts it, and kept
    GET  /edit/diff/{path}?from=ID|default&to=ID difflib's unified diff (to: the file now)
    POST /edit/revert/{path}                     to a kept version or the shipped default, as a save

The preview renders what the gallery renders (Gallery.cell) from a candidate folder holding the
draft; the save runs THE validation (config/validate.py) on that folder. Every POST carries the
session's CSRF token.
"""

from __future__ import annotations

import difflib
import hmac
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import sqlalchemy as sa
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from notifier.compose.rendering import Renderer
from notifier.config.rules_file import load_rules
from notifier.config.settings import Settings
from notifier.core.timing import utcnow
from notifier.db.store import template_versions as kept
from notifier.errors import RulesError
from notifier.tools import editor_files as files
from notifier.tools.editor_pages import PAGES
from notifier.tools.gallery import Gallery, Ref, State
from notifier.tools.gallery_pages import SOURCES
from notifier.tools.web_auth import COOKIE, SESSION_FOR, Session, Sessions

MAX_FORM = files.MAX_TEMPLATE * 4 + 8192  # url-encoded, a character may take up to 9 bytes; roughly
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; script-src 'nonce-{nonce}'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on the editor's own posts.
_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "same-origin"}


class Editor:
    """The routes (async) and the file and database work they hand to the thread pool (sync)."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings, self.engine = settings, engine
        secret = settings.secret_key.reveal() if settings.secret_key else None
        self.sessions = Sessions(settings.editor_users, secret)
        self.secure = settings.web_proxy_tls or settings.web_tls_cert is not None

    # -- sessions ---------------------------------------------------------------------------------

    def page(
        self, request: Request, session: Session, name: str, status: int = 200, **values: Any
    ) -> Response:
        nonce = secrets.token_urlsafe(12)
        html = PAGES.get_template(name).render(values, user=session.user, csrf=session.csrf, nonce=nonce)
        headers = {**_HEADERS, "Content-Security-Policy": _CSP.format(nonce=nonce)}
        return self.with_cookie(HTMLResponse(html, status_code=status, headers=headers), request, session)

    def with_cookie(self, response: Response, request: Request, session: Session) -> Response:
        if request.cookies.get(COOKIE) != (value := self.sessions.dump(session)):
            response.set_cookie(
                COOKIE,
                value,
                max_age=SESSION_FOR,
                path="/",
                secure=self.secure,
                httponly=True,
                samesite="strict",
            )
        return response

    def session(self, request: Request) -> Session:
        return self.sessions.load(request.cookies.get(COOKIE)) or self.sessions.new()

    def refusal(self, request: Request) -> str | None:
        """Why this request may not use the editor at all, or None."""
        if self.settings.web_proxy_tls and "https" not in (
            request.url.scheme,
            request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower(),
        ):
            return "The editor is served over HTTPS only: open it through the HTTPS address."
        return None

    async def form(self, request: Request, session: Session) -> dict[str, str] | str:
        """The posted fields, or why the post is refused (too big, another site, no CSRF token)."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return "Use the editor's own pages to change templates."
        origin = request.headers.get("origin")
        hosts = {request.headers.get("host")}
        if self.settings.web_proxy_tls:  # the proxy may rewrite Host and say the public one here
            hosts.add(request.headers.get("x-forwarded-host", "").split(",")[0].strip())
        if origin is not None and urlsplit(origin).netloc not in hosts:
            return "Use the editor's own pages to change templates."
        body = b""
        async for chunk in request.stream():
            if len(body := body + chunk) > MAX_FORM:
                return "That is more than this form takes."
        fields = {
            k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        if not hmac.compare_digest(fields.get("csrf", "").encode(), session.csrf.encode()):  # bytes: any text
            return "This form has expired (or did not come from the editor): open the page again and retry."
        return fields

    def gate(self, request: Request) -> tuple[Session, Response | None]:
        session = self.session(request)
        if (why := self.refusal(request)) is not None:
            return session, self.page(request, session, "result", 403, says=why, back="/edit")
        if session.user is None:
            response = RedirectResponse("/edit/login", status_code=303, headers=_HEADERS)
            return session, self.with_cookie(response, request, session)
        return session, None

    # -- signing in and out -----------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        session = self.session(request)
        if (why := self.refusal(request)) is not None:
            return self.page(request, session, "result", 403, says=why, back="/edit")
        if request.method == "GET":
            return self.page(request, session, "login")
        fields = await self.form(request, session)
        if isinstance(fields, str):
            return self.page(request, session, "login", 403, says=fields)
        name = fields.get("name", "").strip()
        wrong = await run_in_threadpool(self.sessions.sign_in, name, fields.get("password", ""))
        if wrong is not None:
            return self.page(request, session, "login", 401, says=wrong)
        response = RedirectResponse("/edit", status_code=303, headers=_HEADERS)
        return self.with_cookie(response, request, self.sessions.new(name))  # a new token once signed in

    async def logout(self, request: Request) -> Response:
        session = self.session(request)
        fields = await self.form(request, session)
        if isinstance(fields, str):
            return self.page(request, session, "result", 403, says=fields, back="/edit")
        response = RedirectResponse("/edit/login", status_code=303, headers=_HEADERS)
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- pages ------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        session, refused = self.gate(request)
        if refused:
            return refused

        def facts() -> dict[str, Any]:
            with self.engine.connect() as conn:
                counts = kept.edited_paths(conn)
            daemon = files.daemon_says(self.engine, self.settings.templates)
            return {
                "files": files.editable_files(self.settings.templates),
                "counts": counts,
                "daemon": daemon,
            }

        return self.page(request, session, "index", **await run_in_threadpool(facts))

    def file_page(
        self,
        request: Request,
        session: Session,
        path: str,
        draft: str | None,
        fields: dict[str, str],
        status: int = 200,
        **more: Any,
    ) -> Response:
        state = files.file_state(self.engine, self.settings.templates, path)
        content = state.content if draft is None else draft
        ref, problem = _ref(fields)
        template = fields.get("template") or _template_of(self.settings.templates, path)
        preview = self.preview_html(path, content, template, ref, problem)
        values = {"path": path, "state": state, "content": content, "ref": ref, "preview": preview}
        values |= {"base": kept.content_hash(state.content), "shared": "/" not in path, "template": template}
        return self.page(request, session, "file", status, **values, **more)

    async def show(self, request: Request) -> Response:
        session, refused = self.gate(request)
        if refused:
            return refused
        if (path := self.path(request)) is None:
            return self.missing(request, session)
        saved, fields = request.query_params.get("saved"), dict(request.query_params)
        return await run_in_threadpool(self.file_page, request, session, path, None, fields, saved=saved)

    def preview_html(self, path: str, content: str, template: str, ref: Ref, problem: str | None) -> Markup:
        """The draft rendered in every locale by the gallery's own cells, from a candidate folder."""
        with files.candidate(self.settings.templates, path, content) as root:
            renderer = Renderer(root, auto_reload=False)
            try:
                rules = load_rules(
                    self.settings.rules, template_exists=renderer.has_template, capture=self.settings.capture
                )
            except RulesError as exc:
                rules, problem = None, f"The rules cannot be read: {exc}"
            state = State(rules, renderer, [])
            gallery = Gallery(replace(self.settings, templates=root), self.engine)
            if template not in renderer.template_names():
                return Markup(
                    PAGES.get_template("preview").render(problem=f"No template {template!r}.", cells=[])
                )
            cache: dict[Any, Any] = {}
            cells = [gallery.cell(state, template, locale, ref, cache) for locale in state.locales()]
            for cell in cells:
                if cell.error:
                    cell.error = cell.error.replace(str(root), str(self.settings.templates))
            return Markup(PAGES.get_template("preview").render(problem=problem, cells=cells))

    async def preview(self, request: Request) -> Response:
        session, refused = self.gate(request)
        if refused:
            return refused
        if (path := self.path(request)) is None:
            return self.missing(request, session)
        fields = await self.form(request, session)
        if isinstance(fields, str):
            return HTMLResponse(f'<p class="note err">{Markup.escape(fields)}</p>', 403, headers=_HEADERS)
        ref, problem = _ref(fields)
        template = fields.get("template") or _template_of(self.settings.templates, path)
        content = _text(fields.get("content", ""))
        html = await run_in_threadpool(self.preview_html, path, content, template, ref, problem)
        return HTMLResponse(html, headers=_HEADERS)

    async def file_post(self, request: Request) -> Response | tuple[Session, str, dict[str, str]]:
        """A form posted about one file: the session, the file and the fields, or the refusal
        (not signed in, no such file, a form that is not the editor's own)."""
        session, refused = self.gate(request)
        if refused:
            return refused
        if (path := self.path(request)) is None:
            return self.missing(request, session)
        fields = await self.form(request, session)
        if isinstance(fields, str):
            return self.page(request, session, "result", 403, says=fields, back=f"/edit/file/{path}")
        return session, path, fields

    async def save(self, request: Request) -> Response:
        if isinstance(posted := await self.file_post(request), Response):
            return posted
        session, path, fields = posted
        content = _text(fields.get("content", ""))
        if fields.get("base") and fields["base"] != kept.content_hash(
            files.read(self.settings.templates, path)
        ):
            problems = [
                "The file changed since you opened it: open it again to see the change (diff), then edit."
            ]
            return await run_in_threadpool(
                lambda: self.file_page(request, session, path, content, fields, status=409, problems=problems)
            )
        note = fields.get("note", "").strip()[:200] or "saved"
        return await self.store(request, session, path, content, note, fields)

    async def revert(self, request: Request) -> Response:
        if isinstance(posted := await self.file_post(request), Response):
            return posted
        session, path, fields = posted
        found = await run_in_threadpool(self.version_text, path, fields.get("to", ""))
        if found is None:
            return self.page(request, session, "result", 404, says="There is no such version.", back="/edit")
        content, label = found
        return await self.store(request, session, path, content, f"revert to {label}", {})

    async def store(
        self, request: Request, session: Session, path: str, content: str, note: str, fields: dict[str, str]
    ) -> Response:
        """Save if `check` accepts the folder with this content; else the page with the draft and why not."""
        templates, rules = self.settings.templates, self.settings.rules
        if len(content) > files.MAX_TEMPLATE:
            problems = [f"The template is over {files.MAX_TEMPLATE:,} characters: it cannot be right."]
        else:
            problems = await run_in_threadpool(
                files.problems_with, rules, templates, path, content, self.settings.capture
            )
        if problems:
            return await run_in_threadpool(
                lambda: self.file_page(request, session, path, content, fields, status=422, problems=problems)
            )
        user = session.user or ""

        def write() -> int:
            return files.save(self.engine, templates, path, content, author=user, note=note, now=utcnow())

        number = await run_in_threadpool(write)
        query = urlencode({"saved": number, **{k: v for k, v in fields.items() if k in SOURCES and v}})
        return RedirectResponse(f"/edit/file/{path}?{query}", status_code=303, headers=_HEADERS)

    def version_text(self, path: str, which: str) -> tuple[str, str] | None:
        """A kept version's or the shipped default's content, and its name in words."""
        if which == "default":
            default = files.shipped_default(self.settings.templates, path)
            return None if default is None else (default, "the shipped default")
        with self.engine.connect() as conn:
            versions = kept.versions_of(conn, path)
        version = next((v for v in versions if which.isdigit() and v.id == int(which)), None)
        return None if version is None else (version.content, f"version {version.number}")

    async def diff(self, request: Request) -> Response:
        session, refused = self.gate(request)
        if refused:
            return refused
        if (path := self.path(request)) is None:
            return self.missing(request, session)
        now = files.read(self.settings.templates, path)
        before = await run_in_threadpool(self.version_text, path, request.query_params.get("from", ""))
        after = await run_in_threadpool(self.version_text, path, request.query_params.get("to", ""))
        if before is None:
            return self.page(request, session, "result", 404, says="There is no such version.", back="/edit")
        after = after or (now, "the file now")
        found = difflib.unified_diff(
            before[0].splitlines(), after[0].splitlines(), before[1], after[1], lineterm=""
        )
        lines = [(_line_kind(number, line), line) for number, line in enumerate(found)]
        return self.page(request, session, "diff", path=path, before=before[1], after=after[1], lines=lines)

    def path(self, request: Request) -> str | None:
        path = request.path_params["path"]
        return path if files.is_editable(self.settings.templates, path) else None

    def missing(self, request: Request, session: Session) -> Response:
        says = "There is no such template file to edit."
        return self.page(request, session, "result", 404, says=says, back="/edit")


def _line_kind(number: int, line: str) -> str:
    """A unified diff's line as the page colours it: the two names, a hunk, added, removed, the same."""
    if number < 2 or line.startswith("@@"):
        return "hunk"
    return {"+": "add", "-": "del"}.get(line[:1], "")


def _text(content: str) -> str:
    """A form's text as a file holds it: browsers send a textarea's lines ending in CR LF."""
    return content.replace("\r\n", "\n")


def _ref(fields: dict[str, str]) -> tuple[Ref, str | None]:
    for source in SOURCES:
        if value := fields.get(source, "").strip():
            if value.isascii() and value.isdigit():
                return (source, int(value)), None
            return None, f"{source} {value!r} is not an id (a whole number): showing sample data instead."
    return None, None


def _template_of(templates: Path, path: str) -> str:
    """The template a file belongs to; for a shared file, the first template (they all use it)."""
    if "/" in path:
        return path.split("/")[0]
    names = Renderer(templates, auto_reload=False).template_names()
    return names[0] if names else ""


def editor_routes(settings: Settings, engine: sa.Engine) -> list[Route]:
    """The /edit routes, for notifier.tools.web.create_app."""
    editor = Editor(settings, engine)
    return [
        Route("/edit/login", editor.login, methods=["GET", "POST"]),
        Route("/edit/logout", editor.logout, methods=["POST"]),
        Route("/edit", editor.index, methods=["GET"]),
        Route("/edit/file/{path:path}", editor.show, methods=["GET"]),
        Route("/edit/preview/{path:path}", editor.preview, methods=["POST"]),
        Route("/edit/save/{path:path}", editor.save, methods=["POST"]),
        Route("/edit/diff/{path:path}", editor.diff, methods=["GET"]),
        Route("/edit/revert/{path:path}", editor.revert, methods=["POST"]),
    ]
