"""The order system's integration tables (SPEC §2) as SQLModel models.

The order system owns and writes these tables; notifier only reads them. `init-db` creates
them where they are missing (new installs, the demo, tests); an existing order system may
provide them as views with the same columns.

Timestamps are UTC. SQLite stores them as text `YYYY-MM-DD HH:MM:SS[.ffffff]`, PostgreSQL
as `timestamp with time zone`, MariaDB / MySQL as `DATETIME(6)` holding UTC. `data` is JSON
text in SQLite, `jsonb` in PostgreSQL and `JSON` in MariaDB / MySQL.

MariaDB / MySQL wants a length on every VARCHAR: text that is indexed or a key is
VARCHAR(255) there (`NAME`), free text LONGTEXT (`TEXT`); SQLite and PostgreSQL keep their
unbounded text. These types are also the ones the migrations create notifier's tables with.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# Money as NUMERIC everywhere; floats never touch prices. SQLite hands back numbers, which
# context.py turns into Decimal via str() so 19.9 stays 19.9.
MONEY = sa.Numeric(12, 2, asdecimal=False)
_MYSQL = ("mysql", "mariadb")


class _UtcDatetime(sa.types.TypeDecorator[datetime]):
    """MySQL's DATETIME(6), which has no time zone: an aware time is stored as its UTC wall
    time (PyMySQL would write the wall time of whatever zone it is in)."""

    impl = mysql.DATETIME
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value


UTC_TIMESTAMP = sa.DateTime(timezone=True).with_variant(_UtcDatetime(fsp=6), *_MYSQL)
EVENT_DATA = sa.JSON().with_variant(JSONB(), "postgresql")
# 64-bit ids: BIGINT on PostgreSQL and MySQL; INTEGER in SQLite, which is 64-bit already and,
# on a primary key, the rowid itself (a BIGINT primary key there would not autoincrement).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.String().with_variant(sa.String(255), *_MYSQL)  # indexed or a key: 255 * 4 bytes fits an index
TEXT = sa.String().with_variant(mysql.LONGTEXT(), *_MYSQL)  # free text: no length to outgrow
BLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL)  # a message with attachments passes 64 KB


def _text(**kwargs: Any) -> Any:
    return Field(sa_type=TEXT, **kwargs)


def _money(nullable: bool = False) -> Any:
    return Field(default=None, sa_type=MONEY, nullable=nullable)


def _timestamp(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTC_TIMESTAMP, nullable=nullable, index=index)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    id: int | None = Field(default=None, primary_key=True)
    email: str
    name: str
    locale: str = Field(default="en", sa_column_kwargs={"server_default": "en"})
    timezone: str = Field(default="UTC", sa_column_kwargs={"server_default": "UTC"})
    marketing_opt_in: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class Product(SQLModel, table=True):
    __tablename__ = "products"
    id: int | None = Field(default=None, primary_key=True)
    sku: str
    name: str = _text()
    tags: str = _text(default="")
    price: Decimal = _money()
    currency: str


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(index=True)
    placed_at: datetime = _timestamp(index=True)
    status: str
    total: Decimal = _money()
    currency: str
    ship_to_name: str = _text()
    ship_to_address: str = _text()
    promised_date: date | None = None


class OrderItem(SQLModel, table=True):
    __tablename__ = "order_items"
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(index=True)
    product_id: int = Field(index=True)
    quantity: int
    unit_price: Decimal = _money()


class Case(SQLModel, table=True):
    __tablename__ = "cases"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(index=True)
    order_id: int | None = Field(default=None, index=True)
    subject: str = _text()
    status: str
    priority: str = "normal"
    opened_at: datetime = _timestamp()


class ProductTranslation(SQLModel, table=True):
    """Optional: a product's name in a customer's language (`products.name` where a locale has none)."""

    __tablename__ = "product_translations"
    product_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    locale: str = Field(primary_key=True)
    name: str = _text()


def _event_id() -> Any:
    # AUTOINCREMENT in SQLite so ids are never reused after a delete; BIGINT in PostgreSQL.
    return Field(default=None, primary_key=True, sa_type=ID, sa_column_kwargs={"autoincrement": True})


class OrderEvent(SQLModel, table=True):
    __tablename__ = "order_events"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = _event_id()
    order_id: int = Field(index=True)
    type: str
    occurred_at: datetime = _timestamp()
    data: dict[str, Any] | None = Field(default=None, sa_type=EVENT_DATA, nullable=True)


class CaseEvent(SQLModel, table=True):
    __tablename__ = "case_events"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = _event_id()
    case_id: int = Field(index=True)
    type: str
    occurred_at: datetime = _timestamp()
    data: dict[str, Any] | None = Field(default=None, sa_type=EVENT_DATA, nullable=True)


class ProductEvent(SQLModel, table=True):
    __tablename__ = "product_events"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = _event_id()
    product_id: int = Field(index=True)
    type: str
    occurred_at: datetime = _timestamp()
    data: dict[str, Any] | None = Field(default=None, sa_type=EVENT_DATA, nullable=True)


INTEGRATION_TABLES: tuple[sa.Table, ...] = tuple(
    model.__table__  # type: ignore[attr-defined, union-attr]
    for model in (Customer, Product, Order, OrderItem, Case, OrderEvent, CaseEvent, ProductEvent)
)

# Tables a shop may leave out: `init-db` creates them, the readers cope with their absence.
OPTIONAL_TABLES: tuple[sa.Table, ...] = (ProductTranslation.__table__,)  # type: ignore[attr-defined]

# MariaDB / MySQL: compare text byte for byte, as SQLite and PostgreSQL do (the server's
# default collation would take 'Ann@x' and 'ann@x ' for one value).
MYSQL_TABLE: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
for _table in (*INTEGRATION_TABLES, *OPTIONAL_TABLES):
    _table.dialect_kwargs.update(MYSQL_TABLE)

# Event source -> (table, the column naming what the event is about).
EVENT_SOURCES: dict[str, tuple[sa.Table, str]] = {
    "order": (OrderEvent.__table__, "order_id"),  # type: ignore[attr-defined]
    "case": (CaseEvent.__table__, "case_id"),  # type: ignore[attr-defined]
    "product": (ProductEvent.__table__, "product_id"),  # type: ignore[attr-defined]
}
