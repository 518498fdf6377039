"""notifier beside a real shop: django-oscar 4.2 with the example in examples/oscar/.

Oscar's migrations make its tables; the example's views give notifier its reference tables;
`init-db` adds what is missing and keeps the views; `capture install` puts triggers on Oscar's
tables. Orders are placed and moved on through Oscar's own API, prices changed through its
ORM, and the emails are read back from a real SMTP server, on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import random
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from typer.testing import CliRunner, Result

from notifier.cli import app
from notifier.config.settings import Secret, Settings
from notifier.db.engine import make_engine
from tests.conftest import _recreate_mariadb
from tests.journey import body, parse, run
from tests.oscar_shop import EXAMPLE, OscarShop, close, django_ready, install_views, migrate, use_database
from tests.smtp_server import FaultySmtpServer

pytest.importorskip("oscar")
pytestmark = pytest.mark.slow

SHOP_TIMEZONE = ZoneInfo("Europe/London")  # the views' constant timezone


# -- databases: Oscar migrated once per run, copied for each test ---------------------------


@pytest.fixture(scope="session")
def oscar_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    django_ready()
    path = tmp_path_factory.mktemp("oscar") / "migrated.db"
    use_database(f"sqlite:///{path}")
    migrate()
    close()
    return path


@pytest.fixture(scope="session")
def oscar_postgres(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database with Oscar migrated, the template each test's database is made from."""
    django_ready()
    url = f"{postgres_url}_oscar"
    _admin_sql(postgres_url, f'CREATE DATABASE "{_name(url)}"')
    use_database(url)
    migrate()
    close()
    yield url
    _admin_sql(postgres_url, f'DROP DATABASE IF EXISTS "{_name(url)}" WITH (FORCE)')


def _name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _admin_sql(url: str, statement: str) -> None:
    admin = make_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(statement))
    admin.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def oscar_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with Oscar's tables, Django pointed at it; notifier not yet beside it."""
    name = f"oscar_{secrets.token_hex(4)}"
    if request.param == "sqlite":
        path = tmp_path / "shop.db"
        shutil.copy(request.getfixturevalue("oscar_sqlite"), path)
        url = f"sqlite:///{path}"
        use_database(url)
    elif request.param == "postgres":
        template = request.getfixturevalue("oscar_postgres")
        url = template.rsplit("/", 1)[0] + f"/{name}"
        _admin_sql(template, f'CREATE DATABASE "{name}" TEMPLATE "{_name(template)}"')
        use_database(url)
    else:  # no template databases in MariaDB: Oscar migrated afresh
        django_ready()
        url = f"{request.getfixturevalue('mariadb_url')}_{name}"
        _recreate_mariadb(_name(url))
        use_database(url)
        migrate()
    yield url
    close()
    if request.param == "postgres":
        _admin_sql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    elif request.param == "mariadb":
        _recreate_mariadb(_name(url), create=False)


# -- notifier beside it ------------------------------------------------------------------------


def _settings(url: str, project: Path, smtp_server: FaultySmtpServer) -> Settings:
    return replace(
        Settings(),
        database_url=Secret(url),
        smtp_url=Secret(smtp_server.url),
        rules=project / "rules.yaml",
        templates=project / "templates",
        secret_key=Secret("test-secret"),
        smtp_timeout=timedelta(seconds=2),
    )


def notifier(settings: Settings, *args: str) -> Result:
    """The command line, as a shop developer runs it (the settings as environment variables)."""
    env = {
        "NOTIFIER_DATABASE_URL": settings.database_url.reveal(),
        "NOTIFIER_RULES": str(settings.rules),
        "NOTIFIER_TEMPLATES": str(settings.templates),
        "NOTIFIER_CAPTURE": str(EXAMPLE / "capture.yaml"),
        "NOTIFIER_SECRET_KEY": "k" * 32,
    }
    return CliRunner().invoke(app, list(args), env=env)


def _beside(settings: Settings) -> sa.Engine:
    """README's steps: views, init-db (which keeps them), capture install, check."""
    engine = make_engine(settings.database_url.reveal())
    install_views(engine)
    made = notifier(settings, "init-db")
    assert made.exit_code == 0, made.output
    for view in ("customers", "products", "orders", "order_items"):
        assert view not in made.output.split("notifier tables")[0], made.output
    assert set(sa.inspect(engine).get_view_names()) >= {"customers", "products", "orders", "order_items"}
    installed = notifier(settings, "capture", "install")
    assert installed.exit_code == 0, installed.output
    checked = notifier(settings, "capture", "check")
    assert checked.exit_code == 0, checked.output
    return engine


def _daytime() -> datetime:
    """The next moment at or after now that is the shop's daytime (marketing mail waits for it)."""
    now = datetime.now(UTC) + timedelta(minutes=1)
    local = now.astimezone(SHOP_TIMEZONE)
    if 9 <= local.hour < 20:
        return now
    day = local.date() + timedelta(days=1 if local.hour >= 20 else 0)
    return datetime(day.year, day.month, day.day, 10, tzinfo=SHOP_TIMEZONE).astimezone(UTC)


def _run(settings: Settings, at: datetime) -> None:
    with freeze_time(at, real_asyncio=True):
        code, _ = run(settings)
    assert code == 0


def _mail(server: FaultySmtpServer) -> list[tuple[str, str, EmailMessage]]:
    """(recipient, subject, message) of everything the server accepted, oldest first."""
    found = []
    for received in server.messages:
        message = parse(received)
        found.extend((rcpt, str(message["Subject"]), message) for rcpt in received.rcpt_tos)
    return found


def _event_count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


# -- the tests ---------------------------------------------------------------------------------


def test_oscar_orders_and_prices_reach_the_customers_through_capture(
    oscar_url: str, project: Path, smtp_server: FaultySmtpServer
) -> None:
    from django.db import transaction

    settings = _settings(oscar_url, project, smtp_server)
    engine = _beside(settings)
    shop = OscarShop()
    emma = shop.customer("emma@example.com", "Emma", "Lin", newsletter=True)
    noah = shop.customer("noah@example.com", "Noah", "Price")  # no newsletter: no marketing
    roses = shop.product("Twelve red roses", "45.00")
    vase = shop.product("Glass vase", "19.50")

    first = shop.place([(roses, 2), (vase, 1)], user=emma)
    second = shop.place([(roses, 1)], user=noah, ship_to=("Noah", "Price"))
    guest = shop.place([(vase, 1)], guest_email="Guest.Wu@example.com", ship_to=("Wu", "Mei"))
    numbers: list[str] = []
    with pytest.raises(RuntimeError, match="payment declined"), transaction.atomic():
        numbers.append(str(shop.place([(roses, 3)], user=noah).number))
        raise RuntimeError("payment declined")  # the whole order rolled back, its event with it
    shop.move(first, "Being processed", "Shipped")
    shop.move(second, "Cancelled")
    shop.reprice(roses, "52.00")  # a rise: Emma, opted in, bought roses
    repriced = datetime.now(SHOP_TIMEZONE)  # Oscar's price holds at once: the warning comes after
    shop.reprice(vase, "18.00")  # a fall: no warning
    assert _event_count(engine, "order_events") == 5  # 3 placed, 1 dispatched, 1 cancelled
    assert _event_count(engine, "product_events") == 2

    checked = notifier(settings, "check")
    assert checked.exit_code == 0, checked.output
    assert "case_events: no events yet: 9 case rule(s)" in checked.output  # Oscar has no cases

    at = _daytime()
    _run(settings, at)
    sent = {(rcpt, subject) for rcpt, subject, _ in _mail(smtp_server)}
    assert sent == {
        ("emma@example.com", f"Order {first.number} confirmed"),
        ("noah@example.com", f"Order {second.number} confirmed"),
        ("Guest.Wu@example.com", f"Order {guest.number} confirmed"),
        ("emma@example.com", f"Order {first.number} is on its way"),
        ("noah@example.com", f"Order {second.number} has been cancelled"),
        ("emma@example.com", f"Twelve red roses: the price changes on {repriced:%-d %B}"),
    }
    assert not any(numbers[0] in subject for _, subject, _ in _mail(smtp_server))
    by_subject = {subject: message for _, subject, message in _mail(smtp_server)}
    confirmation = body(by_subject[f"Order {first.number} confirmed"])
    for needle in ("Hello Emma Lin", "Twelve red roses \N{MULTIPLICATION SIGN} 2: £90.00", "Total: £109.50"):
        assert needle in confirmation, needle
    address = "12 Rosebery Avenue\n London\n EC1R 4SP\n United Kingdom".replace("\n ", "\n" + " " * 12)
    assert address in confirmation  # Oscar's address lines, one a line
    assert "Hello Wu Mei" in body(by_subject[f"Order {guest.number} confirmed"])
    assert "Royal Mail" in body(by_subject[f"Order {first.number} is on its way"])
    warning = body(by_subject[next(s for s in by_subject if s.startswith("Twelve red roses"))])
    assert "Price today: £45.00" in warning and ": £52.00" in warning

    shop.move(first, "Delivered")
    _run(settings, at + timedelta(minutes=5))
    [(rcpt, subject, delivered)] = _mail(smtp_server)[6:]
    assert (rcpt, subject) == ("emma@example.com", f"Order {first.number} delivered")
    assert f"Order {first.number} was delivered on" in body(delivered)

    removed = notifier(settings, "capture", "remove")
    assert removed.exit_code == 0, removed.output
    shop.place([(vase, 1)], user=emma)
    assert _event_count(engine, "order_events") == 6  # 5 before, and Delivered: none since removal
    engine.dispose()


@pytest.mark.parametrize(
    "oscar_url",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
    indirect=True,
)
def test_orders_committing_out_of_id_order_both_get_their_confirmation(
    oscar_url: str, project: Path, smtp_server: FaultySmtpServer
) -> None:
    """Two checkouts at once: the one with the lower ids commits after notifier read the other."""
    from django.db import connections, transaction

    settings = _settings(oscar_url, project, smtp_server)
    engine = _beside(settings)
    shop = OscarShop()
    emma = shop.customer("emma@example.com", "Emma", "Lin")
    noah = shop.customer("noah@example.com", "Noah", "Price")
    # Different products: Oscar locks a stock record while it allocates from it.
    roses, tulips = shop.product("Twelve red roses", "45.00"), shop.product("Tulips", "25.00")
    placed, commit = threading.Event(), threading.Event()
    slow: dict[str, Any] = {}

    def slow_checkout() -> None:
        try:
            with transaction.atomic():
                slow["order"] = shop.place([(tulips, 1)], user=noah, ship_to=("Noah", "Price"))
                placed.set()
                assert commit.wait(60), "the test never let the slow checkout commit"
        except BaseException as exc:
            slow["error"] = exc
            placed.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_checkout)
    thread.start()
    try:
        assert placed.wait(60) and "error" not in slow, slow.get("error")
        fast = shop.place([(roses, 1)], user=emma)
        assert fast.id > slow["order"].id
        at = _daytime()
        _run(settings, at)
        assert [subject for _, subject, _ in _mail(smtp_server)] == [f"Order {fast.number} confirmed"]
    finally:
        commit.set()
        thread.join(60)
    assert "error" not in slow, slow.get("error")
    _run(settings, at + timedelta(minutes=1))
    assert [(rcpt, subject) for rcpt, subject, _ in _mail(smtp_server)][1:] == [
        ("noah@example.com", f"Order {slow['order'].number} confirmed")
    ]
    engine.dispose()


@pytest.mark.parametrize(
    "oscar_url",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
    indirect=True,
)
def test_checkouts_at_once_while_notifier_runs_lose_no_order_and_send_none_for_a_rollback(
    oscar_url: str, project: Path, smtp_server: FaultySmtpServer
) -> None:
    """Several customers check out the same roses at once (Oscar locks the stock record), some
    checkouts fail and roll back, and notifier runs all the while: every committed order gets
    exactly one confirmation, and no rolled-back one gets any."""
    from django.db import OperationalError, connections, transaction

    settings = _settings(oscar_url, project, smtp_server)
    engine = _beside(settings)
    shop = OscarShop()
    roses = shop.product("Twelve red roses", "45.00")
    customers = [shop.customer(f"c{n}@example.com", "Customer", str(n)) for n in range(4)]
    committed: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def checkout(user: Any, *, declined: bool) -> str | None:
        """One checkout, rolled back whole when the card is declined. MariaDB may pick it as a
        deadlock victim (Oscar's checkout deadlocks there on a busy product, notifier or not):
        that rolls it back whole too, and the shop tries again a moment later, as MariaDB asks."""
        for tries in range(20):
            try:
                with transaction.atomic():
                    order = shop.place([(roses, 1)], user=user)
                    if declined:
                        raise RuntimeError("card declined")
                return str(order.number)
            except RuntimeError:
                return None
            except OperationalError as exc:
                if "Deadlock" not in str(exc):
                    raise
                time.sleep(random.uniform(0.01, 0.05) * (tries + 1))
        raise AssertionError("a checkout deadlocked twenty times")

    def checkouts(user: Any) -> None:
        try:
            for attempt in range(3):
                number = checkout(user, declined=attempt == 1)
                if number is not None:
                    with lock:
                        committed.append(number)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=checkouts, args=(user,)) for user in customers]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        code, _ = run(settings)  # notifier reads while checkouts commit around it
        assert code == 0
    for thread in threads:
        thread.join()
    assert not failures, failures
    code, _ = run(settings)
    assert code == 0
    subjects = [subject for _, subject, _ in _mail(smtp_server)]
    assert sorted(subjects) == sorted(f"Order {number} confirmed" for number in committed)
    assert len(committed) == 2 * len(customers)
    assert _event_count(engine, "order_events") == len(committed)
    engine.dispose()
