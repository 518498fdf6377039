"""After the SMTP server answers: what becomes of the message, decided as a value.

notifier.smtp turns whatever happened on the wire into a `SendResult` (one table, in
notifier.smtp.refusals); this module decides what that means for the notification:
`after_reply` returns a `Verdict` (sent, failed for good, retried after `backoff`, given up
after NOTIFIER_RETRY_FOR, or handed back to the queue), and a `Settled` is a message with its
verdict, what the store records.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from notifier.core.refusal_codes import Refused, mailbox_gone, meaning
from notifier.core.values import Claimed, Outcome, Reason, SendResult, State

_JITTER = 0.2


_RNG = random.Random()


def backoff(attempt: int, *, first: float, cap: float = 3600.0, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1-based).

    first * 2**(attempt - 1), capped at `cap` (even when `first` alone is more), times a
    random factor within ±20% so that many messages failing together do not all come
    back at the same moment. The jitter is small enough that each wait is still longer
    than the one before (0.8 * 2 > 1.2), until the cap. A `first` of 0 means "at once".
    Deterministic when given a seeded `rng`.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, not {attempt}")
    if first < 0 or cap < 0:
        raise ValueError(f"waits cannot be negative (first={first}, cap={cap})")
    if first == 0 or cap == 0:
        return 0.0  # "retry at once", as configured
    # Compare exponents rather than computing 2**attempt: a long outage could otherwise
    # overflow a float.
    doublings = attempt - 1
    base = cap if doublings >= math.log2(cap / first) else first * 2**doublings
    factor = (rng or _RNG).uniform(1 - _JITTER, 1 + _JITTER)
    return min(cap, base * factor)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What becomes of one claimed message: its next state and why, decided as a value."""

    state: State
    reason: Reason | None = None
    detail: str | None = None
    next_attempt_at: datetime | None = None  # RETRYING, or a deferral: when it goes again
    first_failure_at: datetime | None = None  # kept across retries, for NOTIFIER_RETRY_FOR
    suppress: bool = False  # a hard bounce: put the address on the suppression list
    attempted: bool = False  # the server answered: an attempt to count

    @property
    def released(self) -> bool:
        """Handed back to the queue untouched by a decision (not sent, SMTP stalled, stopping)."""
        return self.state is State.QUEUED and self.reason is None


RELEASED = Verdict(state=State.QUEUED)


def after_reply(
    claimed: Claimed,
    result: SendResult | None,
    *,
    now: datetime,
    retry_for: timedelta,
    first_backoff: timedelta,
    rng: random.Random | None = None,
) -> Verdict:
    """THE decision after an SMTP hand-over. `result` None: the message was never handed
    over (SMTP stalled before its turn, an earlier one of its thread failed, stopping)."""
    if result is None:
        return RELEASED
    if result.outcome is Outcome.STALLED:
        # The server as a whole is unusable: no fault of this message, nothing is counted
        # against it; it goes back to the queue and waits for the server.
        return Verdict(state=State.QUEUED, attempted=True)
    if result.outcome is Outcome.SENT:
        return Verdict(state=State.SENT, attempted=True)
    said = f"{result.code or ''} {result.reply}".strip()
    if result.outcome is Outcome.PERMANENT:
        return _refused(claimed, result)
    first = claimed.first_failure_at or now
    if first.tzinfo is None:
        first = first.replace(tzinfo=now.tzinfo)
    if now - first >= retry_for:
        return Verdict(
            state=State.FAILED,
            reason=Reason.RETRIES_EXHAUSTED,
            detail=said,
            first_failure_at=first,
            attempted=True,
        )
    wait = backoff(claimed.attempts + 1, first=first_backoff.total_seconds(), rng=rng)
    return Verdict(
        state=State.RETRYING,
        detail=said,
        next_attempt_at=now + timedelta(seconds=wait),
        first_failure_at=first,
        attempted=True,
    )


def _refused(claimed: Claimed, result: SendResult) -> Verdict:
    """A permanent refusal fails the message; only a mailbox that does not exist is suppressed
    (the table is notifier.core.refusal_codes)."""
    stage = result.stage if isinstance(result, Refused) else None
    detail = f"{result.code} {result.reply}" if result.code is not None else result.reply
    if stage is not None:
        detail = f"{detail} ({meaning(result.code, result.reply, stage)})"
    return Verdict(
        state=State.FAILED,
        reason=Reason.SMTP_PERMANENT,
        detail=detail,
        suppress=mailbox_gone(result.code, result.reply, stage) and bool(claimed.recipient),
        attempted=True,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Built:
    """What is kept of a rendered message with its outcome."""

    message: bytes
    message_id: str | None = None
    subject: str | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settled:
    """One claimed message and what became of it: what the record stage hands the store."""

    claimed: Claimed
    verdict: Verdict
    reply: SendResult | None = None  # the server's answer, when it gave one
    built: Built | None = None  # None when nothing was rendered (a gate decided, or it failed)
    occurred_at: datetime | None = None  # the event's time, for the event-to-acceptance metric
