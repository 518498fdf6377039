"""A django-oscar shop in this process, for tests/test_oscar.py: the example's settings
(examples/oscar/shop/settings.py), Oscar's migrations, and orders placed and moved on through
Oscar's own API (its checkout's OrderPlacementMixin, Order.set_status, the ORM) - never by
writing rows.

Django is set up once per process; `use_database` points it at another database between
tests (each test has its own), which Django allows as long as no connection is open.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "oscar"
SETTINGS = "examples.oscar.shop.settings"
VIEWS = {"sqlite": "views.sqlite.sql", "postgresql": "views.postgresql.sql", "mysql": "views.mysql.sql"}


def django_ready() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    import django

    django.setup()


def use_database(url: str) -> None:
    """Django's default database from now on: `url`, as notifier is given it."""
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sites.models import Site
    from django.db import connections

    from examples.oscar.shop.settings import database

    connections.close_all()
    settings.DATABASES["default"] = database(url)
    connections.__dict__.pop("settings", None)  # read DATABASES afresh
    connections._settings = None  # type: ignore[attr-defined]
    try:
        del connections["default"]
    except AttributeError:
        pass  # no connection in this thread yet
    ContentType.objects.clear_cache()  # ids differ between databases
    Site.objects.clear_cache()


def migrate() -> None:
    from django.core.management import call_command

    # With Django's system checks, as `python -m django migrate` runs them (call_command
    # skips them unless told): settings the checks refuse fail here as they would for a user.
    call_command("migrate", verbosity=0, interactive=False, skip_checks=False)


def close() -> None:
    from django.db import connections

    connections.close_all()


def statements(dialect: str) -> list[str]:
    """The example's views for this database, one statement at a time (comments dropped)."""
    text = (EXAMPLE / VIEWS["mysql" if dialect in ("mysql", "mariadb") else dialect]).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def install_views(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for statement in statements(engine.dialect.name):
            conn.exec_driver_sql(statement)


class OscarShop:
    """The florist on Oscar: one partner, one product class, one shipping country."""

    def __init__(self) -> None:
        from oscar.core.loading import get_model

        country = get_model("address", "Country")
        self.gb, _ = country.objects.get_or_create(
            iso_3166_1_a2="GB",
            defaults={
                "iso_3166_1_a3": "GBR",
                "iso_3166_1_numeric": "826",
                "name": "United Kingdom",
                "printable_name": "United Kingdom",
                "is_shipping_country": True,
            },
        )
        self.partner, _ = get_model("partner", "Partner").objects.get_or_create(name="Blossom & Co")
        self.flowers, _ = get_model("catalogue", "ProductClass").objects.get_or_create(
            name="Flowers", defaults={"requires_shipping": True, "track_stock": True}
        )

    def product(self, title: str, price: str, currency: str = "GBP") -> Any:
        from oscar.core.loading import get_model

        product = get_model("catalogue", "Product").objects.create(product_class=self.flowers, title=title)
        product.stockrecords.create(
            partner=self.partner,
            partner_sku=f"FLOWERS-{product.id}",
            price=Decimal(price),
            price_currency=currency,
            num_in_stock=1000,
        )
        return product

    def customer(self, email: str, first_name: str, last_name: str, *, newsletter: bool = False) -> Any:
        from django.contrib.auth.models import User
        from django.db import connection
        from django.utils import timezone

        user = User.objects.create_user(email.split("@")[0], email, "not-a-password")
        user.first_name, user.last_name = first_name, last_name
        user.save()
        if newsletter:  # the example's own table: Oscar keeps no opt-in
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO shop_newsletter (email, subscribed_at) VALUES (%s, %s)",
                    [email.lower(), timezone.now()],
                )
        return user

    def place(
        self,
        items: list[tuple[Any, int]],
        *,
        user: Any = None,
        guest_email: str = "",
        ship_to: tuple[str, str] = ("Emma", "Lin"),
    ) -> Any:
        """An order as Oscar's checkout places it: a basket, a shipping address, Free shipping."""
        from django.contrib.auth.models import AnonymousUser
        from oscar.core.loading import get_class, get_model

        basket = get_model("basket", "Basket").objects.create(owner=user)
        basket.strategy = get_class("partner.strategy", "Default")()
        for product, quantity in items:
            basket.add_product(product, quantity)
        method = get_class("shipping.methods", "Free")()
        charge = method.calculate(basket)
        total = get_class("checkout.calculators", "OrderTotalCalculator")().calculate(basket, charge)
        address = get_model("order", "ShippingAddress")(
            first_name=ship_to[0],
            last_name=ship_to[1],
            line1="12 Rosebery Avenue",
            line4="London",
            postcode="EC1R 4SP",
            country=self.gb,
        )
        number = get_class("order.utils", "OrderNumberGenerator")().order_number(basket)
        extra = {"guest_email": guest_email} if guest_email else {}
        order = get_class("checkout.mixins", "OrderPlacementMixin")().place_order(
            order_number=number,
            user=user or AnonymousUser(),
            basket=basket,
            shipping_address=address,
            shipping_method=method,
            shipping_charge=charge,
            order_total=total,
            **extra,
        )
        basket.submit()
        return order

    def move(self, order: Any, *statuses: str) -> None:
        """Through the example's pipeline, one status at a time, as the dashboard does."""
        for status in statuses:
            order.set_status(status)

    def reprice(self, product: Any, price: str) -> None:
        """Oscar keeps one price per stock record and changes it in place, with no history."""
        record = product.stockrecords.get()
        record.price = Decimal(price)
        record.save()
