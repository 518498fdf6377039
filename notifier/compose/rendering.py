"""Render a message template into a subject, an HTML part and a text part.

Templates are untrusted input (marketing edits them). They render in Jinja's
immutable sandbox with StrictUndefined, autoescaping in HTML only, and every failure
(syntax, undefined name, sandbox refusal, filter error) becomes a TemplateError naming
the file, the line and the reason in plain words. The immutable sandbox also refuses
calls that change lists and dicts (`items.append`, `customer.update`), so a template
cannot alter the context its caller shares; `{% set %}` and `namespace()` still work.
Edited files are picked up at the next render (Jinja's auto_reload).

The templates directory::

    templates/
      _layout.html                    shared HTML layout; every HTML part extends it
      _style.css                      CSS included by the layout, inlined into each HTML part
      _macros.html                    shared macros: {% import "_macros.html" as m %}
      _footer.txt                     shared footer of the text parts (the customer's)
      _footer_team.txt, .html         the footer of a notice to the team, in place of the customer's
      <template>/<locale>.subject.txt one line; whitespace is collapsed after rendering
      <template>/<locale>.html        HTML part (autoescaped)
      <template>/<locale>.txt         text part; optional, derived from the HTML when absent

Names starting with "_" are shared pieces, not messages. A message exists in a locale
when both its subject and its HTML file do. Locales are "en", "zh-CN" and "zh-TW"
(more may be added as files). In zh-CN and zh-TW a space separates Han characters from
Latin letters wherever they meet, values and template words alike (spacing.py). Which locale a
message goes out in is chosen in one place, notifier.core.locale.message_locale (the
customer's, normalized, else "en"); `render` renders exactly the locale it is given.

The context (the contract; a plain dict, nested values are dicts; every documented
key is present, optional ones with the value None):

    customer   {id, name, email, locale, timezone, marketing_opt_in}
    order      {id, number (str), placed_at (aware, UTC), status, total (Decimal),
               currency, ship_to_name, ship_to_address, promised_date (date | None)} | None
    items      [{product_id, sku, name, names, quantity (int), unit_price, line_total (Decimal)}]
    event      {id, type ("order.dispatched"), occurred_at (aware), data (raw dict), plus
               every documented data key of the type, None when absent:
               order.dispatched: carrier, tracking_number, tracking_url, eta (date);
               order.delivered: delivered_at (aware), signed_by; order.cancelled: reason,
               refund_amount (Decimal), currency; order.refunded: amount (Decimal),
               currency, reason; order.out_for_delivery: carrier, window_start,
               window_end (aware); order.delivery_failed: reason, next_attempt_at (aware);
               product.price_change: old_price, new_price (Decimal), currency,
               effective_at (aware); case.agent_replied: agent; case.resolved: resolution}
    case       {id, number (str), subject, status, priority, opened_at (aware)} | None
    product    {id, sku, name, names, tags (list of str), price (Decimal), currency} | None
               `name` is the product's name in the message's locale (product_translations,
               else products.name: core/names.py); `names` all of them, {locale: name}
    reply_by   aware datetime | None: when a person will answer a new case
    links      {unsubscribe: str | None, not_solved: str | None}
    brand      {name, email}
    locale     the chosen template locale ("zh-TW"); set by Renderer.render
    timezone   the customer's IANA zone; defaults to customer.timezone, then "UTC"
    now        aware datetime

Filters, bound to the context's locale and timezone (None renders as ""):

    value|datetime(format="medium")  an aware datetime in the customer's timezone
    value|date(format="long")        a date, or an aware datetime's date in that timezone
    value|time(format="short")       the time of an aware datetime in that timezone
    amount|money(currency=None)      an amount; the currency defaults to the one of
                                     order, event or product in the context, in that order.
                                     zh-TW writes TWD as NT$; whole amounts of currencies
                                     paid without cents (TWD) drop the ".00"
    text|nl2br                       line breaks as <br> in HTML, unchanged in text

Formats are Babel's names ("short", "medium", "long", "full") or CLDR patterns
("EEEE d MMMM, HH:mm"). A plain None prints as nothing. The filters are in filters.py,
the text made from HTML in plaintext.py, the CSS inlining by page shape in inlining.py,
the sandbox in sandbox.py and the bounds of every render (1 MB a part, 2 s a message,
200,000 range() items) in budget.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import css_inline
import jinja2

from notifier.compose import budget
from notifier.compose.budget import LIMITS, Limits
from notifier.compose.filters import FILTERS, rendering_message
from notifier.compose.inlining import FileFacts, ShapeCache, collecting_holes, may_have_holes
from notifier.compose.listing import LOCALE_FILE, NAME, Listing, Listings
from notifier.compose.mail import Rendered
from notifier.compose.plaintext import html_to_text, tidy_text
from notifier.compose.sandbox import Sandbox, TemplateError, explain, finalize
from notifier.compose.sources import KeptLoader, sources_digest
from notifier.compose.spacing import space_html, space_text, spaced_locale
from notifier.core.locale import FALLBACK_LOCALE, LOCALES, message_locale, normalize_locale
from notifier.core.names import in_locale

__all__ = ["LOCALES", "Renderer", "TemplateError", "normalize_locale"]


_TEMPLATE_SUFFIXES = frozenset({".html", ".htm", ".txt", ".css"})
# Output chunks read per size check: a chunk is a piece of the template's own text or one
# `{{ }}` value, so the check overshoots the limit by at most this many of them.
_BATCH = 32
# Unicode category Cc (C0 and C1 controls, DEL): what a subject must not keep.
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f]")


class Renderer:
    """Renders message templates from one directory; one instance serves all customers."""

    def __init__(self, templates_dir: Path, *, auto_reload: bool = True, limits: Limits = LIMITS) -> None:
        """`auto_reload=False` keeps the templates as first loaded: the daemon checks every file
        when it (re)loads, and a refused edit must not reach customers through the cache.
        `limits` bound every render (compose/budget.py)."""
        self.limits = limits
        self._shown = Path(templates_dir)
        self._root = Path(os.path.abspath(templates_dir))
        self._listings = Listings(str(self._root), auto_reload=auto_reload)
        self._loader = KeptLoader(str(self._root), pinned=not auto_reload)
        self._env = Sandbox(
            loader=self._loader,
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm"), default_for_string=False, default=False
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=auto_reload,
            cache_size=400 if auto_reload else -1,
            keep_trailing_newline=True,
            finalize=finalize,
        )
        self._env.filters.update(FILTERS)
        self._inliner = css_inline.CSSInliner(
            keep_style_tags=False,
            keep_link_tags=False,
            keep_at_rules=True,
            load_remote_stylesheets=False,
            minify_css=True,
        )
        # Pages with holes need templates that stay as they were checked: not with auto_reload.
        self._shapes = None if auto_reload else ShapeCache(self._inliner.inline)
        self._hole_safe: dict[str, bool] = {}
        self._file_facts: dict[str, FileFacts] = {}  # per file, for every template that uses it

    def template_names(self) -> list[str]:
        """Message templates present: folders whose names do not start with "_" or "."."""
        try:
            entries = list(os.scandir(self._root))
        except OSError:
            return []
        return sorted(
            entry.name
            for entry in entries
            if entry.is_dir() and NAME.fullmatch(entry.name) and not entry.name.startswith("_")
        )

    def locales_of(self, template: str) -> list[str]:
        """Locales in which the template has at least a subject and an HTML part."""
        return list(self._listing(template).locales)

    def has_template(self, template: str) -> bool:
        return bool(self.locales_of(template))

    def choose_locale(self, template: str, wanted: str | None) -> str:
        """The customer's locale if the template has it, else "en" (core.locale.message_locale)."""
        return message_locale(self._listing(template).locales, wanted)

    def render(self, template: str, locale: str, context: Mapping[str, Any]) -> Rendered:
        """Render one message in exactly `locale` (chosen by core.locale.message_locale);
        TemplateError on any failure, a locale the template lacks included, and on a render
        over the bounds of compose/budget.py."""
        listing = self._listing(template)
        if not listing.locales:
            raise TemplateError(self._display(template), None, f"there is no message template {template!r}")
        if locale not in listing.locales:
            raise TemplateError(
                self._display(template),
                None,
                f"no {locale!r} version (it has {', '.join(listing.locales)}); "
                "choose the locale with message_locale first",
            )
        values = in_locale(context, locale)  # product and item names in the message's language
        values["locale"] = locale
        if not values.get("timezone"):
            customer = values.get("customer")
            zone = customer.get("timezone") if isinstance(customer, Mapping) else None
            values["timezone"] = zone or "UTC"
        token = budget.CURRENT.set(budget.fresh(self.limits))
        try:
            with rendering_message(values):
                return self._render_parts(f"{template}/{locale}", listing, values)
        finally:
            budget.CURRENT.reset(token)

    def _render_parts(self, base: str, listing: Listing, values: dict[str, Any]) -> Rendered:
        raw_subject = self._render_file(f"{base}.subject.txt", values)
        subject = _one_line(raw_subject)
        if not subject:
            raise TemplateError(self._display(f"{base}.subject.txt"), None, "the subject is empty")
        html = self._html(f"{base}.html", values)
        if f"{values['locale']}.txt" in listing.files:
            text = tidy_text(self._render_file(f"{base}.txt", values))
        else:
            text = html_to_text(html)
        lines = sum(1 for line in raw_subject.splitlines() if line.strip())
        if spaced_locale(values["locale"]):  # Han never glued to Latin letters (spacing.py)
            subject, html, text = space_text(subject), space_html(html), space_text(text)
        return Rendered(subject=subject, html=html, text=text, subject_lines=lines)

    def check_syntax(self) -> list[TemplateError]:
        """Compile every template file without rendering; also report incomplete messages."""
        errors: list[TemplateError] = []
        for name in self._template_files():
            try:
                self._env.get_template(name)
            except Exception as exc:
                errors.append(self._error(exc, name))
        for template in self.template_names():
            errors.extend(self._check_parts(template))
        return errors

    def read_all(self) -> str | None:
        """Without auto_reload: read (not compile) every file `check_syntax` compiles and list
        every message folder, kept for every later render; the `digest` of what was read, or
        None when a file could not be read."""
        for name in self._template_files():
            try:
                self._loader.get_source(self._env, name)
            except Exception:
                return None
        for template in self.template_names():
            self._listing(template)
        return self.digest()

    def digest(self) -> str:
        """Every source read so far and every folder listing kept (compose/sources.py)."""
        return sources_digest(self._loader.sources, self._listings.kept())

    # -- internals ---------------------------------------------------------------

    def _template_files(self) -> Iterator[str]:
        for path in sorted(self._root.rglob("*")):
            relative = path.relative_to(self._root)
            if (
                path.suffix in _TEMPLATE_SUFFIXES
                and not any(part.startswith(".") for part in relative.parts)
                and path.is_file()
            ):
                yield relative.as_posix()

    # -- internals ---------------------------------------------------------------

    def _check_parts(self, template: str) -> list[TemplateError]:
        files = self._files(template)
        complete = set(self.locales_of(template))
        errors = []
        partial = {m["locale"] for name in files if (m := LOCALE_FILE.fullmatch(name))}
        for code in sorted(partial - complete):
            missing = f"{code}.html" if f"{code}.subject.txt" in files else f"{code}.subject.txt"
            errors.append(TemplateError(self._display(f"{template}/{missing}"), None, "file is missing"))
        if FALLBACK_LOCALE not in complete:
            errors.append(
                TemplateError(
                    self._display(template),
                    None,
                    "no 'en' version (en.subject.txt and en.html), which every other locale falls back to",
                )
            )
        return errors

    def _files(self, template: str) -> frozenset[str]:
        return self._listing(template).files

    def _listing(self, template: str) -> Listing:
        return self._listings.get(template)

    def _html(self, name: str, values: dict[str, Any]) -> str:
        """The HTML part with its CSS inlined: once per page shape where the template allows
        it (inlining.py), else message by message."""
        try:
            if self._shapes is not None and self._may_have_holes(name):
                with collecting_holes() as texts:
                    page = self._render_file(name, values)
                html = self._shapes.inline(page, texts)
                if html is not None:
                    return html
            return self._inliner.inline(self._render_file(name, values))
        except (css_inline.InlineError, ValueError) as exc:
            raise TemplateError(self._display(name), None, f"CSS: {exc}") from exc

    def _may_have_holes(self, name: str) -> bool:
        known = self._hole_safe.get(name)
        if known is None:
            known = self._hole_safe[name] = may_have_holes(self._source_of, name, self._file_facts)
        return known

    def _source_of(self, name: str) -> str:
        """A template's source as Jinja compiled it (without auto_reload, the checked one,
        whatever the file holds now)."""
        if name not in self._loader.sources:
            self._env.get_template(name)
        return self._loader.sources[name]

    def _render_file(self, name: str, values: dict[str, Any]) -> str:
        """One part, its size counted while it is generated (compose/budget.py): in batches of
        _BATCH chunks, read and measured at C speed (a Python step per chunk costs the daemon
        5% of its rendering time)."""
        try:
            template = self._env.get_template(name)
            chunks: list[str] = []
            size, limit = 0, self.limits.part_bytes
            generating = template.root_render_func(template.new_context(values))
            try:
                while batch := list(islice(generating, _BATCH)):
                    size += sum(map(len, batch))
                    if size > limit:
                        current = budget.CURRENT.get() or budget.fresh(self.limits)
                        current.check_size(size, "the rendered part")
                    chunks.extend(batch)
            except Exception:
                self._env.handle_exception()  # raises it again, with the template's lines
            return "".join(chunks)
        except Exception as exc:
            raise self._error(exc, name) from exc

    def _display(self, name: str) -> str:
        return (self._shown / name).as_posix()

    def _error(self, exc: Exception, name: str) -> TemplateError:
        """Turn any failure while loading or rendering `name` into a TemplateError."""
        if isinstance(exc, TemplateError):
            return exc
        file, line = name, None
        if isinstance(exc, jinja2.TemplateSyntaxError):
            file = self._relative(exc.filename) or exc.name or name
            line = exc.lineno
            reason = f"syntax error: {exc.message}"
        else:
            position = self._template_position(exc)
            if position:
                file, line = position
            reason = explain(exc, self._source_line(file, line))
        if file != name:
            reason += f" (while rendering {name})"
        return TemplateError(self._display(file), line, reason)

    def _template_position(self, exc: BaseException) -> tuple[str, int] | None:
        """The innermost template frame of the traceback (Jinja rewrites it to template lines)."""
        found = None
        tb = exc.__traceback__
        while tb is not None:
            relative = self._relative(tb.tb_frame.f_code.co_filename)
            if relative:
                found = (relative, tb.tb_lineno)
            tb = tb.tb_next
        return found

    def _relative(self, filename: str | None) -> str | None:
        if not filename:
            return None
        path = os.path.normpath(filename)
        root = str(self._root)
        if not path.startswith(root + os.sep):
            return None
        return Path(os.path.relpath(path, root)).as_posix()

    def _source_line(self, name: str, line: int | None) -> str:
        if not line:
            return ""
        try:
            lines = (self._root / name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return ""
        return lines[line - 1] if 0 < line <= len(lines) else ""


def _one_line(value: str) -> str:
    return " ".join(_CONTROL_CHARS.sub(" ", value).split())
