"""The suppression list by hand: `notifier suppressions list | add | remove | import`, with
reasons and dates; a removal (the customer's new consent) lets marketing mail reach them again."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner, Result

from notifier.cli import app
from notifier.config.settings import Settings
from notifier.db.store import SUPPRESSIONS
from tests.journey import notifications, run
from tests.shop import Shop


def cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(app, ["--database-url", settings.database_url.reveal(), *args])


def _listed(settings: Settings) -> list[dict[str, str]]:
    result = cli(settings, "suppressions", "list", "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def test_add_list_remove_with_reasons_and_dates(settings: Settings) -> None:
    with freeze_time("2026-02-10 09:00"):
        added = cli(settings, "suppressions", "add", "Lin@Example.com", "--reason", "asked by phone")
    assert added.exit_code == 0 and "lin@example.com suppressed (asked by phone)" in added.output
    again = cli(settings, "suppressions", "add", "lin@example.com")
    assert "was suppressed already" in again.output
    assert _listed(settings) == [
        {"address": "lin@example.com", "reason": "asked by phone", "since": "2026-02-10T09:00:00+00:00"}
    ]
    shown = cli(settings, "suppressions", "list").output
    assert "2026-02-10 09:00 UTC  lin@example.com" in shown and "asked by phone" in shown
    removed = cli(settings, "suppressions", "remove", "LIN@example.com")
    assert "lin@example.com removed (was: asked by phone, since 2026-02-10 09:00 UTC)" in removed.output
    assert _listed(settings) == []
    assert "not on the suppression list" in cli(settings, "suppressions", "remove", "lin@example.com").output


def test_add_refuses_an_unusable_address_in_plain_words(settings: Settings) -> None:
    result = cli(settings, "suppressions", "add", "not an address")
    assert result.exit_code == 1 and "not an address notifier can use" in result.output
    assert "Traceback" not in result.output


def test_import_one_a_line_or_csv_and_nothing_when_a_line_is_bad(settings: Settings, tmp_path: Path) -> None:
    good = tmp_path / "list.csv"
    lines = "address,reason\na@example.com,old list\n# a comment\n\nB@example.com\n"
    good.write_text(lines, encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_text("c@example.com\nnot-an-address\n", encoding="utf-8")
    refused = cli(settings, "suppressions", "import", str(bad))
    assert refused.exit_code == 1 and f"{bad}:2:" in refused.output and "nothing imported" in refused.output
    assert _listed(settings) == []
    result = cli(settings, "suppressions", "import", str(good), "--reason", "from the old shop")
    assert result.exit_code == 0 and "2 address(es) suppressed, 0 already were" in result.output
    reasons = {item["address"]: item["reason"] for item in _listed(settings)}
    assert reasons == {"a@example.com": "old list", "b@example.com": "from the old shop"}
    help_text = cli(settings, "suppressions", "import", "--help").output
    assert "one address per line" in help_text and "address,reason" in help_text


def test_removing_an_unsubscribe_lets_marketing_mail_reach_the_customer_again(
    settings: Settings, shop: Shop, engine: sa.Engine
) -> None:
    # A marketing calendar rule would need a whole schedule; the gate is the same for every
    # marketing message, so the shipped price-rise warning stands for them all.
    customer = shop.customer(email="mei@example.com", timezone="UTC", marketing_opt_in=True)
    product = shop.product(price="30.00")
    order = shop.order(customer, items=[(product, 1)], placed_at="2026-01-05 09:00")
    del order
    assert cli(settings, "suppressions", "add", "mei@example.com", "--reason", "unsubscribed").exit_code == 0
    shop.event("product", product, "price_change", "2026-02-10 09:00",
               data={"old_price": 30, "new_price": 35, "currency": "USD",
                     "effective_at": "2026-02-11 09:00:00"})  # fmt: skip
    with freeze_time("2026-02-10 10:00", real_asyncio=True):
        run(settings)
    [first] = notifications(engine, rule="price-rise-warning")
    assert (first["state"], first["reason"]) == ("skipped", "suppressed")
    # The customer opts in again (tells customer service): the unsubscribe is taken off the list.
    assert cli(settings, "suppressions", "remove", "mei@example.com").exit_code == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(SUPPRESSIONS)).scalar_one() == 0
    shop.event("product", product, "price_change", "2026-02-10 11:00",
               data={"old_price": 35, "new_price": 40, "currency": "USD",
                     "effective_at": "2026-02-11 09:00:00"})  # fmt: skip
    with freeze_time("2026-02-10 12:00", real_asyncio=True):
        run(settings)
    states = sorted(row["state"] for row in notifications(engine, rule="price-rise-warning"))
    assert states == ["sent", "skipped"]
