"""The words that explain a decision: how a due time was computed (fixed when it is planned and
stored with the notification), and what became of a notification (for `history`).

Pure: rows come in as mappings of the outbox's columns, rules as values, `now` as an argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from notifier.core.bounces import Kind
from notifier.core.bounces import words as report_words
from notifier.core.business import BusinessDuration
from notifier.core.rules import Rule, RuleSet
from notifier.core.timing import as_utc, format_duration
from notifier.core.values import Event, NotificationRecord, Reason, State, kind_of

_REASON_WORDS = {
    Reason.CONDITION_FALSE: "condition false",
    Reason.UNLESS_HAPPENED: "not needed, an unless: event happened",
    Reason.EXPIRED: "expired",
    Reason.NOT_OPTED_IN: "not opted in",
    Reason.SUPPRESSED: "suppressed",
    Reason.RULE_GONE: "rule no longer in force",
    Reason.RENDER_FAILED: "template failed",
    Reason.INVALID_ADDRESS: "unusable address",
    Reason.NO_RECIPIENT: "no one to send to",
    Reason.BAD_EVENT: "unreadable event",
    Reason.NO_SECRET_KEY: "no secret key",
    Reason.RULE_ERROR: "the rule raised an error",
    Reason.BAD_ROW: "a row notifier cannot use",
    Reason.OUTSIDE_WINDOW: "not bought within the audience window",
    Reason.UNEXPECTED: "an unforeseen error",
    Reason.NO_DUE_TIME: "no time to send it at",
}


def reason_words(reason: str | None, fallback: str) -> str:
    """A stored reason in words ('not opted in'), or the fallback with underscores as spaces."""
    return _REASON_WORDS.get(reason, (reason or fallback).replace("_", " "))  # type: ignore[call-overload]


def _at(moment: datetime) -> str:
    return f"{as_utc(moment):%Y-%m-%d %H:%M} UTC"


def _duration(value: object) -> str:
    """'48h' rather than '2d' up to three days, as rules files usually say it; business time
    ('2 business days') as written."""
    if not isinstance(value, timedelta):
        return str(value)
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0 and 0 < seconds <= 72 * 3600:
        return f"{seconds // 3600}h"
    return format_duration(value)


def timing_words(rule: Rule) -> str:
    """When a rule's message falls due, in words: 'delay 2h', '48h unless order.dispatched'."""
    if rule.send_at is not None:
        return f"send_at: {rule.send_at.source}"
    unless = f" unless {' or '.join(rule.unless)} happens first" if rule.unless else ""
    if rule.at is not None:
        clock = "the customer's time" if rule.at.whose == "customer" else "the shop's calendar"
        return f"at {rule.at.source} ({clock}){unless}"
    if rule.after_response_time:
        return f"{_offset_words(rule)}the promised reply time for the case's priority{unless}"
    if rule.after is not None:
        return f"{_duration(rule.after)} after {rule.on}{unless}"
    if rule.delay is not None:
        return f"delay {_duration(rule.delay)} after {rule.on}"
    return f"at once on {rule.on}"


def due_words(
    rule: Rule,
    event: Event,
    due: datetime,
    rules: RuleSet | None,
    priority: str | None = None,
    *,
    zone: tzinfo | None = None,
) -> str:
    """What a due time was computed from, in words fixed when it was planned:
    '48h after order.placed #12 at 2026-02-09 09:00 UTC'; for `at:`, the wall clock it was read
    on (`zone`): 'at: order.promised_date 14:00 = 2026-02-12 14:00 Europe/London (14:00 UTC)'."""
    trigger = (
        f"calendar tick of {rule.schedule.cron} ({rule.schedule.timezone}) at {_at(event.occurred_at)}"
        if rule.schedule is not None
        else f"{event.type} #{event.id} at {_at(event.occurred_at)}"
    )
    if rule.send_at is not None:
        past = " (already past: at the event's time)" if due <= event.occurred_at else ""
        return f"send_at: {rule.send_at.source} = {_at(due)}{past}"
    unless = f", unless {' or '.join(rule.unless)} happens first" if rule.unless else ""
    if rule.at is not None:
        clock = "the customer's time" if rule.at.whose == "customer" else "the shop's calendar"
        local = due.astimezone(zone) if zone is not None else due
        return (
            f"at: {rule.at.source} = {local:%Y-%m-%d %H:%M} {zone or 'UTC'} ({clock}; {_at(due)}), "
            f"planned on {trigger}{unless}"
        )
    wait = rule.wait
    if rule.after_response_time and rules is not None:
        wait = rule.due_after(rules.defaults.response_times, priority)
    if isinstance(wait, BusinessDuration):
        zone_name = rules.calendar.timezone.key if rules is not None else "UTC"
        how = f"{wait} after {trigger} (calendar {zone_name})"
    elif not wait:
        how = f"at once on {trigger}"
    else:
        how = f"{_duration(wait)} after {trigger}"
    if rule.after_response_time:
        how = f"{_offset_words(rule)}{how} (the promised reply time for {priority or 'normal'} priority)"
        if rule.response_offset:
            how += f" = {_at(due)}"
    elif rule.delay is not None and rule.after is None:
        how = f"delay {how}"
    return how + unless


def _offset_words(rule: Rule) -> str:
    """'30m before ' for `response_time - 30m`, '1h after ' for `+ 1h`, '' for none."""
    offset = rule.response_offset
    if not offset:
        return ""
    return f"{_duration(abs(offset))} {'before' if offset < timedelta(0) else 'after'} "


def rule_error_words(rule: Rule, rules: RuleSet, what: str, exc: BaseException) -> str:
    """'rule price-rise-warning (rules.yaml:12): when: failed: ...', the error in plain words."""
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, ValueError):
        text = f"{type(exc).__name__}: {text}"
    return f"rule {rule.name} ({rules.path}:{rule.line}): {what} raised an error: {text}"[:2000]


def unread_words(label: str, source: str, position: int, gap: bool) -> str:
    """Why an event planned nothing yet when notifier has not read it."""
    if gap:
        return (
            f"{label} was never read: it committed after later {source} events were read; "
            "the daemon looks for it on every poll and plans it on its next poll"
        )
    return (
        f"{label} was never read: it is above the {source} read position ({position}); "
        "the daemon plans it on its next poll (notifier position show)"
    )


def unevaluated_words(rule: str, label: str, source: str, position: int, decided: bool) -> str:
    """Why a rule planned nothing for an event below the read position. When another rule's
    decision about the event is recorded, it was evaluated and this rule was not in force;
    when none is, it cannot be told which rules were in force then, and that is said."""
    if decided:
        return (
            f"rule {rule} was not in force when {label} was evaluated "
            "(a rule applies to events read after it was added or enabled)"
        )
    return (
        f"not evaluated: {label} is below the {source} read position ({position}) but no rule's "
        "decision about it is recorded: it was read while no rule on it was in force, before "
        "notifier's records of it began, or skipped when the read position was moved past it "
        f"(notifier position set); rule {rule} never evaluated it"
    )


def _utc(value: Any) -> datetime | None:
    return as_utc(value) if value is not None else None


def explain(
    row: NotificationRecord,
    rule: Rule | None,
    rules_known: bool,
    events: Mapping[tuple[str, int], Event],
    now: datetime,
) -> tuple[str, str, datetime | None]:
    """(outcome, words, until) for one notification row."""
    state, reason, detail = row.state, row.reason, row.detail or ""
    resend = f"resend of #{row.resend_of}; " if row.resend_of is not None else ""
    reply = row.smtp_reply or ""
    changed = changed_words(row, rule)
    if state == State.SENT:
        sent = _utc(row.sent_at)
        when = f"{sent:%Y-%m-%d %H:%M:%S} UTC" if sent else "at an unrecorded time"
        return "sent", f"{resend}sent {when}, {reply or 'accepted'}, Message-ID {row.message_id}", None
    if state in (State.BOUNCED, State.COMPLAINED) and reason in set(Kind):
        sent = _utc(row.sent_at)
        when = f"{sent:%Y-%m-%d %H:%M:%S} UTC" if sent else "at an unrecorded time"
        then = report_words(Kind(reason), detail)
        return reason, f"{resend}sent {when} (Message-ID {row.message_id}), then {then}", None
    if state == State.QUEUED:
        return _explain_waiting(row, rule, rules_known, events, now, resend)
    if state == State.SENDING:
        lease = _utc(row.lease_until)
        until = f" (reserved until {lease:%H:%M:%S} UTC)" if lease else ""
        return "sending", f"{resend}being handed to the SMTP server now{until}", None
    if state == State.RETRYING:
        at = as_utc(row.next_attempt_at)
        words = f"{resend}retrying at {at:%Y-%m-%d %H:%M} UTC after {row.attempts} attempt(s); "
        return "retrying", words + f"the server said {detail or reply}", at
    if state == State.FAILED:
        if reason == Reason.SMTP_PERMANENT:
            return reason, f"{resend}failed: the SMTP server refused it for good: {reply or detail}", None
        if reason == Reason.RETRIES_EXHAUSTED:
            first = _utc(row.first_failure_at)
            since = f" since {first:%Y-%m-%d %H:%M} UTC" if first else ""
            return reason, f"{resend}failed: still failing after retrying{since}: {detail or reply}", None
        words = reason_words(reason, "failed")
        return reason or "failed", f"{resend}failed ({words}): {detail or reply}{changed}", None
    words = reason_words(reason, state)
    return reason or state, (f"{resend}{words}: {detail}" if detail else f"{resend}{words}") + changed, None


def changed_words(row: NotificationRecord, rule: Rule | None) -> str:
    """'; rule X has changed since' when the stored fingerprint is not the rule's now."""
    stored = row.rule_fingerprint or ""
    if rule is None or not stored or not rule.fingerprint or stored == rule.fingerprint:
        return ""
    return f"; rule {rule.name} has changed since this was decided"


def _explain_waiting(
    row: NotificationRecord,
    rule: Rule | None,
    rules_known: bool,
    events: Mapping[tuple[str, int], Event],
    now: datetime,
    resend: str,
) -> tuple[str, str, datetime | None]:
    reason, detail = row.reason, row.detail or ""
    at = as_utc(row.next_attempt_at)
    if reason == Reason.QUIET_HOURS:
        return reason, f"{resend}waiting for quiet hours to end, until {at:%Y-%m-%d %H:%M} UTC: {detail}", at
    if reason:
        return (
            reason,
            f"{resend}waiting until {at:%Y-%m-%d %H:%M} UTC ({reason.replace('_', ' ')}): {detail}",
            at,
        )
    due = as_utc(row.due_at)
    if at > now:
        basis = row.due_basis or (timing_words(rule) if rule is not None else "")
        how = f" ({basis})" if basis and not resend else ""
        words = f"{resend}waiting until {at:%Y-%m-%d %H:%M} UTC{how}"
    else:
        words = f"{resend}due since {due:%Y-%m-%d %H:%M} UTC; goes out on the daemon's next poll"
    notes = []
    if not resend and changed_words(row, rule):
        notes.append(f"rule {row.rule} has changed since this was decided")
    if rules_known and not resend and (rule is None or not rule.enabled):
        notes.append(f"rule {row.rule} is disabled or gone now, so it will be skipped when due")
    happened = _unless_event(row, rule, events) if rule is not None and not resend else None
    if happened is not None:
        notes.append(
            f"{happened.type} #{happened.id} happened at {happened.occurred_at:%Y-%m-%d %H:%M} UTC, "
            "so it will be skipped when due"
        )
    expires = _utc(row.expires_at)
    if expires is not None and now > expires:
        notes.append(f"past its max_age since {expires:%Y-%m-%d %H:%M} UTC, so it will be skipped as expired")
    return "waiting", "; ".join([words, *notes]), at


def _unless_event(
    row: NotificationRecord, rule: Rule, events: Mapping[tuple[str, int], Event]
) -> Event | None:
    """An `unless:` event of this rule, about the same order or case, since the trigger."""
    if not rule.unless:
        return None
    trigger = events.get((row.source, row.event_id))
    since = trigger.occurred_at if trigger else row.event_occurred_at
    found = [
        e
        for e in events.values()
        if e.type in rule.unless
        and kind_of(e.source) == kind_of(row.source)
        and e.subject_id == row.subject_id
        and (e.source, e.id) != (row.source, row.event_id)
        and not e.problem
        and e.occurred_at >= since
    ]
    return min(found, key=lambda e: (e.occurred_at, e.id)) if found else None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
