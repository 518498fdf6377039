"""notifier's own tables: the outbox, its attempts, the event cursors and the suppression list.

Only `store.py` writes them. States and reasons are `StrEnum`s so the words stored are the
words `status` and `history` show.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from notifier.core.values import State
from notifier.db.schema import BLOB, ID, MYSQL_TABLE, NAME, TEXT, UTC_TIMESTAMP


def _ts(nullable: bool = True, index: bool = False) -> Field:  # type: ignore[valid-type]
    return Field(default=None, sa_type=UTC_TIMESTAMP, nullable=nullable, index=index)


def _id(**kwargs: Any) -> Any:
    """A 64-bit id: BIGINT on PostgreSQL (an event id above 2,147,483,647 is the shop's to use)."""
    return Field(sa_type=ID, **kwargs)


def _name(**kwargs: Any) -> Any:
    """Text that is indexed or a key (VARCHAR(255) on MySQL, where an index needs a length)."""
    return Field(sa_type=NAME, **kwargs)


def _text(**kwargs: Any) -> Any:
    """Free text (LONGTEXT on MySQL)."""
    return Field(sa_type=TEXT, **kwargs)


def _key(**kwargs: Any) -> Any:
    """An autoincremented 64-bit primary key."""
    return Field(default=None, primary_key=True, sa_type=ID, **kwargs)


class Notification(SQLModel, table=True):
    """One message owed for one rule and one triggering occurrence (the outbox)."""

    __tablename__ = "notifier_notifications"
    __table_args__ = (
        sa.Index("ix_notifier_notifications_due", "state", "next_attempt_at"),
        sa.Index("ix_notifier_notifications_thread", "thread", "state"),
    )
    id: int | None = _key()
    key: str = Field(max_length=400, unique=True)  # rule:source:event_id[:recipient]
    rule: str = _name(index=True)
    template: str = _text()
    category: str = _text()
    source: str = _name()  # order | case | product
    event_id: int = _id()
    event_type: str = _text()
    event_occurred_at: datetime = _ts(nullable=False)
    thread: str = _name()  # 'order:1042': messages of one thread go out in event order
    subject_id: int = _id()  # the order, case or product id the event is about
    customer_id: int | None = _id(default=None, index=True)
    recipient: str | None = _name(default=None, index=True)
    state: str = _name(default=State.QUEUED)
    reason: str | None = _text(default=None)  # a Reason, for skipped and failed
    detail: str | None = _text(default=None)  # plain words: the condition, the SMTP reply, the template error
    rule_fingerprint: str | None = _text(default=None)  # the rule's definition when it decided
    due_basis: str | None = _text(default=None)  # what due_at was computed from, fixed at planning time
    due_at: datetime = _ts(nullable=False)
    expires_at: datetime | None = _ts()
    next_attempt_at: datetime = _ts(nullable=False)
    attempts: int = 0
    first_failure_at: datetime | None = _ts()
    lease_owner: str | None = _text(default=None)
    lease_until: datetime | None = _ts()
    message_id: str | None = _text(default=None)
    message: bytes | None = Field(default=None, sa_type=BLOB)
    locale: str | None = _text(default=None)
    subject: str | None = _text(default=None)
    smtp_code: int | None = None
    smtp_reply: str | None = _text(default=None)
    resend_of: int | None = _id(default=None)
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    sent_at: datetime | None = _ts()


class Attempt(SQLModel, table=True):
    """One hand-over to SMTP and what the server said."""

    __tablename__ = "notifier_attempts"
    id: int | None = _key()
    notification_id: int = _id(index=True)
    at: datetime = _ts(nullable=False)
    outcome: str = _text()  # core.values.Outcome
    code: int | None = None
    reply: str = _text(default="")
    worker: str = _text(default="")


class Cursor(SQLModel, table=True):
    """How far the event table of one source has been evaluated."""

    __tablename__ = "notifier_cursors"
    source: str = _name(primary_key=True)
    position: int = _id(default=0)  # every id <= position was evaluated, or is a gap listed below
    updated_at: datetime = _ts(nullable=False)


class Gap(SQLModel, table=True):
    """An event id below the cursor not seen yet: an uncommitted or rolled-back row."""

    __tablename__ = "notifier_gaps"
    source: str = _name(primary_key=True)
    event_id: int = _id(primary_key=True, sa_column_kwargs={"autoincrement": False})
    noticed_at: datetime = _ts(nullable=False)


class Suppression(SQLModel, table=True):
    """An address that gets no marketing mail: unsubscribed or hard-bounced."""

    __tablename__ = "notifier_suppressions"
    address: str = _name(primary_key=True)
    reason: str = _text()
    created_at: datetime = _ts(nullable=False)


class Feedback(SQLModel, table=True):
    """What a customer told us through a link in an email ("not solved").

    notifier never writes to the order system's tables; intake reads these rows as events
    (`case.not_solved`), so rules route them like any other event.
    """

    __tablename__ = "notifier_feedback"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = _key(sa_column_kwargs={"autoincrement": True})
    case_id: int = _id(index=True)
    type: str = _text()  # not_solved
    occurred_at: datetime = _ts(nullable=False)
    data: str | None = _text(default=None)  # JSON text: what the customer wrote, if anything


class StateEntry(SQLModel, table=True):
    """Small facts the daemon publishes for `status`: rules in force, last reload, SMTP health."""

    __tablename__ = "notifier_state"
    key: str = _name(primary_key=True)
    value: str = _text()
    updated_at: datetime = _ts(nullable=False)


class TemplateVersion(SQLModel, table=True):
    """One kept version of one template file: saved in the browser editor, or found changed on disk."""

    __tablename__ = "notifier_template_versions"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    path: str = _name(index=True)  # relative to templates/, e.g. 'order_confirmation/en.html'
    content: str = _text()
    sha256: str = _text()  # of the content's UTF-8 bytes: how the daemon's loaded files are matched
    author: str = _text()  # who saved it ('(on disk)' for a change made outside the editor)
    note: str = _text(default="")  # 'saved', 'revert to version 3', 'revert to the shipped default', ...
    created_at: datetime = _ts(nullable=False)


NOTIFIER_TABLES: tuple[sa.Table, ...] = tuple(
    model.__table__  # type: ignore[attr-defined, union-attr]
    for model in (Notification, Attempt, Cursor, Gap, Suppression, Feedback, StateEntry, TemplateVersion)
)
for _table in NOTIFIER_TABLES:
    _table.dialect_kwargs.update(MYSQL_TABLE)  # as the migrations make them
