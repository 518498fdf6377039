"""A minimal django-oscar shop: Oscar's own apps, its order status pipeline as this example
configures it, and the database from SHOP_DATABASE_URL (the URL notifier is given too).

    SHOP_DATABASE_URL=sqlite:///shop.db
    SHOP_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/shop
    SHOP_DATABASE_URL=mysql://root@127.0.0.1:3306/shop      (MariaDB or MySQL, through PyMySQL)

It serves no pages: the tests (tests/test_oscar.py) and `migrate` use it. Django finds it by
its module name, so run migrate from the folder that holds `shop/` (the repository's
examples/oscar/, or a copy of it beside the shop), or put that folder on PYTHONPATH:

    cd examples/oscar && DJANGO_SETTINGS_MODULE=shop.settings python -m django migrate
    PYTHONPATH=examples/oscar DJANGO_SETTINGS_MODULE=shop.settings django-admin migrate
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from oscar import INSTALLED_APPS as OSCAR_APPS
from oscar.defaults import *  # noqa: F403  (Oscar's documented way to take its defaults)


def database(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for a SQLAlchemy-style URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        # IMMEDIATE: a checkout takes the write lock when it begins, so two writers (two
        # checkouts, or a checkout and notifier) wait for each other instead of failing.
        options = {"transaction_mode": "IMMEDIATE", "timeout": 20}
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path[1:]), "OPTIONS": options}
    engines = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
    if scheme not in engines:
        raise ValueError(f"SHOP_DATABASE_URL: no Django backend for {scheme}:// (sqlite, postgresql, mysql)")
    if engines[scheme] == "mysql":
        _pymysql_as_mysqldb()
    return {
        "ENGINE": f"django.db.backends.{engines[scheme]}",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # Oscar's migrations and notifier's capture triggers both need a UTF-8 database.
        **({"OPTIONS": {"charset": "utf8mb4"}} if engines[scheme] == "mysql" else {}),
    }


def _pymysql_as_mysqldb() -> None:
    # Django's MySQL backend wants mysqlclient (a C build); PyMySQL speaks the same protocol in
    # pure Python and stands in for it, under the version Django asks for.
    import pymysql

    pymysql.version_info = (2, 2, 1, "final", 0)
    pymysql.install_as_MySQLdb()


SECRET_KEY = "example-shop-not-secret"
DEBUG = False
USE_TZ = True  # Oscar stores UTC; notifier reads UTC (SPEC §2)
TIME_ZONE = "UTC"
SITE_ID = 1
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = list(OSCAR_APPS)
DATABASES = {"default": database(os.environ.get("SHOP_DATABASE_URL", "sqlite:///shop.db"))}
# The middleware and context processors Django's system checks ask for with Oscar's apps
# (the admin among them): without them `migrate` stops before it starts.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}
HAYSTACK_SIGNAL_PROCESSOR = "haystack.signals.BaseSignalProcessor"

OSCAR_DEFAULT_CURRENCY = "GBP"
# The statuses an order goes through. capture.yaml names the ones that are notifier events:
# Shipped -> order.dispatched, Delivered -> order.delivered, Cancelled -> order.cancelled.
OSCAR_INITIAL_ORDER_STATUS = "Pending"
OSCAR_ORDER_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Cancelled"),
    "Being processed": ("Shipped", "Cancelled"),
    "Shipped": ("Delivered",),
    "Delivered": (),
    "Cancelled": (),
}
OSCAR_INITIAL_LINE_STATUS = "Pending"
OSCAR_LINE_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Cancelled"),
    "Being processed": ("Shipped", "Cancelled"),
    "Shipped": ("Delivered",),
    "Delivered": (),
    "Cancelled": (),
}
OSCAR_ORDER_STATUS_CASCADE = {"Shipped": "Shipped", "Delivered": "Delivered", "Cancelled": "Cancelled"}
