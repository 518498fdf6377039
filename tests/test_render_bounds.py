"""Every render is bounded (size of a part, time of a message, range() items) and fails in
plain words when it goes over; and `render` renders exactly the locale it is given."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from notifier.compose.budget import LIMITS, Limits
from notifier.compose.rendering import Renderer, TemplateError
from notifier.compose.samples import sample_context
from notifier.core.locale import message_locale


def _renderer(root: Path, body: str, limits: Limits = LIMITS) -> Renderer:
    folder = root / "t"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "en.subject.txt").write_text("Hello {{ customer.name }}")
    (folder / "en.html").write_text(body)
    return Renderer(root, auto_reload=False, limits=limits)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            "{% for a in range(3000) %}{% for b in range(3000) %}{% for c in range(3000) %}"
            "{{ c }}{% endfor %}{% endfor %}{% endfor %}",
            "over 200,000 range() items in one message (the iteration limit)",
        ),
        ("{{ 'x' * 100000000 }}", "the result of * is over 1 MB (the size limit for one part)"),
        ("{{ [1, 2] * 10000000 }}", "the result of * is over 1 MB"),
        ("{{ 7 ** 999999999 }}", "too big a number for a template"),
        (
            "{% set ns = namespace(s='0123456789') %}{% for i in range(30) %}"
            "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
            "the result of + is over 1 MB",
        ),
        ("{% for i in range(99999) %}{{ 'sixteen letters!' }}{% endfor %}", "the rendered part is over 1 MB"),
    ],
    ids=["nested-range", "repeat-text", "repeat-list", "power", "doubling", "output"],
)
def test_a_render_over_a_bound_fails_fast_in_plain_words(tmp_path: Path, body: str, words: str) -> None:
    renderer = _renderer(tmp_path, body)
    started = time.monotonic()
    with pytest.raises(TemplateError) as caught:
        renderer.render("t", "en", sample_context("order.placed"))
    assert time.monotonic() - started < 5
    assert str(caught.value).startswith(f"{tmp_path.as_posix()}/t/en.html") and words in str(caught.value)


def test_a_render_over_the_time_limit_stops_at_the_limit(tmp_path: Path) -> None:
    # No range() and nothing over the size limit: only the clock stops this one.
    body = (
        "{% macro m(s) %}{% for c in s %}{% for d in s %}{{ c }}{% endfor %}{% endfor %}{% endmacro %}"
        "{{ m('y' * 900000) }}"
    )
    renderer = _renderer(tmp_path, body, Limits(seconds=0.3))
    started = time.monotonic()
    with pytest.raises(TemplateError, match=r"rendering took over 0\.3 s \(the time limit for one message\)"):
        renderer.render("t", "en", sample_context("order.placed"))
    assert time.monotonic() - started < 3


def test_the_bounds_are_per_message_and_the_next_message_renders(tmp_path: Path) -> None:
    body = "{% for i in range(order.total|int) %}.{% endfor %}"
    renderer = _renderer(tmp_path, body, Limits(iterations=1000))
    small, big = sample_context("order.placed"), sample_context("order.placed")
    small["order"]["total"], big["order"]["total"] = 600, 5000
    for _ in range(5):  # 5 x 600 > 1000: the budget is one message's, not the renderer's
        assert renderer.render("t", "en", small).html.count(".") >= 600
    with pytest.raises(TemplateError, match="the iteration limit"):
        renderer.render("t", "en", big)
    assert renderer.render("t", "en", small).subject == "Hello " + small["customer"]["name"]


def test_render_renders_exactly_the_locale_it_is_given(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, "<p>en</p>")
    context = sample_context("order.placed", "zh-TW")
    with pytest.raises(TemplateError, match=r"no 'zh-TW' version \(it has en\)"):
        renderer.render("t", "zh-TW", context)
    chosen = message_locale(renderer.locales_of("t"), "zh-TW")
    assert chosen == renderer.choose_locale("t", "zh_TW") == "en"
    assert "<p>en</p>" in renderer.render("t", chosen, context).html


def test_a_rules_own_locale_wins_over_the_customers(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, "<p>en</p>")
    (tmp_path / "t" / "zh-TW.subject.txt").write_text("嗨")
    (tmp_path / "t" / "zh-TW.html").write_text("<p>tw</p>")
    renderer = Renderer(tmp_path, auto_reload=False)
    assert message_locale(renderer.locales_of("t"), "zh-TW", "en") == "en"
    assert message_locale(renderer.locales_of("t"), "zh-Hant-HK") == "zh-TW"
