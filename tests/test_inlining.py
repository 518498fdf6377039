"""CSS inlined once per page shape (notifier/inlining.py) gives, byte for byte, what inlining
each message whole gives: for every shipped message and for templates built to trip it up.

The daemon's renderer (auto_reload=False) inlines by shape; a renderer with auto_reload
inlines each message whole, so it is the reference here.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from notifier.compose import inlining
from notifier.compose.inlining import ShapeCache
from notifier.compose.rendering import Renderer, TemplateError
from notifier.compose.samples import SAMPLE_TRIGGER_OF_TEMPLATE, sample_context
from notifier.core.locale import LOCALES

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Values that an HTML parser or serializer treats specially, and ordinary ones.
AWKWARD = [
    "Ms Lin",
    "林美玲",
    "O'Brien & Sons <Ltd> \"quoted\"",
    "\xa0no-break\xa0",
    "Zoë 🌹 tab\there",
    " leading and trailing ",
    "   ",
    "",
    "carriage\r\nreturn",
    "nul\x00char",
    "amp;",
    "&amp;",
    "\ue000private\ue001",
    "line one\nline two\n\nline four",
    "x" * 400,
]


def _by_shape_and_whole(root: Path) -> tuple[Renderer, Renderer]:
    return Renderer(root, auto_reload=False), Renderer(root, auto_reload=True)


def _contexts(template: str, locale: str) -> list[dict[str, Any]]:
    """The sample context, then each awkward value in the customer's name, the order's number,
    name and address, and the items' names (rotated so that they mix)."""
    base = sample_context(SAMPLE_TRIGGER_OF_TEMPLATE[template], locale)
    contexts = [base]
    for shift in range(len(AWKWARD)):
        def pick(offset: int, shift: int = shift) -> str:
            return AWKWARD[(shift + offset) % len(AWKWARD)]

        context = copy.deepcopy(base)
        context["customer"]["name"] = pick(0)
        if context.get("order"):
            context["order"].update(number=pick(1) or "1", ship_to_name=pick(2), ship_to_address=pick(3))
        for offset, item in enumerate(context.get("items") or []):
            item["name"] = pick(4 + offset)
        contexts.append(context)
    return contexts


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("template", sorted(SAMPLE_TRIGGER_OF_TEMPLATE))
def test_every_shipped_message_is_the_same_inlined_by_shape(template: str, locale: str) -> None:
    by_shape, whole = _by_shape_and_whole(TEMPLATES)
    for context in _contexts(template, locale) * 2:  # twice: learned, then from the cache
        try:
            expected = whole.render(template, locale, context)
        except TemplateError as exc:
            with pytest.raises(TemplateError) as caught:
                by_shape.render(template, locale, context)
            assert str(caught.value) == str(exc)
            continue
        assert by_shape.render(template, locale, context) == expected


def _renderers(tmp_path: Path, html: str) -> tuple[Renderer, Renderer]:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "en.subject.txt").write_text("Hello", encoding="utf-8")
    (tmp_path / "t" / "en.html").write_text(html, encoding="utf-8")
    return _by_shape_and_whole(tmp_path)


STYLE = (
    "<style>.big { color: red; } .small { color: blue; } p:empty { display: none; }"
    " b { color: green; }</style>"
)

# Templates in which a value could change the page's shape, or its output is looked at.
TRICKY = {
    "class": (STYLE + '<p class="{{ v }}">x</p>', ["big", "small", "big small"]),
    "empty": (STYLE + "<p>{{ v }}</p>", ["", "x", " "]),
    "captured and measured": (
        "{% set x %}{{ v }}{% endset %}{% if x|length > 3 %}<b>long</b>{% endif %}<p>{{ x }}</p>",
        ["ab", "abcdef"],
    ),
    "filter block": ("{% filter upper %}<p>{{ v }}</p>{% endfilter %}", ["ab", "cd"]),
    "caller looked at": (
        "{% macro box() %}{% if caller()|length > 20 %}<div>{{ caller() }}</div>{% endif %}{% endmacro %}"
        "{% call box() %}{{ v }}{% endcall %}",
        ["short", "a good deal longer than twenty"],
    ),
    "comment": ("<!-- {{ v }} --><p>x</p>", ["a&b", "c<d"]),
    "style": ("<style>p { color: {{ v }}; }</style><p>x</p>", ["red", "blue"]),
    "character reference": ("<p>&{{ v }}</p>", ["amp;", "lt;", "x"]),
    "tag": ("<p><{{ v }}>x</p>", ["b", "i"]),
    "pre": ("<pre>{{ v }}</pre>", ["\nx", "x", "y"]),
    "unescaped": ("{% autoescape false %}<p>{{ v }}</p>{% endautoescape %}", ["<b>x</b>", "<i>y</i>"]),
    "table": ("<table>{{ v }}<tr><td>x</td></tr></table>", [" ", "x", " x ", "y"]),
    "head": ("<html><head>{{ v }}<title>t</title></head><body>b</body></html>", [" x", "x", "y"]),
    "attribute and text": ('<p title="{{ v }}">{{ v }}</p>', ['a"b', "a&b", "a\xa0b", "<i>", "c"]),
    "nl2br": ("<p>{{ v|nl2br }}</p>", ["one\ntwo", "three\nfour", " five\n six"]),
    "nl2br filtered": ("<p>{{ v|nl2br|upper }}</p>", ["one\ntwo", "three\nfour"]),
    "repeated": ("{% macro twice() %}{{ caller() }}|{{ caller() }}{% endmacro %}"
                 "<p>{% call twice() %}{{ v }}{% endcall %}</p>", ["a", "b&c"]),
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_values_that_could_change_the_page_give_what_inlining_whole_gives(
    tmp_path: Path, name: str
) -> None:
    html, values = TRICKY[name]
    by_shape, whole = _renderers(tmp_path, html)
    for value in values * 2:
        context = {"v": value}
        assert by_shape.render("t", "en", context) == whole.render("t", "en", context), value


def test_a_page_shape_is_inlined_once_however_many_messages_share_it(tmp_path: Path) -> None:
    for name in ("_layout.html", "_style.css", "_macros.html", "_footer.txt", "order_confirmation"):
        source = TEMPLATES / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    renderer = Renderer(tmp_path, auto_reload=False)
    inlined: list[str] = []
    real = renderer._shapes._inline  # type: ignore[union-attr]

    def counting(page: str) -> str:
        inlined.append(page)
        return real(page)

    renderer._shapes = ShapeCache(counting)
    names = set()
    for number in range(60):
        context = sample_context("order.placed", "en")
        context["customer"]["name"] = f"Customer {number}"
        context["order"]["number"] = f"10{number:04d}"
        context["items"][0]["name"] = f"Roses, {number} stems"
        rendered = renderer.render("order_confirmation", "en", context)
        assert f"Customer {number}" in rendered.html and f"Roses, {number} stems" in rendered.html
        names.add(rendered.html)
    assert len(names) == 60
    assert len(inlined) == 1


def test_a_shape_whose_filled_values_never_repeat_stops_being_cached(tmp_path: Path) -> None:
    link = '<p class="big"><a href="https://example.com/{{ v }}">{{ v }}</a></p>'
    by_shape, whole = _renderers(tmp_path, STYLE + link)
    for number in range(100):
        context = {"v": f"customer-{number}"}
        assert by_shape.render("t", "en", context) == whole.render("t", "en", context)
    cache = by_shape._shapes
    assert cache is not None
    assert len(cache._inlined) <= inlining._GIVE_UP_MISSES + 1


def test_the_check_reads_the_template_as_compiled_not_a_later_edit(tmp_path: Path) -> None:
    """The daemon keeps the templates it checked; a later (refused) edit that no longer looks
    at its output must not make the checked template, which does, render with holes."""
    looks, _ = TRICKY["captured and measured"]
    by_shape, _ = _renderers(tmp_path, looks)
    assert by_shape.check_syntax() == []  # the daemon checks (and compiles) at load
    (tmp_path / "t" / "en.html").write_text("<p>{{ v }}</p>", encoding="utf-8")
    reference = Renderer(tmp_path / "reference", auto_reload=True)
    shutil.copytree(tmp_path / "t", tmp_path / "reference" / "t")
    (tmp_path / "reference" / "t" / "en.html").write_text(looks, encoding="utf-8")
    for value in ("ab", "abcdef"):
        assert by_shape.render("t", "en", {"v": value}) == reference.render("t", "en", {"v": value})


def test_what_one_file_allows_is_remembered_for_every_template_that_uses_it() -> None:
    """A shared file is read once for every template using it: a layout that looks at its
    output rules out holes for each of them, the template with no layout keeps them."""
    sources = {
        "_plain.html": "<div>{% block body %}{% endblock %}</div>",
        "_measuring.html": "{% set x %}{% block body %}{% endblock %}{% endset %}{{ x|length }}",
        "a.html": '{% extends "_plain.html" %}{% block body %}{{ v }}{% endblock %}',
        "b.html": '{% extends "_measuring.html" %}{% block body %}{{ v }}{% endblock %}',
        "c.html": '{% extends "_measuring.html" %}{% block body %}{{ w }}{% endblock %}',
        "d.html": "<p>{{ v }}</p>",
    }
    read: list[str] = []

    def source_of(name: str) -> str:
        read.append(name)
        return sources[name]

    known: dict[str, inlining.FileFacts] = {}
    templates = ("a.html", "b.html", "c.html", "d.html")
    found = {name: inlining.may_have_holes(source_of, name, known) for name in templates}
    assert found == {"a.html": True, "b.html": False, "c.html": False, "d.html": True}
    assert sorted(read) == sorted(sources), "every file read once"
    assert {name: inlining.may_have_holes(sources.__getitem__, name) for name in found} == found
