"""The store: the only code that reads and writes notifier's own tables by their columns.

Every function takes an open connection, so the caller decides the transaction (intake writes
notifications and moves the cursor in one). The modules, one concern each:

    base.py       the tables, the dialect's INSERT ... ON CONFLICT, MySQL's transaction lock
    cursors.py    how far each event source has been read, and the gaps
    planned.py    planned notifications into the outbox
    fanout.py     an audience fanned out into the outbox in one INSERT ... SELECT, every "no" kept
    claims.py     due notifications leased to one process at a time
    outcomes.py   what became of them; retries and resends by hand
    bulk.py       many rows in one statement on PostgreSQL: a column an array, unnest()
                  (SQLite and MariaDB / MySQL use executemany)
    published.py  facts for `status`, the suppression list, customers' feedback
    reports.py    the outbox read for `report` and `simulate`
"""

from __future__ import annotations

from notifier.db.store.base import ATTEMPTS, CURSORS, FEEDBACK, GAPS, NOTIFICATIONS, STATE, SUPPRESSIONS, hold
from notifier.db.store.claims import CLAIM_LOCK, claim_due, extend_lease, release
from notifier.db.store.cursors import advance_cursor, expire_gaps, lock_cursor, open_gaps, set_cursor
from notifier.db.store.outcomes import (
    insert_resend,
    record_attempts,
    record_settled,
    release_waiting,
    requeue_failed,
    update_notifications,
)
from notifier.db.store.planned import insert_notifications, insert_planned, planned_row
from notifier.db.store.published import publish, record_feedback, suppress, suppressed

__all__ = [
    "ATTEMPTS", "CLAIM_LOCK", "CURSORS", "FEEDBACK", "GAPS", "NOTIFICATIONS", "STATE", "SUPPRESSIONS",
    "advance_cursor", "claim_due", "expire_gaps", "extend_lease", "hold", "insert_notifications",
    "insert_planned", "insert_resend", "lock_cursor", "open_gaps", "planned_row", "publish",
    "record_attempts", "record_feedback", "record_settled", "release", "release_waiting",
    "requeue_failed", "set_cursor", "suppress", "suppressed", "update_notifications",
]  # fmt: skip
