"""The text part of a message made from its HTML part, when a template has no .txt file.

Paragraphs and headings become paragraphs, <br> a line break, links "text (url)", list
items "- item", table rows one per line; what is hidden (head, style, display:none) is left
out.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text", "tidy_text"]

_SKIPPED = frozenset({"head", "style", "script", "title", "template", "noscript"})
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"})
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "pre", "dl"}
)
_BLOCKS = _PARAGRAPHS | {
    "div", "tr", "li", "section", "header", "footer", "article", "center", "dt", "dd",
    "address", "tbody", "thead", "tfoot", "body",
}  # fmt: skip
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all", re.I)


def html_to_text(html: str) -> str:
    """A readable plain-text version of an HTML message: paragraphs, line breaks,
    links as "text (url)", list items as "- item", table rows one per line."""
    parser = _TextWriter()
    parser.feed(html)
    parser.close()
    return tidy_text(parser.text())


class _TextWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._open: list[tuple[str, bool]] = []  # (tag, hides its content)
        self._hidden = 0
        self._breaks = 0  # pending line breaks before the next text
        self._space = ""  # pending separator before the next text
        self._links: list[tuple[str, int]] = []  # (href, index in _out where its text starts)
        self._lists: list[list[int]] = []  # per open list: [ordered (0/1), counter]
        self._cells = 0
        self._pre = 0

    def text(self) -> str:
        return "".join(self._out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        hides = (
            tag in _SKIPPED
            or "hidden" in attributes
            or attributes.get("aria-hidden") == "true"
            or bool(_HIDDEN_STYLE.search(attributes.get("style") or ""))
        )
        if tag not in _VOID:
            self._open.append((tag, hides))
            self._hidden += hides
        if self._hidden or hides:
            return
        if tag in _BLOCKS:
            self._break(2 if tag in _PARAGRAPHS else 1)
        if tag == "br":
            self._breaks = min(self._breaks + 1, 2)
        elif tag == "hr":
            self._write("-" * 20)
            self._break(2)
        elif tag == "img" and attributes.get("alt"):
            self._write(attributes["alt"] or "")
        elif tag == "a":
            self._links.append((attributes.get("href") or "", len(self._out)))
        elif tag in ("ul", "ol"):
            self._lists.append([tag == "ol", 0])
        elif tag == "li":
            marker = "- "
            if self._lists and self._lists[-1][0]:
                self._lists[-1][1] += 1
                marker = f"{self._lists[-1][1]}. "
            self._write(marker)
            self._space = ""
        elif tag == "tr":
            self._cells = 0
        elif tag in ("td", "th"):
            if self._cells:
                self._space = "  "
            self._cells += 1
        elif tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if not any(open_tag == tag for open_tag, _ in self._open):
            return
        while self._open:
            open_tag, hides = self._open.pop()
            was_hidden = self._hidden > 0
            self._hidden -= hides
            if not was_hidden:
                self._close(open_tag)
            if open_tag == tag:
                break

    def _close(self, tag: str) -> None:
        if tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self._out[start:]).strip()
            target = href
            if href.lower().startswith("mailto:"):
                target = href[len("mailto:") :].split("?")[0]
            if not target or href.startswith("#") or href.lower().startswith("javascript:"):
                pass
            elif not label:
                self._write(target)
            elif target != label:
                self._space = " "
                self._write(f"({target})")
        elif tag in ("ul", "ol") and self._lists:
            self._lists.pop()
        elif tag == "pre":
            self._pre -= 1
        if tag in _BLOCKS:
            self._break(2 if tag in _PARAGRAPHS else 1)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._pre:
            self._write(data)
            return
        collapsed = re.sub(r"\s+", " ", data)
        if collapsed.startswith(" ") and not self._space:
            self._space = " "
        words = collapsed.strip()
        if words:
            self._write(words)
            if collapsed.endswith(" "):
                self._space = " "

    def _break(self, count: int) -> None:
        self._breaks = max(self._breaks, count)

    def _write(self, text: str) -> None:
        if self._out:
            if self._breaks:
                self._out.append("\n" * self._breaks)
            elif self._space and not self._out[-1][-1:].isspace():
                self._out.append(self._space)
        self._breaks = 0
        self._space = ""
        self._out.append(text)


def tidy_text(value: str) -> str:
    """Lines without trailing spaces, at most one empty line in a row, one newline at the end."""
    lines = [line.rstrip() for line in value.replace("\r\n", "\n").split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text + "\n" if text else ""
