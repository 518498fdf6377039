"""A sending process beside the main one takes the rules and templates the main process checked
without checking them again, only when its files are exactly those (the same digest), renders
them as it read them whatever is saved afterwards, and checks them itself when they differ."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notifier.compose.rendering import Renderer
from notifier.compose.samples import sample_context
from notifier.config.live import LiveConfig
from notifier.config.validate import accept, load_accepted
from notifier.errors import RulesError
from notifier.run.workers import ACCEPTED, READING_DONE, _MainProcess


def _render(renderer: Renderer, locale: str = "en") -> str:
    context = sample_context("order.placed", locale)
    context["brand"] = {"name": "Blossom & Co", "email": "care@blossom.example"}
    context["now"] = datetime(2026, 12, 6, 12, tzinfo=UTC)
    return renderer.render("order_confirmation", locale, context).html


def test_the_same_files_are_taken_as_checked_and_render_the_same(project: Path) -> None:
    rules, templates = project / "rules.yaml", project / "templates"
    checked = accept(rules, templates)
    taken = load_accepted(rules, templates, checked.digest)
    assert taken is not None
    assert taken.digest == checked.digest
    assert taken.rules == checked.rules
    for locale in ("en", "zh-CN", "zh-TW"):
        assert _render(taken.renderer, locale) == _render(checked.renderer, locale)


@pytest.mark.parametrize(
    "edit",
    [
        "templates/order_confirmation/en.html",
        "templates/_layout.html",
        "rules.yaml",
    ],
)
def test_an_edit_since_the_check_is_not_taken_unchecked(project: Path, edit: str) -> None:
    rules, templates = project / "rules.yaml", project / "templates"
    digest = accept(rules, templates).digest
    path = project / edit
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert load_accepted(rules, templates, digest) is None


def test_a_file_added_to_a_template_folder_is_not_taken_unchecked(project: Path) -> None:
    rules, templates = project / "rules.yaml", project / "templates"
    digest = accept(rules, templates).digest
    (templates / "order_confirmation" / "fr.subject.txt").write_text("Commande\n", encoding="utf-8")
    assert load_accepted(rules, templates, digest) is None
    assert load_accepted(rules, templates, "") is None, "no digest: nothing is taken unchecked"


def test_what_was_read_is_what_renders_whatever_is_saved_afterwards(project: Path) -> None:
    rules, templates = project / "rules.yaml", project / "templates"
    checked = accept(rules, templates)
    taken = load_accepted(rules, templates, checked.digest)
    assert taken is not None
    before = _render(checked.renderer)
    page = templates / "order_confirmation" / "en.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</p>", "EDITED</p>"), encoding="utf-8")
    assert _render(taken.renderer) == before, "the file as read and compared, never read again"


def test_a_process_whose_files_differ_checks_them_itself(project: Path) -> None:
    rules, templates = project / "rules.yaml", project / "templates"
    digest = accept(rules, templates).digest
    good = rules.read_text(encoding="utf-8")
    rules.write_text(good + "\n  - name: [broken\n", encoding="utf-8")
    with pytest.raises(RulesError):
        LiveConfig(rules, templates, accepted=digest)
    rules.write_text(good, encoding="utf-8")
    assert LiveConfig(rules, templates, accepted=digest).accepted == digest


def test_the_digest_in_force_follows_a_reload(project: Path) -> None:
    rules, templates = project / "rules.yaml", project / "templates"
    config = LiveConfig(rules, templates)
    first = config.accepted
    assert LiveConfig(rules, templates, accepted=first).accepted == first
    path = templates / "order_confirmation" / "en.subject.txt"
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + " !\n", encoding="utf-8")
    stamp = path.stat().st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(stamp, stamp))
    assert config.reload_if_changed().changed
    assert config.accepted not in ("", first)
    assert load_accepted(rules, templates, config.accepted) is not None


def test_a_worker_waits_for_the_digest_and_keeps_what_came_before_it() -> None:
    read, write = os.pipe()
    try:
        digest = "ab" * 32
        os.write(write, READING_DONE + ACCEPTED + digest.encode("ascii"))
        main = _MainProcess(read)
        main.wait_accepted()
        assert (main.accepted, main.reading_done, main.gone) == (digest, True, False)
        os.close(write)
        write = -1
        quiet = _MainProcess(read)
        quiet.wait_accepted()
        assert quiet.gone and quiet.accepted == "", "the main process went away before its word"
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)


def test_a_capture_mapping_edited_since_the_check_is_not_taken_unchecked(project: Path) -> None:
    """The mapping decides which event types rules may name, so it is part of what was checked."""
    rules, templates, capture = project / "rules.yaml", project / "templates", project / "capture.yaml"
    capture.write_text(
        "events:\n  - event: order.gift_wrapped\n    table: shop_giftwrap\n    on: insert\n"
        "    subject: new.order_id\n",
        encoding="utf-8",
    )
    digest = accept(rules, templates, capture=capture).digest
    assert digest != accept(rules, templates).digest
    assert load_accepted(rules, templates, digest, capture=capture) is not None
    capture.write_text(capture.read_text(encoding="utf-8") + "  - event: order.boxed\n", encoding="utf-8")
    assert load_accepted(rules, templates, digest, capture=capture) is None
