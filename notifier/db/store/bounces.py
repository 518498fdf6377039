"""Reports that came back after a message was sent: the notification marked bounced (or
complained about), the report kept as an attempt, the address suppressed when it says so."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from notifier.core.bounces import Kind, Verp, suppresses
from notifier.core.values import State
from notifier.db.store.base import ATTEMPTS, NOTIFICATIONS, STATE, insert_into
from notifier.db.store.identity import database_id
from notifier.db.store.suppressions import add_suppression

__all__ = ["bounce_key", "find_notification", "record_report", "verp_of"]

BOUNCE_KEY = "bounces.key"
WORKER = "bounces"  # the attempt's worker: a report, not a hand-over
_SENT = (State.SENT, State.BOUNCED, State.COMPLAINED)  # what a report can be about
_STRONG = (Kind.HARD.value, Kind.COMPLAINT.value)  # never overwritten by a weaker report


def bounce_key(conn: sa.Connection, now: datetime) -> str:
    """This database's key for signing bounce addresses, made now if it has none yet."""
    query = sa.select(STATE.c.value).where(STATE.c.key == BOUNCE_KEY)
    if (found := conn.execute(query).scalar()) is not None:
        return str(found)
    conn.execute(
        insert_into(conn, STATE)
        .values(key=BOUNCE_KEY, value=secrets.token_hex(16), updated_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return str(conn.execute(query).scalar_one())


def verp_of(conn: sa.Connection, domain: str | None, now: datetime) -> Verp | None:
    """This database's bounce addresses on `domain` (NOTIFIER_BOUNCE_DOMAIN), None without one:
    the daemon's envelope sender and the reading of reports both come from here."""
    if not domain:
        return None
    return Verp(domain, bounce_key(conn, now), database_id(conn, now))


def find_notification(
    conn: sa.Connection, *, verp_ids: Sequence[int], message_ids: Sequence[str], address: str
) -> int | None:
    """The sent notification a report is about: named by its bounce address, else by the
    returned original's Message-ID, else the latest one sent to the failed address."""
    n = NOTIFICATIONS
    sent = n.c.state.in_(_SENT)
    if verp_ids:
        query = sa.select(n.c.id).where(n.c.id.in_(list(verp_ids)), sent).order_by(n.c.id.desc())
        if (found := conn.execute(query).scalar()) is not None:
            return int(found)
    if message_ids:
        query = sa.select(n.c.id).where(n.c.message_id.in_(list(message_ids)), sent)
        if (found := conn.execute(query.order_by(n.c.id.desc())).scalar()) is not None:
            return int(found)
    if not address:
        return None
    query = (
        sa.select(n.c.id)
        .where(sa.func.lower(n.c.recipient) == address.lower(), sent)
        .order_by(n.c.sent_at.desc(), n.c.id.desc())
    )
    found = conn.execute(query).scalar()
    return int(found) if found is not None else None


def record_report(
    conn: sa.Connection, notification_id: int | None, *, address: str, kind: Kind, detail: str, now: datetime
) -> None:
    """Mark the notification (if one was found) and suppress the address when the kind says so."""
    if notification_id is not None:
        state = State.COMPLAINED if kind is Kind.COMPLAINT else State.BOUNCED
        n = NOTIFICATIONS
        weaker = sa.or_(n.c.reason.is_(None), n.c.reason.not_in(_STRONG), n.c.state == State.SENT)
        update = n.update().where(n.c.id == notification_id)
        if not suppresses(kind):
            update = update.where(weaker)
        conn.execute(update.values(state=state, reason=kind.value, detail=detail or None, updated_at=now))
        conn.execute(
            ATTEMPTS.insert().values(
                notification_id=notification_id, at=now, outcome=kind.value, code=None,
                reply=detail[:1000], worker=WORKER,
            )
        )  # fmt: skip
    if suppresses(kind) and address:
        reason = "complaint" if kind is Kind.COMPLAINT else "hard bounce"
        add_suppression(conn, address, reason, now)
