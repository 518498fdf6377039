"""The template editor in a real browser: Chromium headless driven by Playwright. Sign in, edit,
watch the live preview change, save, see a refused edit's reason, diff, revert.

Like tests/test_gallery.py's browser test, it skips on a machine without chromium (or Playwright)
and fails instead where CI or NOTIFIER_REQUIRE_BROWSER is set."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from notifier.config.settings import Secret, Settings
from notifier.db.engine import make_engine
from notifier.db.store import template_versions as kept
from notifier.tools.web import create_app
from notifier.tools.web_auth import add_user

PASSWORD = "correct horse battery"
SUBJECT = "order_confirmation/en.subject.txt"
CHROMIUM = "/usr/bin/chromium"


def _required(why: str) -> None:
    if os.environ.get("CI") or os.environ.get("NOTIFIER_REQUIRE_BROWSER"):
        pytest.fail(f"{why}, but the browser tests are required here (CI or NOTIFIER_REQUIRE_BROWSER)")
    pytest.skip(f"{why}; this browser test runs in CI")


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if chromium is None:
        _required("chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _required("Playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def site(
    sqlite_url: str, project: Path, tmp_path: Path, serve: Callable[[Starlette], str]
) -> Iterator[tuple[str, Settings, sa.Engine]]:
    users = tmp_path / "editors.passwd"
    add_user(users, "maria", PASSWORD)
    settings = replace(
        Settings(),
        database_url=Secret(sqlite_url),
        rules=project / "rules.yaml",
        templates=project / "templates",
        secret_key=Secret("editor-browser-key"),
        editor=True,
        editor_users=users,
    )
    engine = make_engine(sqlite_url)
    yield serve(create_app(settings, engine=engine)), settings, engine
    engine.dispose()


def test_in_a_real_browser_sign_in_edit_preview_save_refuse_diff_and_revert(
    browser: Any, site: tuple[str, Settings, sa.Engine]
) -> None:
    from playwright.sync_api import expect  # (installed: the fixture made sure)

    base, settings, engine = site
    original = (settings.templates / SUBJECT).read_text(encoding="utf-8")
    page = browser.new_page()
    page.set_default_timeout(20_000)

    page.goto(f"{base}/edit")  # not signed in: the sign-in page
    assert page.url == f"{base}/edit/login"
    page.fill("input[name=name]", "maria")
    page.fill("input[name=password]", "not the password")
    page.click("#sign-in")
    assert "do not match" in page.inner_text("#says")
    page.fill("input[name=name]", "maria")
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/edit")
    page.click(f"text={SUBJECT}")
    page.wait_for_url(f"{base}/edit/file/{SUBJECT}")

    # Live preview: typing re-renders every locale, the edited one with the draft.
    english = "#preview .locale[data-locale=en] .subject"
    assert page.inner_text(english) != "Order 1042: fresh from the browser"
    page.fill("textarea[name=content]", "Order {{ order.number }}: fresh from the browser\n")
    expect(page.locator(english)).to_have_text("Order 1042: fresh from the browser")
    assert page.locator("#preview .locale[data-locale=zh-TW] .subject").count() == 1
    assert (settings.templates / SUBJECT).read_text(encoding="utf-8") == original  # only previewed

    page.fill("input[name=note]", "shorter")
    page.click("#save")
    page.wait_for_selector("#saved")
    assert "Saved as version 2" in page.inner_text("#saved")
    assert (settings.templates / SUBJECT).read_text(encoding="utf-8") == (
        "Order {{ order.number }}: fresh from the browser\n"
    )

    # A bad edit: the preview says so, and the save is refused with check's reason.
    page.fill("textarea[name=content]", "Order {{ order.nickname }}\n")
    expect(page.locator("#preview .locale[data-locale=en] .err")).to_contain_text("nickname")
    page.click("#save")
    page.wait_for_selector("#refused")
    assert "nickname" in page.inner_text("#refused") and "Not saved" in page.inner_text("#refused")
    assert page.input_value("textarea[name=content]") == "Order {{ order.nickname }}\n"  # kept to fix
    assert "fresh from the browser" in (settings.templates / SUBJECT).read_text(encoding="utf-8")

    # Diff against the version found on disk, then revert to it.
    page.goto(f"{base}/edit/file/{SUBJECT}")
    page.click("#versions tr[data-version='1'] >> text=diff with now")
    assert page.inner_text(".diff .del").strip() == f"-{original.strip()}"
    assert page.inner_text(".diff .add").strip() == "+Order {{ order.number }}: fresh from the browser"
    page.go_back()
    page.click("#versions tr[data-version='1'] >> text=Revert to this")
    page.wait_for_selector("#saved")
    assert "Saved as version 3" in page.inner_text("#saved")
    assert (settings.templates / SUBJECT).read_text(encoding="utf-8") == original
    assert page.input_value("textarea[name=content]") == original
    with engine.connect() as conn:
        history = [(v.author, v.note) for v in kept.versions_of(conn, SUBJECT)]
    assert history == [
        (kept.ON_DISK, "as found before the first edit here"),
        ("maria", "shorter"),
        ("maria", "revert to version 1"),
    ]
    page.close()
