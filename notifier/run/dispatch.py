"""Messages are rendered, sent and recorded: claim due notifications, decide, send, record.

One batch at a time: claim (lease) up to `batch_size` due notifications, check that each is
still wanted (not expired, not cancelled by an `unless:` event, not suppressed), render and
build the ones that are, hand them to SMTP — one order's (or case's) messages in event
order, different orders concurrently — and record every outcome in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from notifier import links
from notifier.compose.mail import Envelope, build_message, make_message_id
from notifier.compose.rendering import TemplateError
from notifier.config.live import LiveConfig
from notifier.config.settings import Settings
from notifier.core.addresses import InvalidAddress, parse_from
from notifier.core.context import brand_of, template_context
from notifier.core.gates import Decided, judge
from notifier.core.planning import shift
from notifier.core.retry import backoff
from notifier.core.rules import Category, RuleSet
from notifier.core.timing import utcnow
from notifier.core.values import Claimed, Event, Outcome, Reason, SendResult, State, Subject
from notifier.db import events as event_rows
from notifier.db import store
from notifier.db.engine import reading
from notifier.db.facts import load_facts
from notifier.db.subjects import load_customers, load_subjects
from notifier.run import metrics, schedules
from notifier.smtp.pacing import Pace
from notifier.smtp.pool import Sender

log = logging.getLogger("notifier.run.dispatch")

HARD_BOUNCE_CODES = frozenset({550, 551, 553})
FAN_OUT = ("product", "schedule")  # sources whose messages go to each customer of an audience
RECORD_TRIES = 6  # about a minute of retries before a batch's outcomes are given up


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """A message built and ready for SMTP."""

    claimed: Claimed
    mail_from: str
    message: bytes
    stored: dict[str, Any] = field(default_factory=dict)  # columns to save with the outcome


@dataclass(frozen=True, slots=True)
class _Loaded:
    """What rendering a batch needs from the database, read in one go."""

    events: dict[tuple[str, int], Event]
    subjects: dict[tuple[str, int], Subject]
    people: dict[int, dict[str, Any]]  # customers of fanned-out messages, by id

    @classmethod
    def read(cls, conn: sa.Connection, items: list[Claimed]) -> _Loaded:
        if not items:
            return cls({}, {}, {})
        return cls(
            events=_events_for(conn, items),
            subjects=load_subjects(conn, {(i.source, i.subject_id) for i in items}),
            people=load_customers(conn, {c for i in items if (c := _audience_member(i)) is not None}),
        )


@dataclass(slots=True)
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retrying: int = 0
    released: int = 0
    deferred: int = 0  # waiting: quiet hours, or held while a case is open


class Dispatcher:
    """Owns the send side of the pipeline for one daemon (or one `run --once`)."""

    def __init__(
        self,
        *,
        engine: Engine,
        config: LiveConfig,
        sender: Sender,
        settings: Settings,
        worker: str,
        clock: Callable[[], datetime] = utcnow,
        claim_limit: int | None = None,
    ) -> None:
        self.engine = engine
        self.claim_limit = claim_limit or settings.batch_size
        self.config = config
        self.sender = sender
        self.settings = settings
        self.worker = worker
        self.clock = clock
        self.stalled: SendResult | None = None
        self.pace = Pace(settings.smtp_rate)
        self._next_check = datetime.min.replace(tzinfo=UTC)
        self._stall_checks = 0

    # --- the batch ---------------------------------------------------------------------

    async def dispatch_once(self) -> BatchResult:
        """Claim, prepare, send and record one batch. Returns what happened."""
        if not await self.smtp_usable():
            return BatchResult()
        now = self.clock()
        claimed = await asyncio.to_thread(self._claim, now)
        if not claimed:
            return BatchResult()
        ready, decided = await asyncio.to_thread(self._prepare, claimed, now)
        renewal = asyncio.ensure_future(self._keep_leases([item.claimed.id for item in ready]))
        try:
            results = await self._send(ready)
            return await self._record_surely(ready, decided, results)
        finally:
            renewal.cancel()

    async def _record_surely(
        self, ready: list[Ready], decided: list[Decided], results: dict[int, SendResult | None]
    ) -> BatchResult:
        """Record a sent batch, retrying through a lost database connection: an unrecorded
        batch would be sent again when its lease runs out."""
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                return await asyncio.to_thread(self._record, ready, decided, results)
            except sa.exc.OperationalError as exc:
                if attempt == RECORD_TRIES:
                    raise
                log.warning(
                    "recording %d outcome(s) failed (%s); trying again",
                    len(results),
                    str(exc).splitlines()[0],
                )
                await asyncio.sleep(min(2.0**attempt, 30.0))
        raise AssertionError("unreachable")

    async def _keep_leases(self, ids: list[int]) -> None:
        """Renew the lease every third of its length while sending, so a slow SMTP server
        never lets another daemon take over messages that are still in flight."""
        period = max(self.settings.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(period)
            until = self.clock() + self.settings.lease
            await asyncio.to_thread(self._extend, ids, until)

    def _extend(self, ids: list[int], until: datetime) -> None:
        with self.engine.begin() as conn:
            store.extend_lease(conn, ids, self.worker, until)

    def _claim(self, now: datetime) -> list[Claimed]:
        with self.engine.begin() as conn:
            return store.claim_due(
                conn, now=now, limit=self.claim_limit, worker=self.worker, lease=self.settings.lease
            )

    # --- deciding and building -----------------------------------------------------------

    def _prepare(self, claimed: list[Claimed], now: datetime) -> tuple[list[Ready], list[Decided]]:
        rules = self.config.rules
        # Read what the batch needs in one read-only transaction, then render outside it:
        # rendering takes a while, and on SQLite a write transaction would hold up the order
        # system's writes (and other daemons' claims) for all that time.
        with reading(self.engine) as conn:
            facts = load_facts(conn, claimed, rules, has_secret=self.settings.secret_key is not None)
            wanted, decided = judge(claimed, rules, facts, now=now)
            to_render = [c for c in wanted if c.message is None]
            loaded = _Loaded.read(conn, to_render)
        built = self._render_all(to_render, loaded, rules, now, decided) if to_render else {}
        ready: list[Ready] = []
        for item in wanted:
            if item.message is not None:
                ready.append(Ready(claimed=item, mail_from=self._mail_from(rules), message=item.message))
            elif item.id in built:
                message, stored = built[item.id]
                ready.append(
                    Ready(claimed=item, mail_from=self._mail_from(rules), message=message, stored=stored)
                )
        return ready, decided

    @staticmethod
    def _mail_from(rules: RuleSet) -> str:
        return parse_from(rules.defaults.from_header)[1]

    def _render_all(
        self, items: list[Claimed], loaded: _Loaded, rules: RuleSet, now: datetime, decided: list[Decided]
    ) -> dict[int, tuple[bytes, dict[str, Any]]]:
        brand = brand_of(rules)
        built: dict[int, tuple[bytes, dict[str, Any]]] = {}
        for item in items:
            event = loaded.events.get((item.source, item.event_id))
            subject = loaded.subjects.get((item.source, item.subject_id), Subject(problem="not found"))
            member = _audience_member(item)
            person = loaded.people.get(member) if member is not None else None
            problem = _problem(event, subject, person, item)
            if problem is not None:
                decided.append(
                    Decided(claimed=item, state=State.SKIPPED, reason=problem[0], detail=problem[1])
                )
                continue
            assert event is not None
            try:
                built[item.id] = self._build(item, event, subject, person, rules, brand, now)
            except TemplateError as exc:
                log.error("not sending %s #%s: template failed: %s", item.rule, item.id, exc)
                decided.append(
                    Decided(claimed=item, state=State.FAILED, reason=Reason.RENDER_FAILED, detail=str(exc))
                )
            except InvalidAddress as exc:
                decided.append(
                    Decided(claimed=item, state=State.SKIPPED, reason=Reason.INVALID_ADDRESS, detail=str(exc))
                )
        return built

    def _build(
        self,
        item: Claimed,
        event: Event,
        subject: Subject,
        person: dict[str, Any] | None,
        rules: RuleSet,
        brand: dict[str, str],
        now: datetime,
    ) -> tuple[bytes, dict[str, Any]]:
        context = template_context(
            subject,
            event,
            customer=person,
            brand=brand,
            links=self._links(item, subject, person),
            now=now,
            reply_by=self._reply_by(subject, rules),
        )
        rule = rules.by_name(item.rule)
        wanted = rule.locale if rule is not None and rule.locale else context["locale"]
        locale = self.config.renderer.choose_locale(item.template, wanted)
        rendered = self.config.renderer.render(item.template, locale, context)
        customer = person or subject.customer or {}
        to_name = customer.get("name") if item.recipient == customer.get("email") else None
        message_key = item.key if item.resend_of is None else f"{item.key}:resend:{item.id}"
        message_id = make_message_id(message_key, brand["email"].rsplit("@", 1)[-1])
        headers = self._list_headers(item) if item.category == Category.MARKETING else ()
        envelope = Envelope(
            from_header=rules.defaults.from_header,
            to_name=to_name,
            to_address=item.recipient or "",
            message_id=message_id,
            date=now,
            extra_headers=headers,
        )
        message = build_message(rendered, envelope)
        return message, {
            "message": message,
            "message_id": message_id,
            "subject": rendered.subject,
            "locale": locale,
        }

    def _links(self, item: Claimed, subject: Subject, person: dict[str, Any] | None) -> dict[str, str | None]:
        secret = self.settings.secret_key
        if secret is None:
            return {}
        public = self.settings.public_url
        result: dict[str, str | None] = {}
        if item.recipient:
            result["unsubscribe"] = links.unsubscribe_url(public, secret.reveal(), item.recipient)
        if subject.case is not None:
            result["not_solved"] = links.not_solved_url(public, secret.reveal(), subject.case["id"])
        return result

    def _list_headers(self, item: Claimed) -> tuple[tuple[str, str], ...]:
        assert self.settings.secret_key is not None and item.recipient
        url = links.unsubscribe_url(
            self.settings.public_url, self.settings.secret_key.reveal(), item.recipient
        )
        mailto = f"mailto:{self._mail_from(self.config.rules)}?subject=unsubscribe"
        return (
            ("List-Unsubscribe", f"<{url}>, <{mailto}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        )

    @staticmethod
    def _reply_by(subject: Subject, rules: RuleSet) -> datetime | None:
        if subject.case is None:
            return None
        wait = rules.defaults.response_times.get(
            subject.case["priority"], rules.defaults.response_times["normal"]
        )
        opened: datetime = subject.case["opened_at"]
        return shift(opened, wait, rules.calendar)

    # --- sending -------------------------------------------------------------------------

    async def _send(self, ready: list[Ready]) -> dict[int, SendResult | None]:
        """Send; None for a message handed back unsent (SMTP stalled, or an earlier one of
        its thread did not go)."""
        threads: dict[str, list[Ready]] = {}
        for item in ready:
            threads.setdefault(item.claimed.thread, []).append(item)
        results: dict[int, SendResult | None] = {}

        async def send_thread(items: list[Ready]) -> None:
            for position, item in enumerate(items):
                if self.stalled is not None:
                    results.update({later.claimed.id: None for later in items[position:]})
                    return
                await self.pace.wait()
                result = await self.sender.send(
                    mail_from=item.mail_from, rcpt_to=item.claimed.recipient or "", message=item.message
                )
                results[item.claimed.id] = result
                self._paced(result)
                if result.outcome is Outcome.STALLED:
                    self._stall(result)
                if result.outcome is not Outcome.SENT:
                    results.update({later.claimed.id: None for later in items[position + 1 :]})
                    return

        await asyncio.gather(*(send_thread(items) for items in threads.values()))
        return results

    def _paced(self, result: SendResult) -> None:
        if result.outcome is Outcome.SENT:
            self.pace.accepted()
        elif result.code == 421:
            log.warning(
                "the mail server said 421 (%s); slowing down to %.1f messages/s",
                result.reply,
                self.pace.slow_down(),
            )

    def _stall(self, result: SendResult) -> None:
        if self.stalled is None:
            log.error("SMTP server unusable: %s; sending paused, nothing is lost", result.reply)
        self.stalled = result
        self._stall_checks = 0
        self._next_check = self.clock()

    async def smtp_usable(self) -> bool:
        """False while SMTP is stalled; checks again with growing pauses (at most 1 min)."""
        if self.stalled is None:
            return True
        if self.clock() < self._next_check:
            return False
        result = await self.sender.check()
        if result.outcome is Outcome.SENT:
            log.info("SMTP server is usable again; sending resumes")
            self.stalled = None
            return True
        self._stall_checks += 1
        wait = min(60.0, 2.0**self._stall_checks)
        self._next_check = self.clock() + timedelta(seconds=wait)
        self.stalled = result
        return False

    # --- recording -----------------------------------------------------------------------

    def _record(
        self, ready: list[Ready], decided: list[Decided], results: dict[int, SendResult | None]
    ) -> BatchResult:
        now = self.clock()
        summary = BatchResult(claimed=len(ready) + len(decided))
        changes: list[dict[str, Any]] = []
        attempts: list[dict[str, Any]] = []
        bounces: list[str] = []
        for item in decided:
            change = _closed(item.claimed, item.state, item.reason, item.detail, now)
            if item.until is not None:
                change["next_attempt_at"] = item.until
            changes.append(change)
            summary.skipped += item.state is State.SKIPPED
            summary.failed += item.state is State.FAILED
            summary.deferred += item.state is State.QUEUED
            _log_decision(item)
        for built in ready:
            result = results.get(built.claimed.id)
            change = self._outcome_change(built, result, now, summary)
            stored = dict(built.stored)
            if result is not None and result.outcome is Outcome.SENT:
                # Sent: the Message-ID and subject are kept; the bytes are only needed to resend
                # exactly the same message after a failure, so they are not written.
                stored.pop("message", None)
            changes.append({**change, **stored})
            if result is not None:
                attempts.append(
                    {
                        "notification_id": built.claimed.id,
                        "at": now,
                        "outcome": result.outcome.value,
                        "code": result.code,
                        "reply": result.reply[:1000],
                        "worker": self.worker,
                    }
                )
                if (
                    result.outcome is Outcome.PERMANENT
                    and result.code in HARD_BOUNCE_CODES
                    and built.claimed.recipient
                ):
                    bounces.append(built.claimed.recipient)
        with self.engine.begin() as conn:
            store.update_notifications(conn, changes)
            store.record_attempts(conn, attempts)
            metrics.recorded(conn, changes, attempts)
            for address in bounces:
                store.suppress(conn, address, "hard bounce", now)
            if self.stalled is not None:
                store.publish(conn, {"smtp.last_error": self.stalled.reply}, now)
            elif summary.sent:
                store.publish(conn, {"smtp.last_error": ""}, now)  # healthy again
        return summary

    def _outcome_change(
        self, item: Ready, result: SendResult | None, now: datetime, summary: BatchResult
    ) -> dict[str, Any]:
        claimed = item.claimed
        base = {"b_id": claimed.id, "lease_owner": None, "lease_until": None, "updated_at": now}
        if result is None or result.outcome is Outcome.STALLED:
            summary.released += 1
            return {**base, "state": State.QUEUED}
        reply = {
            "smtp_code": result.code,
            "smtp_reply": result.reply[:1000],
            "attempts": claimed.attempts + 1,
        }
        if result.outcome is Outcome.SENT:
            summary.sent += 1
            log.info(
                "sent %s #%s to %s (%s): %s %s",
                claimed.rule,
                claimed.id,
                claimed.recipient,
                claimed.thread,
                result.code,
                result.reply[:80],
            )
            return {**base, **reply, "state": State.SENT, "sent_at": now, "reason": None, "detail": None}
        if result.outcome is Outcome.PERMANENT:
            summary.failed += 1
            log.warning(
                "failed %s #%s to %s: %s %s (permanent, not retried)",
                claimed.rule,
                claimed.id,
                claimed.recipient,
                result.code,
                result.reply,
            )
            return {
                **base,
                **reply,
                "state": State.FAILED,
                "reason": Reason.SMTP_PERMANENT,
                "detail": f"{result.code} {result.reply}",
            }
        return self._retry_change(claimed, result, now, base, reply, summary)

    def _retry_change(
        self,
        claimed: Claimed,
        result: SendResult,
        now: datetime,
        base: dict[str, Any],
        reply: dict[str, Any],
        summary: BatchResult,
    ) -> dict[str, Any]:
        first = claimed.first_failure_at or now
        if first.tzinfo is None:
            first = first.replace(tzinfo=now.tzinfo)
        if now - first >= self.settings.retry_for:
            summary.failed += 1
            log.warning(
                "failed %s #%s to %s: still failing after %s: %s",
                claimed.rule,
                claimed.id,
                claimed.recipient,
                self.settings.retry_for,
                result.reply,
            )
            return {
                **base,
                **reply,
                "state": State.FAILED,
                "reason": Reason.RETRIES_EXHAUSTED,
                "detail": f"{result.code or ''} {result.reply}".strip(),
                "first_failure_at": first,
            }
        wait = backoff(claimed.attempts + 1, first=self.settings.retry_backoff.total_seconds())
        summary.retrying += 1
        log.warning(
            "retrying %s #%s to %s in %.0fs: %s %s",
            claimed.rule,
            claimed.id,
            claimed.recipient,
            wait,
            result.code or "",
            result.reply,
        )
        return {
            **base,
            **reply,
            "state": State.RETRYING,
            "next_attempt_at": now + timedelta(seconds=wait),
            "first_failure_at": first,
            "detail": f"{result.code or ''} {result.reply}".strip(),
        }


def _events_for(conn: sa.Connection, items: list[Claimed]) -> dict[tuple[str, int], Event]:
    by_source: dict[str, set[int]] = {}
    for item in items:
        by_source.setdefault(item.source, set()).add(item.event_id)
    found: dict[tuple[str, int], Event] = {}
    for source, ids in by_source.items():
        if source == schedules.SOURCE:  # a calendar tick is not a row: its id is its time
            found.update({(source, i): schedules.tick_event(datetime.fromtimestamp(i, UTC)) for i in ids})
            continue
        for event in event_rows.read_ids(conn, source, ids):
            found[(source, event.id)] = event
    return found


def _audience_member(item: Claimed) -> int | None:
    """The customer a fanned-out message goes to (its subject is the product or the tick)."""
    return item.customer_id if item.source in FAN_OUT and item.customer_id else None


def _problem(
    event: Event | None, subject: Subject, person: dict[str, Any] | None, item: Claimed
) -> tuple[Reason, str] | None:
    if event is None:
        return Reason.BAD_EVENT, f"event {item.event_type} #{item.event_id} is no longer in the database"
    if event.problem:
        return Reason.BAD_EVENT, event.problem
    if subject.problem:
        return Reason.NO_RECIPIENT, subject.problem
    if item.source in FAN_OUT and person is None:
        return Reason.NO_RECIPIENT, f"customer {item.customer_id} does not exist"
    return None


def _closed(item: Claimed, state: State, reason: Reason, detail: str, now: datetime) -> dict[str, Any]:
    return {
        "b_id": item.id,
        "state": state,
        "reason": reason,
        "detail": detail,
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
    }


def _log_decision(item: Decided) -> None:
    verb = {State.SKIPPED: "skipped", State.FAILED: "failed"}.get(item.state, "deferred")
    log.info(
        "%s %s #%s to %s: %s (%s)",
        verb,
        item.claimed.rule,
        item.claimed.id,
        item.claimed.recipient,
        item.reason.value,
        item.detail,
    )
