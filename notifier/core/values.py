"""The values that flow between the stages: frozen, made at the edge, free of any database.

    Event       one row of an event table, read and checked (or a calendar tick)
    Subject     what an event is about: customer, order, items, case, product
    Planned     a notification a rule owes for an event: queued for a time, or skipped, and why
    Claimed     a notification a process holds (leased) to decide on, render and send
    NotificationRecord  one stored notification as `history` explains it (read by the store)
    State       where a notification is in its life
    Reason      why a notification was not sent, or waits (the words `history` shows)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class State(StrEnum):
    QUEUED = "queued"  # planned; goes out at due_at
    SENDING = "sending"  # claimed by a daemon until lease_until
    SENT = "sent"  # the SMTP server accepted it
    RETRYING = "retrying"  # a transient failure; goes again at next_attempt_at
    FAILED = "failed"  # given up: permanent SMTP reply, render error, or retried too long
    SKIPPED = "skipped"  # decided not to send; `reason` says why
    BOUNCED = "bounced"  # sent, then a bounce report came back; `reason` is a core.bounces.Kind
    COMPLAINED = "complained"  # sent, then the recipient reported it as spam (ARF)


# States in which a notification still owes a send.
OPEN_STATES = (State.QUEUED, State.SENDING, State.RETRYING)


class Reason(StrEnum):
    CONDITION_FALSE = "condition_false"  # the rule's `when:` was false for this event
    EXPIRED = "expired"  # it would have gone out later than the rule's max_age allows
    NO_RECIPIENT = "no_recipient"  # no customer, order or case to send to
    INVALID_ADDRESS = "invalid_address"  # the recipient's address cannot be used
    BAD_EVENT = "bad_event"  # the event row cannot be read (data not JSON, ...)
    RENDER_FAILED = "render_failed"  # the template failed; nothing was sent
    SMTP_PERMANENT = "smtp_permanent"  # the server refused it for good (5xx)
    RETRIES_EXHAUSTED = "retries_exhausted"  # transient failures for longer than retry_for
    UNLESS_HAPPENED = "unless_happened"  # an awaited `unless:` event arrived in time
    NOT_OPTED_IN = "not_opted_in"  # marketing mail to a customer who did not opt in
    SUPPRESSED = "suppressed"  # the address unsubscribed or bounced
    NO_SECRET_KEY = "no_secret_key"  # (queued) marketing mail waiting for NOTIFIER_SECRET_KEY
    RULE_GONE = "rule_gone"  # the rule was removed or disabled before the message fell due
    QUIET_HOURS = "quiet_hours"  # (queued) marketing mail waiting for the customer's morning
    HELD = "held"  # (queued) marketing mail waiting while the customer has an open case
    SUPERSEDED = "superseded"  # a later event made the message stale (superseded_by)
    RULE_ERROR = "rule_error"  # the rule's condition, due time or audience raised for this event
    BAD_ROW = "bad_row"  # a row of the order system's tables holds a value notifier cannot use
    UNEXPECTED = "unexpected_error"  # an error notifier did not foresee; the rest of the batch went on
    OUTSIDE_WINDOW = "outside_window"  # (fan-out) bought it, but not within the audience window
    NO_DUE_TIME = "no_due_time"  # `at:` found no date (no promised date), or its time had passed


_KIND = {"feedback": "case"}


def kind_of(source: str) -> str:
    """What a source's events are about: 'order', 'case' or 'product'."""
    return _KIND.get(source, source)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One row of an event table, read and checked."""

    source: str  # order | case | product
    id: int
    type: str  # 'order.placed'
    subject_id: int  # the order, case or product id
    occurred_at: datetime  # aware, UTC
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    problem: str | None = None  # why this row cannot be used, in plain words

    @property
    def thread(self) -> str:
        """Messages about one order (or case) go out in event order."""
        return f"{kind_of(self.source)}:{self.subject_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Subject:
    """What an event is about, as the template contract shapes it."""

    customer: dict[str, Any] | None = None
    order: dict[str, Any] | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    case: dict[str, Any] | None = None
    product: dict[str, Any] | None = None
    problem: str | None = None  # why no message can be made about it
    bad_row: bool = False  # the problem is a value in a row notifier cannot use (not a missing row)


@dataclass(frozen=True, slots=True, kw_only=True)
class Claimed:
    """A notification this worker holds until its lease runs out."""

    id: int
    key: str
    rule: str
    template: str
    category: str
    source: str
    event_id: int
    event_type: str
    thread: str
    subject_id: int
    customer_id: int | None
    recipient: str | None
    due_at: datetime
    expires_at: datetime | None
    attempts: int
    first_failure_at: datetime | None
    message_id: str | None
    message: bytes | None
    resend_of: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationRecord:
    """One stored notification, as `history` and core.explain see it: times are aware UTC,
    smtp_reply is the server's code and words together ("550 5.1.1 no such user")."""

    id: int
    rule: str
    source: str
    event_id: int
    event_type: str
    event_occurred_at: datetime
    subject_id: int
    thread: str
    customer_id: int | None
    recipient: str | None
    state: str
    reason: str | None
    detail: str | None
    due_at: datetime
    due_basis: str | None
    expires_at: datetime | None
    next_attempt_at: datetime
    lease_until: datetime | None
    first_failure_at: datetime | None
    sent_at: datetime | None
    attempts: int
    message_id: str | None
    subject: str | None
    smtp_reply: str | None
    resend_of: int | None
    rule_fingerprint: str | None


class Outcome(StrEnum):
    SENT = "sent"  # the server accepted the message
    TRANSIENT = "transient"  # try this message again later (4xx, dropped connection, timeout)
    PERMANENT = "permanent"  # this message will never go (5xx for this recipient/message)
    STALLED = "stalled"  # the server as a whole is unusable: stop sending, keep the message


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResult:
    """What happened to one message (or one `check`)."""

    outcome: Outcome
    code: int | None  # the SMTP reply code, when the server gave one
    reply: str  # the server's text, or what went wrong in plain words
