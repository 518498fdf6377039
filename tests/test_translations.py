"""Names in the customer's language: product_translations (optional) gives a product's name per
locale, else products.name; Chinese text never glues Han to Latin letters; the gallery shows
what the daemon sends, and a real order's preview only what the order has.
End to end through `run --once` and a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from starlette.applications import Starlette
from typer.testing import CliRunner

from notifier.cli import app
from notifier.compose.rendering import Renderer
from notifier.compose.samples import SAMPLE_TRIGGER_OF_TEMPLATE, sample_context
from notifier.config.settings import Settings
from notifier.db.engine import make_engine
from notifier.db.integration_check import check_columns
from notifier.db.schema import ProductTranslation
from notifier.db.translations import product_names
from notifier.tools.web import create_app
from tests.journey import body, parse, run
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ProductTranslation.__table__  # type: ignore[attr-defined]
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
GLUED = re.compile(f"[{HAN}][A-Za-z]|[A-Za-z][{HAN}]")


def _translate(shop: Shop, product: int, **names: str) -> None:
    with shop.engine.begin() as conn:
        conn.execute(
            sa.insert(TRANSLATIONS),
            [
                {"product_id": product, "locale": code.replace("_", "-"), "name": n}
                for code, n in names.items()
            ],
        )


def _mail_to(server: FaultySmtpServer) -> dict[str, Any]:
    return {str(parse(m)["To"]).rsplit("<", 1)[-1].rstrip(">"): parse(m) for m in server.messages}


def _buyers(shop: Shop) -> tuple[int, int, dict[str, int]]:
    roses = shop.product(name="Twelve red roses", price="45.00", currency="GBP")
    vase = shop.product(name="Glass vase", price="15.00", currency="GBP", tags="vase")
    _translate(shop, roses, zh_CN="十二枝红玫瑰", zh_TW="十二枝紅玫瑰")
    _translate(shop, vase, zh_CN="玻璃花瓶")  # none for zh-TW: products.name, never the zh-CN one
    people = {}
    for locale, currency in (("en", "GBP"), ("zh-CN", "CNY"), ("zh-TW", "TWD")):
        people[locale] = shop.customer(
            email=f"{locale.lower()}@example.com",
            locale=locale,
            timezone="Asia/Taipei",
            marketing_opt_in=True,
        )
        order = shop.order(people[locale], items=[(roses, 1), (vase, 1)], currency=currency)
        shop.event("order", order, "placed", "2026-02-10 09:00")
    return roses, vase, people


def test_order_mail_names_each_product_in_the_customers_language(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    _buyers(shop)
    with freeze_time("2026-02-10 09:01", real_asyncio=True):
        code, result = run(settings)
    assert code == 0 and result.sent == 3
    mail = _mail_to(smtp_server)
    zh_cn, zh_tw, en = (body(mail[a]) for a in ("zh-cn@example.com", "zh-tw@example.com", "en@example.com"))
    assert "十二枝红玫瑰" in zh_cn and "玻璃花瓶" in zh_cn and "Twelve red roses" not in zh_cn
    assert "十二枝紅玫瑰" in zh_tw and "Glass vase" in zh_tw, "no zh-TW name: products.name"
    assert "玻璃花瓶" not in zh_tw, "a zh-TW customer never gets the zh-CN name"
    assert "Twelve red roses" in en and "Glass vase" in en and "十二枝" not in en
    for text in (zh_cn, zh_tw, body(mail["zh-tw@example.com"], "html")):
        assert not GLUED.search(text), GLUED.findall(text)


def test_the_price_warning_subject_names_the_product_in_chinese(
    settings: Settings, shop: Shop, smtp_server: FaultySmtpServer
) -> None:
    roses = shop.product(name="Twelve red roses", price="398.00", currency="CNY")
    _translate(shop, roses, zh_CN="十二枝红玫瑰")
    wang = shop.customer(
        email="wang@example.cn", locale="zh-CN", timezone="Asia/Shanghai", marketing_opt_in=True
    )
    shop.order(wang, items=[(roses, 1)], currency="CNY")
    rise = {
        "old_price": "398.00",
        "new_price": "458.00",
        "currency": "CNY",
        "effective_at": "2026-03-01 00:00:00",
    }
    shop.event("product", roses, "price_change", "2026-02-10 09:00", rise)
    with freeze_time("2026-02-10 10:00", real_asyncio=True):
        code, result = run(settings)
    assert code == 0 and result.sent == 1
    [message] = smtp_server.messages
    mail = parse(message)
    assert str(mail["Subject"]).startswith("十二枝红玫瑰将于"), mail["Subject"]
    assert "您曾在我们这里订购过十二枝红玫瑰" in body(mail)


def test_a_shop_without_the_table_gets_products_name_and_no_error(
    settings: Settings, shop: Shop, engine: sa.Engine, smtp_server: FaultySmtpServer
) -> None:
    TRANSLATIONS.drop(engine)
    customer = shop.customer(email="lin@example.tw", locale="zh-TW")
    roses = shop.product(name="Twelve red roses")
    order = shop.order(customer, items=[(roses, 1)], currency="TWD")
    shop.event("order", order, "placed", "2026-02-10 09:00")
    with freeze_time("2026-02-10 09:01", real_asyncio=True):
        code, result = run(settings)
    assert code == 0 and result.sent == 1 and result.failed == 0
    text = body(parse(smtp_server.messages[0]))
    assert "Twelve red roses" in text and not GLUED.search(text)

    with engine.connect() as conn:
        assert [f for f in check_columns(conn) if f.table == "product_translations"] == [], "optional"
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE product_translations (product_id INTEGER, locale TEXT)"))
    with engine.connect() as conn:
        [found] = [f for f in check_columns(conn) if f.table == "product_translations"]
    assert "no column name" in found.words, "when it is there, its columns are checked"
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE product_translations"))

    asked: list[str] = []
    reader = make_engine(settings.database_url.reveal())
    sa.event.listen(reader, "before_cursor_execute", lambda *a: asked.append(a[2]))
    with reader.connect() as conn:
        assert product_names(conn, [roses]) == {}
        first = len(asked)
        assert product_names(conn, [roses]) == {} and product_names(conn, [roses, 99]) == {}
    reader.dispose()
    assert first >= 1 and len(asked) == first, "whether the table exists is asked once per engine"


def _latin(value: Any) -> Any:
    """The sample context with every text that holds Han replaced by Latin words."""
    if isinstance(value, dict):
        return {k: ({} if k == "names" else _latin(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_latin(v) for v in value]
    if isinstance(value, str) and re.search(f"[{HAN}]", value):
        return "Blossom Value"
    return value


@pytest.mark.parametrize("locale", ["zh-CN", "zh-TW"])
def test_no_shipped_chinese_template_glues_han_to_latin_values(locale: str) -> None:
    renderer = Renderer(ROOT / "templates")
    checked = 0
    for template in renderer.template_names():
        if locale not in renderer.locales_of(template):
            continue
        context = _latin(sample_context(SAMPLE_TRIGGER_OF_TEMPLATE.get(template, "order.placed"), locale))
        context["customer"]["name"] = "Emma Lin"
        rendered = renderer.render(template, locale, context)
        visible = re.sub(r"<[^>]*>", " ", rendered.html)
        for part in (rendered.subject, rendered.text, visible):
            assert not GLUED.search(part), (template, GLUED.findall(part))
        checked += 1
    assert checked >= 15


# --- the gallery -----------------------------------------------------------------------------------


def test_the_gallery_shows_what_the_daemon_sends_and_only_what_a_real_order_has(
    settings: Settings, engine: sa.Engine, shop: Shop, serve: Callable[[Starlette], str]
) -> None:
    import httpx

    roses = shop.product(name="Twelve red roses")
    _translate(shop, roses, zh_CN="十二枝红玫瑰")
    customer = shop.customer(name="Alex Morgan", email="alex@example.com", locale="zh-CN")
    undelivered = shop.order(customer, items=[(roses, 1)])
    shop.event("order", undelivered, "placed")
    base = serve(create_app(settings, engine=engine))
    with httpx.Client(base_url=base, timeout=30) as http:
        sample = http.get("/preview/order_confirmation/zh-CN").text
        assert "十二枝红玫瑰" in sample, "the sample's product names are the ones the daemon would pick"
        real = http.get(f"/preview/order_confirmation/zh-CN?order={undelivered}").text
        assert "十二枝红玫瑰" in real and "Twelve red roses" not in real
        delivered = http.get(f"/preview/order_delivered/en?order={undelivered}").text
    assert "A. Morgan" not in delivered, "a signer the order does not have is never invented"
    assert "No warnings" not in delivered
    assert "has no order.delivered event yet" in delivered and "signed_by" in delivered

    base = ["--database-url", settings.database_url.reveal(), "--rules", str(settings.rules)]
    base += ["--templates", str(settings.templates)]
    shown = CliRunner().invoke(app, [*base, "preview", "order_delivered", "--order", str(undelivered)])
    assert shown.exit_code == 0, shown.output
    assert "A. Morgan" not in shown.stdout and "has no order.delivered event yet" in shown.stderr
