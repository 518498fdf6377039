"""`notifier web`: one-click unsubscribe and "not solved", through real HTTP to a real server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from notifier.compose import links
from notifier.config.settings import Secret, Settings
from notifier.core.timing import utcnow
from notifier.db import store
from notifier.tools.web import create_app
from tests.shop import Shop

ROOT = Path(__file__).resolve().parent.parent
KEY = "web-test-key"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _suppressions(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.SUPPRESSIONS.c.address, store.SUPPRESSIONS.c.reason))
        return sorted((row.address, row.reason) for row in rows)


def _feedback(engine: sa.Engine) -> list[tuple[int, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.FEEDBACK).order_by(store.FEEDBACK.c.id)).mappings()
        return [(row["case_id"], row["type"], row["data"]) for row in rows]


def _unsubscribe_path(address: str, secret: str = KEY) -> str:
    return links.unsubscribe_url("", secret, address)


def _not_solved_path(case_id: int, secret: str = KEY) -> str:
    return links.not_solved_url("", secret, case_id)


def _settings(db_url: str, **changes: object) -> Settings:
    base = replace(Settings(), database_url=Secret(db_url), secret_key=Secret(KEY), rules=ROOT / "rules.yaml")
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def client(db_url: str, engine: sa.Engine, serve: Callable[[Starlette], str]) -> Iterator[httpx.Client]:
    base = serve(create_app(_settings(db_url), engine=engine))
    with httpx.Client(base_url=base, timeout=10) as http:
        yield http


def test_healthz(client: httpx.Client) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200 and reply.text == "ok"


# --- unsubscribe ---------------------------------------------------------------------------------


def test_one_click_post_records_one_suppression_and_replay_is_harmless(
    engine: sa.Engine, shop: Shop, client: httpx.Client
) -> None:
    shop.customer(email="Ms.Lin@Example.com")
    path = _unsubscribe_path("Ms.Lin@Example.com")
    reply = client.post(path, data=ONE_CLICK)
    assert reply.status_code == 200
    assert "no more marketing emails" in reply.text and "orders, deliveries" in reply.text
    assert _suppressions(engine) == [("ms.lin@example.com", "unsubscribed")]
    again = client.post(path, data=ONE_CLICK)
    assert again.status_code == 200 and "no more marketing emails" in again.text
    assert _suppressions(engine) == [("ms.lin@example.com", "unsubscribed")]


def test_one_click_as_multipart_form_data_works_too(engine: sa.Engine, client: httpx.Client) -> None:
    # RFC 8058's own example posts multipart/form-data.
    path = _unsubscribe_path("wang@example.com")
    reply = client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert reply.status_code == 200
    assert reply.request.headers["content-type"].startswith("multipart/form-data")
    assert _suppressions(engine) == [("wang@example.com", "unsubscribed")]


def test_get_shows_the_page_in_traditional_chinese_and_changes_nothing(
    engine: sa.Engine, shop: Shop, client: httpx.Client
) -> None:
    shop.customer(email="chen@example.com", locale="zh-TW")
    path = _unsubscribe_path("chen@example.com")
    page = client.get(path, headers={"Accept-Language": "en"})  # the customer's locale wins
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'lang="zh-TW"' in page.text
    assert "取消訂閱" in page.text and "郵件" in page.text
    assert "邮件" not in page.text and "Unsubscribe" not in page.text  # not Simplified, not English
    assert "chen@example.com" in page.text
    assert f'<form method="post" action="{path}">' in page.text
    assert _suppressions(engine) == []
    # The button posts an empty form to the same address.
    done = client.post(path, data={})
    assert done.status_code == 200 and "您已取消訂閱" in done.text
    assert _suppressions(engine) == [("chen@example.com", "unsubscribed")]


def test_page_language_falls_back_to_the_browser_then_english(
    engine: sa.Engine, client: httpx.Client
) -> None:
    path = _unsubscribe_path("stranger@example.com")  # no customer row with this address
    simplified = client.get(path, headers={"Accept-Language": "fr-FR, zh-CN;q=0.8, en;q=0.5"})
    assert 'lang="zh-CN"' in simplified.text and "退订" in simplified.text and "邮件" in simplified.text
    english = client.get(path, headers={"Accept-Language": "fr-FR"})
    assert 'lang="en"' in english.text and "Stop marketing emails?" in english.text
    assert _suppressions(engine) == []


def _altered_signature(address: str) -> str:
    token = links.sign(KEY, "unsubscribe", address)
    payload, mac = token.split(".")
    flipped = "A" if mac[0] != "A" else "B"
    return f"{payload}.{flipped}{mac[1:]}"


def _signed_bytes(payload: bytes) -> str:
    """A correctly signed token whose value is not text (links.sign only signs text)."""
    mac = hmac.new(KEY.encode(), b"unsubscribe\x00" + payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


REFUSED_TOKENS: dict[str, Callable[[], str]] = {
    "altered signature": lambda: _altered_signature("lin@example.com"),
    "signed with another key": lambda: links.sign("another-key", "unsubscribe", "lin@example.com"),
    "a not-solved token": lambda: links.sign(KEY, "not-solved", "lin@example.com"),
    "garbage": lambda: "this-is-not-a-token",
    "two dots": lambda: "a.b.c",
    "bad base64": lambda: "%%%.%%%",
    "signed bytes that are not UTF-8": lambda: _signed_bytes(b"\xff\xfe@example.com"),
}


@pytest.mark.parametrize("make_token", REFUSED_TOKENS.values(), ids=REFUSED_TOKENS.keys())
def test_tokens_we_did_not_make_are_refused(
    engine: sa.Engine, shop: Shop, client: httpx.Client, make_token: Callable[[], str]
) -> None:
    shop.customer(email="lin@example.com")
    path = f"/unsubscribe/{make_token()}"
    for reply in (client.get(path), client.post(path, data=ONE_CLICK)):
        assert reply.status_code == 400
        assert "This link is not valid" in reply.text
        assert "Traceback" not in reply.text
    assert _suppressions(engine) == []


def test_invalid_link_page_follows_the_browser_language(client: httpx.Client) -> None:
    reply = client.get("/unsubscribe/nonsense", headers={"Accept-Language": "zh-TW"})
    assert reply.status_code == 400 and "此連結無效" in reply.text


def test_a_token_cannot_be_rewritten_to_unsubscribe_someone_else(
    engine: sa.Engine, client: httpx.Client
) -> None:
    token = links.sign(KEY, "unsubscribe", "a.b@example.com")
    _payload, mac = token.split(".")
    assert base64.urlsafe_b64decode(_payload + "==") == b"a.b@example.com"  # the address is readable...
    forged = f"{_b64(b'victim@example.com')}.{mac}"  # ...but the signature covers it
    reply = client.post(f"/unsubscribe/{forged}", data=ONE_CLICK)
    assert reply.status_code == 400
    assert _suppressions(engine) == []
    assert client.post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 200
    assert _suppressions(engine) == [("a.b@example.com", "unsubscribed")]


# --- not solved -------------------------------------------------------------------------------


def test_not_solved_get_asks_and_post_records_once(
    engine: sa.Engine, shop: Shop, client: httpx.Client
) -> None:
    case = shop.case(shop.customer(email="lin@example.com"))
    path = _not_solved_path(case)
    page = client.get(path)
    assert page.status_code == 200
    assert f"case {case} is not solved" in page.text
    assert '<textarea id="comment" name="comment"' in page.text and "My problem is not solved" in page.text
    assert _feedback(engine) == []
    reply = client.post(path, data={"comment": "  The roses are still wilted.  "})
    assert reply.status_code == 200
    assert "Thank you for telling us" in reply.text
    assert "The Blossom &amp; Co team will look at it again and get back to you" in reply.text
    assert "call" not in reply.text.lower()
    assert "The roses are still wilted." in reply.text
    assert _feedback(engine) == [(case, "not_solved", json.dumps({"comment": "The roses are still wilted."}))]
    # A double click (or a second thought within minutes) does not record it twice.
    again = client.post(path, data={"comment": "The roses are still wilted."})
    assert again.status_code == 200 and "Thank you for telling us" in again.text
    assert len(_feedback(engine)) == 1


def test_not_solved_without_a_comment_records_no_data(
    engine: sa.Engine, shop: Shop, client: httpx.Client
) -> None:
    case = shop.case(shop.customer())
    assert client.post(_not_solved_path(case), data={"comment": "   "}).status_code == 200
    assert client.post(_not_solved_path(case + 1)).status_code == 200  # another case is not a repeat
    assert _feedback(engine) == [(case, "not_solved", None), (case + 1, "not_solved", None)]


def test_not_solved_counts_again_after_the_repeat_window(
    engine: sa.Engine, shop: Shop, client: httpx.Client
) -> None:
    case = shop.case(shop.customer())
    with engine.begin() as conn:
        store.record_feedback(conn, case, "not_solved", utcnow() - timedelta(minutes=11))
    assert client.post(_not_solved_path(case)).status_code == 200
    assert [row[0] for row in _feedback(engine)] == [case, case]


def test_simultaneous_clicks_record_one_row(engine: sa.Engine, shop: Shop, client: httpx.Client) -> None:
    case = shop.case(shop.customer())
    path = _not_solved_path(case)
    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(lambda _: client.post(path, data={"comment": "still broken"}), range(6)))
    assert [reply.status_code for reply in replies] == [200] * 6
    assert len(_feedback(engine)) == 1


def test_not_solved_page_in_traditional_chinese(engine: sa.Engine, shop: Shop, client: httpx.Client) -> None:
    case = shop.case(shop.customer(locale="zh-TW"))
    page = client.get(_not_solved_path(case))
    assert f"案件 {case}" in page.text and "問題還沒解決" in page.text and "问题" not in page.text
    done = client.post(_not_solved_path(case), data={"comment": "花還是枯的"})
    assert "謝謝您告訴我們" in done.text and "Blossom &amp; Co 團隊" in done.text
    assert json.loads(_feedback(engine)[0][2] or "{}") == {"comment": "花還是枯的"}


def test_not_solved_refuses_unsubscribe_tokens_and_other_values(
    engine: sa.Engine, shop: Shop, client: httpx.Client
) -> None:
    case = shop.case(shop.customer())
    for token in (
        links.sign(KEY, "unsubscribe", str(case)),  # right value, wrong purpose
        links.sign(KEY, "not-solved", "lin@example.com"),  # signed, but not a case number
        links.sign("another-key", "not-solved", str(case)),
    ):
        reply = client.post(f"/not-solved/{token}", data={"comment": "x"})
        assert reply.status_code == 400 and "This link is not valid" in reply.text
    assert _feedback(engine) == []


def test_an_oversized_form_is_refused(engine: sa.Engine, shop: Shop, client: httpx.Client) -> None:
    case = shop.case(shop.customer())
    reply = client.post(_not_solved_path(case), data={"comment": "x" * 100_000})
    assert reply.status_code == 413
    assert _feedback(engine) == []


# --- escaping, configuration ------------------------------------------------------------------------


def test_addresses_and_comments_are_escaped(engine: sa.Engine, shop: Shop, client: httpx.Client) -> None:
    address = '"<script>alert(1)</script>"@example.com'
    page = client.get(_unsubscribe_path(address))
    assert page.status_code == 200
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    done = client.post(_unsubscribe_path(address), data=ONE_CLICK)
    assert "<script>" not in done.text and "&lt;script&gt;" in done.text
    case = shop.case(shop.customer())
    comment = "<script>alert(2)</script> & <b>bold</b>"
    reply = client.post(_not_solved_path(case), data={"comment": comment})
    assert "<script>" not in reply.text and "<b>" not in reply.text
    assert "&lt;script&gt;alert(2)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in reply.text
    assert json.loads(_feedback(engine)[0][2] or "{}") == {"comment": comment}  # stored as written
    assert reply.headers["content-security-policy"].startswith("default-src 'none'")
    assert reply.headers["cache-control"] == "no-store"


def test_without_a_secret_key_links_answer_503(
    db_url: str, engine: sa.Engine, shop: Shop, serve: Callable[[Starlette], str]
) -> None:
    case = shop.case(shop.customer(email="lin@example.com"))
    base = serve(create_app(_settings(db_url, secret_key=None), engine=engine))
    with httpx.Client(base_url=base, timeout=10) as http:
        for path in (_unsubscribe_path("lin@example.com"), _not_solved_path(case)):
            for reply in (http.get(path), http.post(path, data=ONE_CLICK)):
                assert reply.status_code == 503
                assert "NOTIFIER_SECRET_KEY is not set" in reply.text
        assert http.get("/healthz").text == "ok"
    assert _suppressions(engine) == [] and _feedback(engine) == []


def test_pages_name_no_team_when_the_rules_cannot_be_read(
    db_url: str, engine: sa.Engine, shop: Shop, serve: Callable[[Starlette], str], tmp_path: Path
) -> None:
    case = shop.case(shop.customer())
    settings = _settings(db_url, rules=tmp_path / "missing.yaml")
    with httpx.Client(base_url=serve(create_app(settings, engine=engine)), timeout=10) as http:
        reply = http.post(_not_solved_path(case))
    assert reply.status_code == 200 and "Our customer care team will look at it again" in reply.text


def test_the_app_makes_and_releases_its_own_engine(
    db_url: str, engine: sa.Engine, serve: Callable[[Starlette], str]
) -> None:
    base = serve(create_app(_settings(db_url)))  # no engine given: it connects to database_url
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.post(_unsubscribe_path("own@example.com"), data=ONE_CLICK).status_code == 200
    assert _suppressions(engine) == [("own@example.com", "unsubscribed")]


def test_an_unreachable_database_answers_503_not_a_traceback(
    serve: Callable[[Starlette], str], tmp_path: Path
) -> None:
    settings = _settings(f"sqlite:///{tmp_path / 'no-such-folder' / 'shop.db'}")
    with httpx.Client(base_url=serve(create_app(settings)), timeout=10) as http:
        reply = http.post(_unsubscribe_path("lin@example.com"), data=ONE_CLICK)
    assert reply.status_code == 503 and reply.headers["retry-after"] == "60"
    assert "Nothing was changed" in reply.text and "Traceback" not in reply.text
