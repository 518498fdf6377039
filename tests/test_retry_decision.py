"""The decision after an SMTP reply, as a pure value: every branch, no database, no server."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from notifier.core.refusal_codes import Refused, Stage
from notifier.core.retry import RELEASED, Verdict, after_reply
from notifier.core.values import Claimed, Outcome, Reason, SendResult, State

NOW = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
RETRY_FOR = timedelta(hours=24)
BACKOFF = timedelta(minutes=1)


def _claimed(
    *, attempts: int = 0, first_failure_at: datetime | None = None, recipient: str = "a@example.com"
) -> Claimed:
    return Claimed(
        id=7,
        key="order-confirmation:order:1",
        rule="order-confirmation",
        template="order_confirmation",
        category="transactional",
        source="order",
        event_id=1,
        event_type="order.placed",
        thread="order:1",
        subject_id=1,
        customer_id=1,
        recipient=recipient,
        due_at=NOW,
        expires_at=None,
        attempts=attempts,
        first_failure_at=first_failure_at,
        message_id=None,
        message=None,
        resend_of=None,
    )


def _decide(claimed: Claimed, result: SendResult | None, now: datetime = NOW) -> Verdict:
    return after_reply(
        claimed, result, now=now, retry_for=RETRY_FOR, first_backoff=BACKOFF, rng=random.Random(1)
    )


def _reply(outcome: Outcome, code: int | None, text: str = "said so") -> SendResult:
    return SendResult(outcome=outcome, code=code, reply=text)


def test_accepted_is_sent_and_counts_an_attempt() -> None:
    verdict = _decide(_claimed(), _reply(Outcome.SENT, 250, "2.0.0 ok"))
    assert verdict == Verdict(state=State.SENT, attempted=True)
    assert not verdict.released and not verdict.suppress


GONE = [
    (550, "5.1.1 No such user here"),
    (550, "5.1.2 Bad destination system"),
    (553, "5.1.3 Mailbox name not allowed"),
    (550, "5.1.10 Null MX"),
    (550, "User unknown"),
]
KEPT = [
    (550, "5.7.1 Client blocked using policy", Stage.RCPT, "policy"),
    (554, "5.7.1 Message content rejected as spam", Stage.DATA, "policy"),
    (552, "5.3.4 Message too big", Stage.DATA, "message itself"),
    (550, "5.1.1 No such user here", Stage.DATA, "message itself"),
    (550, "User unknown", Stage.MAIL, "sender"),
    (552, "5.2.2 Mailbox full", Stage.RCPT, "cannot take it"),
]


@pytest.mark.parametrize(("code", "text"), GONE)
def test_a_mailbox_that_does_not_exist_fails_for_good_and_suppresses_the_address(
    code: int, text: str
) -> None:
    refused = Refused(outcome=Outcome.PERMANENT, code=code, reply=text, stage=Stage.RCPT)
    verdict = _decide(_claimed(), refused)
    assert verdict.state is State.FAILED and verdict.reason is Reason.SMTP_PERMANENT
    assert (
        verdict.detail
        == f"{code} {text} (the mailbox does not exist (refused at RCPT TO); the address is suppressed)"
    )
    assert verdict.suppress and verdict.next_attempt_at is None


@pytest.mark.parametrize(("code", "text", "stage", "words"), KEPT)
def test_policy_content_and_sender_refusals_fail_the_message_and_suppress_nothing(
    code: int, text: str, stage: Stage, words: str
) -> None:
    verdict = _decide(_claimed(), Refused(outcome=Outcome.PERMANENT, code=code, reply=text, stage=stage))
    assert verdict.state is State.FAILED and verdict.reason is Reason.SMTP_PERMANENT
    assert not verdict.suppress
    assert verdict.detail is not None and verdict.detail.startswith(f"{code} {text} (")
    assert words in verdict.detail and "not suppressed" in verdict.detail


def test_a_permanent_refusal_without_a_stage_suppresses_nothing() -> None:
    verdict = _decide(_claimed(), _reply(Outcome.PERMANENT, 550, "5.1.1 no such user"))
    assert verdict.state is State.FAILED and verdict.detail == "550 5.1.1 no such user"
    assert not verdict.suppress


def test_a_bounce_without_a_recipient_suppresses_nothing() -> None:
    refused = Refused(outcome=Outcome.PERMANENT, code=550, reply="5.1.1 gone", stage=Stage.RCPT)
    assert not _decide(_claimed(recipient=""), refused).suppress


def test_a_transient_failure_retries_after_the_backoff_and_remembers_the_first_failure() -> None:
    verdict = _decide(_claimed(), _reply(Outcome.TRANSIENT, 451, "try later"))
    assert verdict.state is State.RETRYING and verdict.reason is None
    assert verdict.first_failure_at == NOW and verdict.detail == "451 try later"
    assert verdict.next_attempt_at is not None
    wait = (verdict.next_attempt_at - NOW).total_seconds()
    assert 48 <= wait <= 72, "the first retry waits NOTIFIER_RETRY_BACKOFF, give or take 20%"


def test_each_retry_waits_longer_than_the_one_before() -> None:
    first = NOW - timedelta(hours=1)
    waits = []
    for attempts in range(1, 6):
        verdict = _decide(
            _claimed(attempts=attempts, first_failure_at=first), _reply(Outcome.TRANSIENT, None)
        )
        assert verdict.first_failure_at == first, "the first failure is kept across retries"
        assert verdict.next_attempt_at is not None
        waits.append(verdict.next_attempt_at - NOW)
    assert waits == sorted(waits) and len(set(waits)) == len(waits)


def test_retries_are_exhausted_after_retry_for() -> None:
    first = NOW - RETRY_FOR
    verdict = _decide(_claimed(attempts=12, first_failure_at=first), _reply(Outcome.TRANSIENT, 451, "busy"))
    assert verdict.state is State.FAILED and verdict.reason is Reason.RETRIES_EXHAUSTED
    assert verdict.detail == "451 busy" and verdict.first_failure_at == first
    just_before = _decide(
        _claimed(attempts=12, first_failure_at=first + timedelta(seconds=1)), _reply(Outcome.TRANSIENT, 451)
    )
    assert just_before.state is State.RETRYING


def test_a_naive_first_failure_is_taken_as_utc() -> None:
    naive = (NOW - RETRY_FOR - timedelta(minutes=1)).replace(tzinfo=None)
    verdict = _decide(_claimed(attempts=3, first_failure_at=naive), _reply(Outcome.TRANSIENT, None))
    assert verdict.reason is Reason.RETRIES_EXHAUSTED


def test_a_421_is_a_retry_not_a_failure() -> None:
    verdict = _decide(_claimed(), _reply(Outcome.TRANSIENT, 421, "too many connections, slow down"))
    assert verdict.state is State.RETRYING and not verdict.suppress
    assert verdict.detail == "421 too many connections, slow down"


def test_a_stalled_server_hands_the_message_back_uncounted() -> None:
    verdict = _decide(_claimed(attempts=2), _reply(Outcome.STALLED, None, "connection refused"))
    assert verdict.state is State.QUEUED and verdict.released and verdict.reason is None
    assert verdict.attempted, "the reply is kept as an attempt"
    assert verdict.next_attempt_at is None and verdict.first_failure_at is None


def test_a_message_never_handed_over_is_released_as_it_was() -> None:
    assert _decide(_claimed(), None) is RELEASED
    assert RELEASED.released and not RELEASED.attempted
