"""Han and Latin letters get a space between them in Chinese text, on either side, in the text of
an HTML part only (never in a tag), and nowhere else: digits, punctuation and spaced text stay."""

from __future__ import annotations

import pytest

from notifier.compose.spacing import space_html, space_text


@pytest.mark.parametrize(
    ("text", "spaced"),
    [
        ("订购过Twelve red roses", "订购过 Twelve red roses"),
        ("由DHL配送", "由 DHL 配送"),
        ("中A中B中", "中 A 中 B 中"),
        ("Éa中ÿ", "Éa 中 ÿ"),  # Latin letters with accents are letters too
        ("2月13日\uff0c下午2:00", "2月13日\uff0c下午2:00"),  # digits and full-width punctuation take none
        ("由 DHL 配送", "由 DHL 配送"),  # spaced already: unchanged
        ("㐀a\uf900b\u4dbfc", "㐀 a \uf900 b \u4dbf c"),  # the ends of every Han block
        ("\u2e80a\u33ffb\ufb00c", "\u2e80a\u33ffb\ufb00c"),  # just outside them
        ("a中", "a 中"),
        ("", ""),
        ("only ascii", "only ascii"),
    ],
)
def test_text_is_spaced_where_han_meets_a_latin_letter(text: str, spaced: str) -> None:
    assert space_text(text) == spaced


@pytest.mark.parametrize(
    ("html", "spaced"),
    [
        ('<p title="订单A">订单A</p>', '<p title="订单A">订单 A</p>'),
        ('<a href="x">DHL</a>配送', '<a href="x">DHL</a>配送'),  # a tag between: not glued
        ("<b>由DHL配送</b>", "<b>由 DHL 配送</b>"),
        ("中A> 中A", "中 A> 中 A"),  # a stray > starts no tag
        ("<p 中A <i>", "<p 中A <i>"),  # inside the tag until its first >
        ("中A <unclosed 中A", "中 A <unclosed 中 A"),  # a < never closed is text
        ('<td style="font-family: x">订购过Roses</td>', '<td style="font-family: x">订购过 Roses</td>'),
    ],
)
def test_html_is_spaced_in_its_text_only(html: str, spaced: str) -> None:
    assert space_html(html) == spaced
