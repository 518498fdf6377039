"""Read-only views of the outbox for `status`, `retry` and `resend`. The store reads them
(notifier.db.store.stats) and answers in frozen values; this module is the ops tools' name
for them."""

from __future__ import annotations

from notifier.db.store.stats import (
    Selected,
    Status,
    failed_notifications,
    notifications_by_id,
    oldest_due,
    skipped_notifications,
    status,
)

__all__ = [
    "Selected",
    "Status",
    "failed_notifications",
    "notifications_by_id",
    "oldest_due",
    "skipped_notifications",
    "status",
]
