"""Chinese text: a space between Han characters and Latin letters, however they came together.

A zh template joins values to its own words: `您曾在我们这里订购过{{ product.name }}` with an
English product name gives `订购过Twelve red roses`, which a Chinese reader finds glued. The
rule Chinese typesetting guides and most readers expect is a space between a Han character
and a Latin letter, on either side (`订购过 Twelve red roses`, `由 DHL 配送`); full-width
punctuation takes none, and neither do digits, so dates and times stay as Chinese
writes them and Babel formats them (2月13日, 下午2:00). It is applied to every rendered zh
subject, HTML part (text between tags only: no attribute, URL or CSS is touched) and text
part, so no template can glue them by accident and a template that spaces already is unchanged.
"""

from __future__ import annotations

import re

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LATIN = "A-Za-z\u00c0-\u024f"
_GLUED = re.compile(f"(?<=[{_HAN}])(?=[{_LATIN}])|(?<=[{_LATIN}])(?=[{_HAN}])")
_TAG = re.compile(r"(<[^>]*>)")


def spaced_locale(locale: str) -> bool:
    """Whether the rule applies to a message in this locale (Chinese: zh-CN, zh-TW)."""
    return locale.lower().startswith("zh")


def space_text(text: str) -> str:
    """Plain text (a subject, a text part) with a space wherever Han meets a Latin letter."""
    return _GLUED.sub(" ", text)


def space_html(html: str) -> str:
    """The same for HTML, in the text between tags only."""
    parts = _TAG.split(html)
    return "".join(part if index % 2 else space_text(part) for index, part in enumerate(parts))
