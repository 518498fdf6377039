"""The template editor of `notifier web` over plain HTTP: its sign-in, CSRF, the refusal of a public
address without TLS, saving only what `check` accepts, kept versions, diff, revert, and which
version the running daemon uses. (tests/test_editor_browser.py drives it in Chromium.)"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from notifier.config.settings import Secret, Settings, load_settings
from notifier.db.engine import make_engine
from notifier.db.store import template_versions as kept
from notifier.errors import ConfigError
from notifier.tools.web import create_app
from notifier.tools.web_auth import COOKIE, Sessions, add_user, check_password, listener_refusal, read_users
from tests.journey import run
from tests.shop import Shop

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
SUBJECT = "order_confirmation/en.subject.txt"


def editor_settings(settings: Settings, tmp_path: Path, **more: object) -> Settings:
    users = tmp_path / "editors.passwd"
    if not users.exists():
        add_user(users, "maria", PASSWORD)
    return replace(settings, editor=True, editor_users=users, **more)  # type: ignore[arg-type]


Serve = Callable[[Starlette], str]
Site = tuple["Browserless", Settings, sa.Engine]


class Browserless(httpx.Client):
    """An HTTP client of the app served by uvicorn on a free port (tests/conftest.py's serve)."""

    def __init__(self, serve: Serve, app: Starlette) -> None:
        super().__init__(base_url=serve(app), timeout=30)


@pytest.fixture
def site(
    sqlite_url: str, project: Path, tmp_path: Path, serve: Serve
) -> Iterator[tuple[Browserless, Settings, sa.Engine]]:
    base = replace(
        Settings(),
        database_url=Secret(sqlite_url),
        rules=project / "rules.yaml",
        templates=project / "templates",
        secret_key=Secret("editor-test-key"),
    )
    settings = editor_settings(base, tmp_path)
    engine = make_engine(sqlite_url)
    with Browserless(serve, create_app(settings, engine=engine)) as client:
        yield client, settings, engine
    engine.dispose()


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: Browserless, name: str = "maria", password: str = PASSWORD) -> Browserless:
    token = csrf(client.get("/edit/login").text)
    reply = client.post("/edit/login", data={"csrf": token, "name": name, "password": password})
    assert reply.status_code == 303 and reply.headers["location"] == "/edit", reply.text
    return client


def save(client: Browserless, path: str, content: str, **more: str) -> object:
    page = client.get(f"/edit/file/{path}").text
    base = re.search(r'name="base" value="([^"]+)"', page)
    assert base
    fields = {"csrf": csrf(page), "base": base.group(1), "content": content, **more}
    return client.post(f"/edit/save/{path}", data=fields)


def notifier_cli(
    env: dict[str, str], *args: str, cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        env={**environment, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- off by default, users, sign-in ----------------------------------------------------------------


def test_the_editor_is_off_unless_turned_on(site: Site, serve: Serve) -> None:
    client, settings, engine = site
    with Browserless(serve, create_app(replace(settings, editor=False), engine=engine)) as plain:
        assert plain.get("/edit").status_code == 404 and plain.get("/edit/login").status_code == 404
    assert load_settings(environ={}).editor is False
    assert load_settings(environ={"NOTIFIER_EDITOR": "on"}).editor is True
    with pytest.raises(ConfigError, match="NOTIFIER_EDITOR: 'maybe' is not on or off"):
        load_settings(environ={"NOTIFIER_EDITOR": "maybe"})
    reply = client.get("/edit")
    assert reply.status_code == 303 and reply.headers["location"] == "/edit/login"


def test_add_user_stores_a_salted_scrypt_hash_in_a_private_file(tmp_path: Path) -> None:
    users = tmp_path / "editors.passwd"
    done = notifier_cli(
        {"NOTIFIER_EDITOR_USERS": str(users)}, "web", "--add-user", "ana", "--password-stdin",
        cwd=tmp_path, stdin=f"{PASSWORD}\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"added ana in {users}" in done.stdout
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    add_user(users, "bo", PASSWORD)
    stored = read_users(users)
    assert stored["ana"].startswith("scrypt$16384$8$1$") and PASSWORD not in users.read_text()
    assert stored["ana"] != stored["bo"]  # salted: the same password, two hashes
    assert check_password(stored["ana"], PASSWORD) and not check_password(stored["ana"], PASSWORD + "!")
    short = notifier_cli(
        {"NOTIFIER_EDITOR_USERS": str(users)}, "web", "--add-user", "cy", "--password-stdin",
        cwd=tmp_path, stdin="short\n",
    )  # fmt: skip
    assert short.returncode == 1 and "too short" in short.stderr and "Traceback" not in short.stderr


def test_sign_in_takes_only_the_right_password_and_gives_a_signed_session(
    site: Site,
) -> None:
    client, _settings, _engine = site
    token = csrf(client.get("/edit/login").text)
    wrong = client.post("/edit/login", data={"csrf": token, "name": "maria", "password": "guess"})
    assert wrong.status_code == 401 and "do not match" in wrong.text
    nobody = client.post("/edit/login", data={"csrf": token, "name": "mallory", "password": PASSWORD})
    assert nobody.status_code == 401
    sign_in(client)
    cookie = client.cookies["notifier_editor"]
    index = client.get("/edit")
    assert index.status_code == 200 and SUBJECT in index.text and "_layout.html" in index.text
    assert "maria" in index.text
    payload, signature = cookie.split(".")
    forged = f"{payload}.{'0' * len(signature)}"
    with httpx.Client(base_url=client.base_url) as other:
        assert other.get("/edit", headers={"cookie": f"notifier_editor={forged}"}).status_code == 303
        odd = f"{payload}.{'é' * 4}".encode()  # not ASCII: still just not signed in
        assert other.get("/edit", headers={"cookie": b"notifier_editor=" + odd}).status_code == 303
        assert other.get("/edit", headers={"cookie": f"notifier_editor={cookie}"}).status_code == 200


def test_a_session_ends_after_a_working_day_or_when_the_password_changes(site: Site) -> None:
    client, settings, _engine = site
    sessions = Sessions(settings.editor_users, "editor-test-key")  # the app's own key
    fresh = sessions.new("maria")
    for age, status in [(11 * 3600, 200), (13 * 3600, 303)]:
        cookie = sessions.dump(replace(fresh, issued=int(time.time()) - age))
        with httpx.Client(base_url=client.base_url) as other:
            assert other.get("/edit", headers={"cookie": f"{COOKIE}={cookie}"}).status_code == status, age
    sign_in(client)
    assert client.get("/edit").status_code == 200
    add_user(settings.editor_users, "maria", "a brand new password")
    assert client.get("/edit").status_code == 303


def test_wrong_passwords_are_limited_per_name(site: Site) -> None:
    client, _settings, _engine = site
    token = csrf(client.get("/edit/login").text)
    for _ in range(5):
        client.post("/edit/login", data={"csrf": token, "name": "maria", "password": "guess"})
    blocked = client.post("/edit/login", data={"csrf": token, "name": "maria", "password": PASSWORD})
    assert blocked.status_code == 401 and "wait 15 minutes" in blocked.text


# --- CSRF ---------------------------------------------------------------------------------------


def test_posts_without_the_sessions_token_or_from_another_site_are_refused(
    site: Site,
) -> None:
    client, settings, _engine = site
    sign_in(client)
    before = (settings.templates / SUBJECT).read_text(encoding="utf-8")
    token = csrf(client.get(f"/edit/file/{SUBJECT}").text)
    attempts = [
        ({"content": "Hacked {{ order.number }}"}, {}),
        ({"content": "Hacked {{ order.number }}", "csrf": "not-the-token"}, {}),
        ({"content": "Hacked {{ order.number }}", "csrf": "不是"}, {}),  # not even ASCII
        ({"content": "Hacked {{ order.number }}", "csrf": token}, {"origin": "https://evil.example"}),
        ({"content": "Hacked {{ order.number }}", "csrf": token}, {"sec-fetch-site": "cross-site"}),
    ]
    for fields, headers in attempts:
        reply = client.post(f"/edit/save/{SUBJECT}", data=fields, headers=headers)
        assert reply.status_code == 403, (fields, headers)
    assert (settings.templates / SUBJECT).read_text(encoding="utf-8") == before
    login = client.post("/edit/login", data={"name": "maria", "password": PASSWORD})  # no token either
    assert login.status_code == 403
    out = client.post("/edit/logout", data={"csrf": token})
    assert out.status_code == 303 and client.get("/edit").status_code == 303


# --- public addresses -----------------------------------------------------------------------------


def test_a_public_address_is_refused_without_tls_or_a_proxy_that_terminates_it(tmp_path: Path) -> None:
    assert listener_refusal("127.0.0.1", tls=False, proxy_tls=False) is None
    assert listener_refusal("::1", tls=False, proxy_tls=False) is None
    assert listener_refusal("localhost", tls=False, proxy_tls=False) is None
    assert listener_refusal("0.0.0.0", tls=True, proxy_tls=False) is None
    assert listener_refusal("10.0.0.5", tls=False, proxy_tls=True) is None
    assert "without TLS" in (listener_refusal("0.0.0.0", tls=False, proxy_tls=False) or "")
    users = tmp_path / "editors.passwd"
    add_user(users, "maria", PASSWORD)
    env = {"NOTIFIER_EDITOR_USERS": str(users), "NOTIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    done = notifier_cli(env, "web", "--editor", "--host", "0.0.0.0", "--port", "1", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "will not listen on 0.0.0.0 without TLS" in done.stderr and "Traceback" not in done.stderr
    half = notifier_cli(
        {**env, "NOTIFIER_WEB_TLS_CERT": str(tmp_path / "cert.pem")}, "web", "--editor", cwd=tmp_path
    )
    assert half.returncode == 1 and "go together" in half.stderr
    tables = notifier_cli(env, "web", "--editor", cwd=tmp_path)  # no init-db yet
    assert tables.returncode == 1 and "run notifier init-db first" in tables.stderr
    assert "Traceback" not in tables.stderr
    nobody = notifier_cli(
        {**env, "NOTIFIER_EDITOR_USERS": str(tmp_path / "none")}, "web", "--editor", cwd=tmp_path
    )
    assert nobody.returncode == 1 and "notifier web --add-user NAME" in nobody.stderr


def test_behind_a_tls_proxy_only_https_requests_reach_the_editor(site: Site, serve: Serve) -> None:
    _client, settings, engine = site
    app = create_app(replace(settings, web_proxy_tls=True), engine=engine)
    with Browserless(serve, app) as client:
        plain = client.get("/edit/login")
        assert plain.status_code == 403 and "HTTPS only" in plain.text
        proxied = {"x-forwarded-proto": "https"}
        page = client.get("/edit/login", headers=proxied)
        assert page.status_code == 200
        assert "secure" in page.headers["set-cookie"].lower()
        assert "samesite=strict" in page.headers["set-cookie"].lower()
        assert "httponly" in page.headers["set-cookie"].lower()


# --- edit, preview, save, versions, diff, revert --------------------------------------------------


def test_the_preview_renders_the_draft_in_every_locale_and_on_a_real_order(
    site: Site,
) -> None:
    client, settings, engine = site
    shop = Shop(engine)
    customer = shop.customer(name="Chen Jia-hui", email="jiahui@example.com", locale="zh-TW")
    peonies = shop.product(name="Pink peonies in a jar", price="88.00", currency="TWD")
    order = shop.order(customer, items=[(peonies, 2)], currency="TWD")
    sign_in(client)
    path = "order_confirmation/en.html"
    page = client.get(f"/edit/file/{path}").text
    token, draft = csrf(page), (settings.templates / path).read_text(encoding="utf-8")
    head, _, tail = draft.rpartition("{% endblock %}")  # into the last block: the message's content
    draft = f"{head}<p>Fresh from the draft</p>{{% endblock %}}{tail}"
    reply = client.post(f"/edit/preview/{path}", data={"csrf": token, "content": draft})
    assert reply.status_code == 200
    sections = dict(re.findall(r'<div class="locale" data-locale="([^"]+)">(.*?)</div>', reply.text, re.S))
    assert set(sections) >= {"en", "zh-CN", "zh-TW"}
    assert "Fresh from the draft" in sections["en"] and "Fresh from the draft" not in sections["zh-TW"]
    assert "Fresh from the draft" not in (settings.templates / path).read_text(encoding="utf-8")
    real = client.post(f"/edit/preview/{path}", data={"csrf": token, "content": draft, "order": str(order)})
    assert "Pink peonies in a jar" in real.text and "Fresh from the draft" in real.text
    broken = client.post(f"/edit/preview/{path}", data={"csrf": token, "content": "{{ customer.nickname }}"})
    assert broken.status_code == 200 and "nickname" in broken.text and str(settings.templates) in broken.text
    assert "notifier-edit-" not in broken.text  # errors name the real folder, not the scratch one


def test_save_writes_only_what_check_accepts_and_keeps_every_version_with_who_and_when(
    site: Site,
) -> None:
    client, settings, engine = site
    sign_in(client)
    original = (settings.templates / SUBJECT).read_text(encoding="utf-8")
    good = "Order {{ order.number }} is confirmed, thank you\n"
    saved = save(client, SUBJECT, good.replace("\n", "\r\n"), note="warmer")  # a browser sends CR LF
    assert saved.status_code == 303 and "saved=2" in saved.headers["location"]  # type: ignore[attr-defined]
    assert (settings.templates / SUBJECT).read_text(encoding="utf-8") == good
    for bad, says in [
        ("Order {{ order.nickname }}\n", "nickname"),
        ("Order {% if order.number %}\n", "if"),
    ]:
        refused = save(client, SUBJECT, bad)
        assert refused.status_code == 422, bad  # type: ignore[attr-defined]
        text = refused.text  # type: ignore[attr-defined]
        assert "Not saved: notifier check does not accept this edit" in text and says in text
        assert bad.split("\n")[0] in text  # the draft is kept on the page to fix it
        assert (settings.templates / SUBJECT).read_text(encoding="utf-8") == good
    with engine.connect() as conn:
        versions = kept.versions_of(conn, SUBJECT)
    assert [(v.number, v.author, v.note, v.content) for v in versions] == [
        (1, kept.ON_DISK, "as found before the first edit here", original),
        (2, "maria", "warmer", good),
    ]
    assert versions[1].created_at.tzinfo is not None
    page = client.get(f"/edit/file/{SUBJECT}?saved=2").text
    assert "Saved as version 2" in page and "warmer" in page and "maria" in page
    (settings.templates / SUBJECT).write_text("Order {{ order.number }} (edited on the server)\n", "utf-8")
    save(client, SUBJECT, good)
    with engine.connect() as conn:
        notes = [v.note for v in kept.versions_of(conn, SUBJECT)]
    assert notes == ["as found before the first edit here", "warmer", "changed on disk, not here", "saved"]


def test_a_save_over_a_file_changed_since_it_was_opened_is_refused(
    site: Site,
) -> None:
    client, settings, _engine = site
    sign_in(client)
    page = client.get(f"/edit/file/{SUBJECT}").text
    base = re.search(r'name="base" value="([^"]+)"', page)
    assert base
    (settings.templates / SUBJECT).write_text("Order {{ order.number }} by someone else\n", "utf-8")
    fields = {"csrf": csrf(page), "base": base.group(1), "content": "Order {{ order.number }} mine\n"}
    reply = client.post(f"/edit/save/{SUBJECT}", data=fields)
    assert reply.status_code == 409 and "changed since you opened it" in reply.text
    assert "someone else" in (settings.templates / SUBJECT).read_text(encoding="utf-8")


def test_diff_and_revert_to_a_kept_version_or_the_shipped_default(
    site: Site,
) -> None:
    client, settings, engine = site
    sign_in(client)
    shipped = (ROOT / "templates" / SUBJECT).read_text(encoding="utf-8")
    save(client, SUBJECT, "Order {{ order.number }}: first try\n")
    save(client, SUBJECT, "Order {{ order.number }}: second try\n")
    with engine.connect() as conn:
        first = kept.versions_of(conn, SUBJECT)[1]
    diff = client.get(f"/edit/diff/{SUBJECT}?from={first.id}")
    assert diff.status_code == 200
    assert '<span class="del">-Order {{ order.number }}: first try</span>' in diff.text
    assert '<span class="add">+Order {{ order.number }}: second try</span>' in diff.text
    token = csrf(client.get(f"/edit/file/{SUBJECT}").text)
    back = client.post(f"/edit/revert/{SUBJECT}", data={"csrf": token, "to": str(first.id)})
    assert back.status_code == 303
    assert (settings.templates / SUBJECT).read_text(encoding="utf-8") == first.content
    default = client.post(f"/edit/revert/{SUBJECT}", data={"csrf": token, "to": "default"})
    assert default.status_code == 303
    assert (settings.templates / SUBJECT).read_text(encoding="utf-8") == shipped
    with engine.connect() as conn:
        notes = [(v.author, v.note) for v in kept.versions_of(conn, SUBJECT)]
    assert notes[-2:] == [("maria", "revert to version 2"), ("maria", "revert to the shipped default")]
    assert client.post(f"/edit/revert/{SUBJECT}", data={"csrf": token, "to": "9999"}).status_code == 404
    outside = client.get("/edit/file/../rules.yaml")
    assert outside.status_code == 404


def test_the_gallery_and_the_editor_say_which_version_the_running_daemon_uses(
    settings: Settings, tmp_path: Path, engine: sa.Engine, serve: Serve
) -> None:
    settings = editor_settings(settings, tmp_path)
    with Browserless(serve, create_app(settings, engine=engine)) as client:
        assert "No running daemon has said" in client.get("/preview").text
        assert run(settings)[0] == 0  # `run --once`: publishes what it loaded
        with engine.connect() as conn:
            loaded = kept.loaded_templates(conn)
        assert loaded is not None and len(loaded.digest) == 12 and SUBJECT in loaded.files
        gallery = client.get("/preview").text
        assert f"uses templates version {loaded.digest}" in gallery and "what is on disk" in gallery
        sign_in(client)
        save(client, SUBJECT, "Order {{ order.number }} is confirmed\n")
        assert "on disk now:" in client.get("/preview").text
        page = client.get(f"/edit/file/{SUBJECT}").text
        assert "The running daemon uses version 1, saved by (on disk)" in page
        assert "not yet what is on disk" in page
        assert run(settings)[0] == 0  # its reload picks the saved file up
        page = client.get(f"/edit/file/{SUBJECT}").text
        assert "The running daemon uses version 2, saved by maria" in page
        assert re.search(r'<tr data-version="2" class="uses">', page)
        assert "what is on disk" in client.get("/preview").text
        detail = client.get("/preview/order_confirmation/en").text
        assert f'<a href="/edit/file/{SUBJECT}">the subject</a>' in detail  # the gallery links to the editor


def test_a_running_daemon_publishes_the_templates_of_each_good_reload_and_keeps_them_on_a_bad_one(
    settings: Settings, engine: sa.Engine
) -> None:
    from notifier.run.daemon import Pipeline

    def loaded() -> kept.LoadedTemplates:
        with engine.connect() as conn:
            found = kept.loaded_templates(conn)
        assert found is not None
        return found

    async def daemon() -> list[kept.LoadedTemplates]:
        seen = []
        async with Pipeline(settings, engine=engine) as pipeline:
            seen.append(loaded())  # at start
            (settings.templates / SUBJECT).write_text("Order {{ order.number }}, confirmed\n", "utf-8")
            await pipeline.cycle()
            seen.append(loaded())  # a good edit, reloaded
            (settings.templates / SUBJECT).write_text("Order {{ order.nickname }}\n", "utf-8")
            await pipeline.cycle()
            seen.append(loaded())  # a refused edit: the last good templates stay in force
        return seen

    start, good, bad = asyncio.run(daemon())
    assert start.digest != good.digest and good.digest == bad.digest
    assert good.files[SUBJECT] == kept.content_hash("Order {{ order.number }}, confirmed\n")
