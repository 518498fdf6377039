"""CSS inlined once per page shape, not once per message.

Inlining parses the whole HTML part and matches every CSS rule against it: about a sixth of
the CPU notifier spends on an email. Yet one template's messages differ mostly in their
text (a name, an order number, an amount), and CSS selectors cannot see text. So the HTML
part is rendered with each value written out as a placeholder (a "hole"), the page with
holes is inlined once, and each message fills the holes of the cached result. The output
is byte for byte what inlining the message itself gives; every step below that could not
promise that hands the message to the inliner whole instead.

- Only values written with `{{ }}` into escaped HTML become holes, and only plain text
  (str and numbers; not Markup, not None, not empty, no surrounding whitespace, no
  carriage return or NUL): text the HTML parser keeps as it is, and that cannot change
  the page's structure.
- A hole inside a tag, a comment or a <style>/<script> element (where CSS could see it, or
  text is not escaped) is filled before the page is inlined, so its value is part of the
  page's shape. So is a hole that could complete a character reference or a tag begun by
  the text before it (`&`, `<`).
- A template that can look at its own output (a `{% set %}` or `{% filter %}` block, a
  macro's or caller's output used other than written out, a filter over `nl2br`) has no
  holes at all: its logic could depend on the holes' text.
- After inlining, every hole must come back exactly as often as it went in, in text. If
  not, the shape is remembered as one to inline whole.
- A shape whose filled-in values differ from message to message (a per-customer link)
  gains nothing from caching; after a few misses it is inlined whole every time.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import jinja2
from jinja2 import meta, nodes
from markupsafe import Markup, escape

__all__ = ["ShapeCache", "collecting_holes", "hole"]

SHAPES = 256  # page shapes kept per renderer (a few KB each)
_GIVE_UP_MISSES = 16  # misses after which a shape that is rarely reused is inlined whole

_OPEN, _CLOSE = "\ue000", "\ue001"  # Unicode private-use characters around a hole's number
# A random word per process, so that no customer's text can pass for a hole.
_NONCE = secrets.token_hex(4)
_HOLE = re.compile(f"{_OPEN}{_NONCE}(\\d+){_CLOSE}")
# Where text is not plain HTML text: comments, raw-text elements, tags and doctypes. A hole
# inside one of these is filled in before inlining.
_NOT_TEXT = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(script|style|xmp|iframe|noembed|noframes|noscript)\b.*?(?:</\1\s*>|\Z)"
    r"|<plaintext\b.*"
    r"|<[!?/]?[A-Za-z][^>]*(?:>|\Z)",
    re.IGNORECASE | re.DOTALL,
)
# Text after the last "&" that a hole's value could complete into a character reference.
_REFERENCE_SO_FAR = re.compile(r"&[#A-Za-z0-9]*")
_EDGE_WHITESPACE = " \t\n\f"
_NUMBERS = (int, float, Decimal)

_holes: ContextVar[list[str] | None] = ContextVar("notifier_holes", default=None)
# Parses templates for may_have_holes (the syntax is Jinja's default, as the renderer's).
_PARSER = jinja2.Environment()


# --- while a template renders ----------------------------------------------------------------


@contextmanager
def collecting_holes() -> Iterator[list[str]]:
    """Within this block, plain values written into escaped HTML become holes: their texts are
    appended to the list it gives, and the page holds placeholders instead."""
    found: list[str] = []
    token = _holes.set(found)
    try:
        yield found
    finally:
        _holes.reset(token)


def hole(value: Any) -> Any:
    """A placeholder for `value` (as Markup) while holes are collected, else `value` itself.

    Called for every value a template writes into escaped HTML (the environment's finalize)."""
    found = _holes.get()
    if found is None:
        return value
    if type(value) is str:
        text = value
    elif type(value) in _NUMBERS:
        text = str(value)
    else:
        return value  # Markup, Undefined, dates and the like: written as they are
    if not text or text[0] in _EDGE_WHITESPACE or text[-1] in _EDGE_WHITESPACE:
        return value
    if "\r" in text or "\x00" in text:
        return value  # the HTML parser rewrites these
    found.append(text)
    return _placeholder(len(found) - 1)


def _placeholder(index: int) -> Markup:
    return _PLACEHOLDERS[index] if index < len(_PLACEHOLDERS) else Markup(f"{_OPEN}{_NONCE}{index}{_CLOSE}")


_PLACEHOLDERS = tuple(Markup(f"{_OPEN}{_NONCE}{index}{_CLOSE}") for index in range(256))


# --- which templates may have holes ---------------------------------------------------------


def may_have_holes(
    source_of: Callable[[str], str], name: str, known: dict[str, FileFacts] | None = None
) -> bool:
    """Whether the template and every template it uses only write their output out, never
    look at it (see the module's docstring). False if any of them cannot be read.
    `source_of` gives a template's source by name; `known` keeps what was found in each file
    for the next template (the layout and the macros are used by all of them), for sources
    that do not change."""
    seen: set[str] = set()
    waiting = [name]
    while waiting:
        current = waiting.pop()
        if current in seen:
            continue
        seen.add(current)
        facts = known.get(current) if known is not None else None
        if facts is None:
            try:
                tree = _PARSER.parse(source_of(current), current)
            except Exception:
                return False
            facts = FileFacts(_only_writes_output(tree), tuple(meta.find_referenced_templates(tree)))
            if known is not None:
                known[current] = facts
        if not facts.only_writes_output:
            return False
        for used in facts.uses:
            if used is None:
                return False  # a name computed at run time: cannot be checked
            waiting.append(used)
    return True


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What may_have_holes found in one template file."""

    only_writes_output: bool
    uses: tuple[str | None, ...]  # the templates it extends, includes or imports (None: computed)


def _only_writes_output(tree: nodes.Template) -> bool:
    if any(True for _ in tree.find_all((nodes.AssignBlock, nodes.FilterBlock))):
        return False
    written: set[int] = set()
    for output in tree.find_all(nodes.Output):
        for child in output.nodes:
            if isinstance(child, nodes.Call):
                written.add(id(child))
            if isinstance(child, nodes.Filter) and child.name == "nl2br":
                written.add(id(child))
    for call_block in tree.find_all(nodes.CallBlock):
        written.add(id(call_block.call))
    for call in tree.find_all(nodes.Call):
        if id(call) not in written:
            return False
    return all(id(found) in written for found in tree.find_all(nodes.Filter) if found.name == "nl2br")


# --- inlining by shape -------------------------------------------------------------------------


@dataclass(slots=True)
class _Shape:
    """A page with holes: which holes are filled before inlining, and how that goes."""

    holes: int  # how many different holes the page has
    counts: dict[int, int]  # how often each of them appears
    fill: frozenset[int]
    hits: int = 0
    misses: int = 0

    @property
    def rarely_reused(self) -> bool:
        return self.misses >= _GIVE_UP_MISSES and self.hits < self.misses


@dataclass(frozen=True, slots=True)
class _Inlined:
    """An inlined page cut at its holes: parts[0], hole holes[0], parts[1], ..."""

    parts: tuple[str, ...]
    holes: tuple[int, ...]


_INLINE_WHOLE = _Inlined((), ())  # a page whose holes did not come through inlining intact


class ShapeCache:
    """Inlines pages with holes through one css_inline inliner, caching by shape."""

    def __init__(self, inline: Callable[[str], str], size: int = SHAPES) -> None:
        self._inline = inline
        self._size = size
        self._shapes: OrderedDict[str, _Shape] = OrderedDict()
        self._inlined: OrderedDict[str, _Inlined] = OrderedDict()
        self._lock = threading.Lock()  # the web preview renders in threads of its own

    def inline(self, page: str, texts: list[str]) -> str | None:
        """The inlined page with the holes filled in; None if the page's holes did not come
        through rendering intact (render it again without holes)."""
        if not texts:
            return self._inline(page)
        shape = self._get(self._shapes, page)
        if shape is None:
            counts = _count_holes(page, len(texts))
            if counts is None:
                return None
            shape = _Shape(len(texts), counts, _holes_outside_text(page))
            self._put(self._shapes, page, shape)
        elif len(texts) != shape.holes:  # the same page, yet a hole went missing: look closer
            return None
        filled = _fill(page, texts, shape.fill)
        if shape.rarely_reused:
            return self._inline(_fill_all(filled, texts))
        inlined = self._get(self._inlined, filled)
        if inlined is None:
            shape.misses += 1
            inlined = self._learn(filled, {i: n for i, n in shape.counts.items() if i not in shape.fill})
            self._put(self._inlined, filled, inlined)
        else:
            shape.hits += 1
        if inlined is _INLINE_WHOLE:
            return self._inline(_fill_all(filled, texts))
        return _assemble(inlined, texts)

    def _learn(self, page: str, counts: dict[int, int]) -> _Inlined:
        """Inline a page with holes, cut at them; _INLINE_WHOLE unless every hole came through
        as often as it went in, and in plain text."""
        out = self._inline(page)
        parts: list[str] = []
        holes: list[int] = []
        start = 0
        outside = _not_text_spans(out)
        for match in _HOLE.finditer(out):
            if _inside(match.start(), outside) or _continues_markup(out, match.start()):
                return _INLINE_WHOLE
            parts.append(out[start : match.start()])
            holes.append(int(match[1]))
            start = match.end()
        parts.append(out[start:])
        if out.count(_OPEN) != len(holes) or {i: holes.count(i) for i in set(holes)} != counts:
            return _INLINE_WHOLE
        return _Inlined(tuple(parts), tuple(holes))

    def _get(self, cache: OrderedDict[str, Any], key: str) -> Any:
        with self._lock:
            found = cache.get(key)
            if found is not None:
                cache.move_to_end(key)
            return found

    def _put(self, cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        with self._lock:
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > self._size:
                cache.popitem(last=False)


def _count_holes(page: str, total: int) -> dict[int, int] | None:
    """How often each hole appears; None if one is missing or a placeholder was altered."""
    counts: dict[int, int] = {}
    for match in _HOLE.finditer(page):
        index = int(match[1])
        counts[index] = counts.get(index, 0) + 1
    if len(counts) != total or page.count(_OPEN) != sum(counts.values()):
        return None
    return counts


def _not_text_spans(page: str) -> list[tuple[int, int]]:
    return [match.span() for match in _NOT_TEXT.finditer(page)]


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


def _holes_outside_text(page: str) -> frozenset[int]:
    """Holes to fill before inlining: in tags, comments and raw text, or after `&` or `<`."""
    spans = _not_text_spans(page)
    return frozenset(
        int(match[1])
        for match in _HOLE.finditer(page)
        if _inside(match.start(), spans) or _continues_markup(page, match.start())
    )


def _continues_markup(page: str, position: int) -> bool:
    """Whether a value at `position` could complete a character reference or a tag begun by
    the text before it ("&am" + "p;", "<" + "b")."""
    if page.endswith(("<", "</"), 0, position):
        return True
    ampersand = page.rfind("&", 0, position)
    return ampersand >= 0 and _REFERENCE_SO_FAR.fullmatch(page, ampersand, position) is not None


def _fill(page: str, texts: list[str], holes: frozenset[int]) -> str:
    """The page with these holes replaced by their values, escaped exactly as the template
    would have written them."""
    for index in holes:
        page = page.replace(_placeholder(index), escape(texts[index]))
    return page


def _fill_all(page: str, texts: list[str]) -> str:
    return _HOLE.sub(lambda match: escape(texts[int(match[1])]), page)


def _assemble(inlined: _Inlined, texts: list[str]) -> str:
    pieces = [inlined.parts[0]]
    for index, part in zip(inlined.holes, inlined.parts[1:], strict=True):
        pieces.append(_as_html_text(texts[index]))
        pieces.append(part)
    return "".join(pieces)


def _as_html_text(text: str) -> str:
    """Text as the inliner writes it out (html5ever's serializer): &, <, > and no-break space."""
    return text.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace("<", "&lt;").replace(">", "&gt;")

