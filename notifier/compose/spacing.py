"""Chinese text: a space between Han characters and Latin letters, however they came together.

A zh template joins values to its own words: `您曾在我们这里订购过{{ product.name }}` with an
English product name gives `订购过Twelve red roses`, which a Chinese reader finds glued. The
rule Chinese typesetting guides and most readers expect is a space between a Han character
and a Latin letter, on either side (`订购过 Twelve red roses`, `由 DHL 配送`); full-width
punctuation takes none, and neither do digits, so dates and times stay as Chinese
writes them and Babel formats them (2月13日, 下午2:00). It is applied to every rendered zh
subject, HTML part (text between tags only: no attribute, URL or CSS is touched) and text
part, so no template can glue them by accident and a template that spaces already is unchanged.

Every zh message passes here, so the places are found in one scan that stops at Han characters
only (a pattern that starts with a character class is searched for at C speed), and an HTML
part is not cut into its tags and texts: a place inside a tag is told by the nearest `<` and `>`.
"""

from __future__ import annotations

import re

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LATIN = "A-Za-z\u00c0-\u024f"
# A Han character with a Latin letter after it, or before it.
_GLUED_HAN = re.compile(f"[{_HAN}](?:(?=[{_LATIN}])|(?<=[{_LATIN}][{_HAN}]))")
_LATIN_LETTER = re.compile(f"[{_LATIN}]")


def spaced_locale(locale: str) -> bool:
    """Whether the rule applies to a message in this locale (Chinese: zh-CN, zh-TW)."""
    return locale.lower().startswith("zh")


def space_text(text: str) -> str:
    """Plain text (a subject, a text part) with a space wherever Han meets a Latin letter."""
    return _spaced(text, _glued_at(text))


def space_html(html: str) -> str:
    """The same for HTML, in the text between tags only."""
    return _spaced(html, [at for at in _glued_at(html) if not _in_tag(html, at)])


def _glued_at(text: str) -> list[int]:
    """Where a space goes (before text[at]), in order."""
    if text.isascii():
        return []
    places = []
    for found in _GLUED_HAN.finditer(text):
        at = found.start()
        if at and _LATIN_LETTER.match(text, at - 1):
            places.append(at)
        if _LATIN_LETTER.match(text, at + 1):
            places.append(at + 1)
    return places


def _in_tag(html: str, at: int) -> bool:
    """Whether html[at] is inside a tag: a `<` after the last `>` before it, and a `>` to
    close it (a tag is `<` up to the next `>`; a stray `>` in text starts none)."""
    return html.rfind("<", 0, at) > html.rfind(">", 0, at) and html.find(">", at) != -1


def _spaced(text: str, places: list[int]) -> str:
    if not places:
        return text
    starts = [0, *places]
    return " ".join(text[start:end] for start, end in zip(starts, [*places, len(text)], strict=True))
