"""Gates a claimed notification passes before it is rendered: is it still wanted, and now?

Planning decided when the event was seen; by the time a message falls due the world may have
moved on. Each gate answers with a `Decided` (skip, or wait until a moment) or lets it pass:

    rule gone       the rule was removed or disabled since                -> skipped
    expired         more than max_age late                                -> skipped
    unless          an awaited event arrived (absence rules)              -> skipped
    superseded      a later event makes the message stale (opt-in)        -> skipped
    suppressed      marketing to an unsubscribed or bounced address       -> skipped
    no secret key   marketing needs signed unsubscribe links              -> waits (held)
    hold            marketing while the customer has an open case (opt-in) -> waits
    quiet hours     marketing inside the customer's night                 -> waits

Pure: what the gates look at is handed over as `Facts` (notifier.db.facts loads them for a
batch of claimed messages; `simulate` builds them from the past as it replays it), and `now`
is an argument. The daemon, `simulate` and `history` all judge with these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from notifier.core.rules import Category, Rule, RuleSet
from notifier.core.timing import quiet_hours_end
from notifier.core.values import Claimed, Event, Reason, State

HOLD_RECHECK = timedelta(minutes=15)  # how often a held message looks again at the open case
CASE_LIFECYCLE = ("case.opened", "case.reopened", "case.resolved")

NO_KEY_WORDS = (
    "held: marketing mail needs NOTIFIER_SECRET_KEY to sign its unsubscribe link; "
    "it goes once the key is set (README: Configuration)"
)

Types = tuple[str, ...]  # event types a message waits for (`unless:`) or is made stale by


@dataclass(frozen=True, slots=True, kw_only=True)
class Decided:
    """A claimed notification that will not be sent now, and why."""

    claimed: Claimed
    state: State
    reason: Reason
    detail: str
    until: datetime | None = None  # for a deferral (state QUEUED): when to look again


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What the gates look at for a batch, loaded once for the whole batch."""

    later: Mapping[tuple[int, Types], Event] = field(default_factory=dict)  # (message id, types) -> first
    suppressed: frozenset[str] = frozenset()  # lower-case addresses on the suppression list
    open_cases: Mapping[int, int] = field(default_factory=dict)  # customer id -> one open case
    zones: Mapping[int, str | None] = field(default_factory=dict)  # customer id -> IANA timezone
    has_secret: bool = True  # NOTIFIER_SECRET_KEY is set


def types_of(types: Iterable[str]) -> Types:
    """The canonical (sorted) form of a set of event types, as `Facts.later` keys it."""
    return tuple(sorted(types))


def awaited(claimed: Iterable[Claimed], rules: RuleSet) -> list[tuple[Claimed, Types]]:
    """The event types each message's `unless:` and `superseded_by:` wait for: what
    `Facts.later` must answer for it."""
    wanted: list[tuple[Claimed, Types]] = []
    for item in claimed:
        rule = rules.by_name(item.rule)
        if rule is None:
            continue
        wanted.extend((item, types_of(types)) for types in (rule.unless, rule.superseded_by) if types)
    return wanted


def first_since(
    trigger: Event | None, trigger_id: int, events: Iterable[Event], until: datetime | None = None
) -> Event | None:
    """The first of `events` (about the trigger's order or case, of the awaited types) at or
    after the trigger and not the trigger itself; with `until`, only those up to then (what
    was known at a past moment, for `simulate`)."""
    since = trigger.occurred_at if trigger is not None else None
    after = [
        e
        for e in events
        if e.id != trigger_id
        and not e.problem
        and (since is None or e.occurred_at >= since)
        and (until is None or e.occurred_at <= until)
    ]
    return min(after, key=lambda e: (e.occurred_at, e.id)) if after else None


def open_cases(
    owners: Mapping[int, int], lifecycle: Iterable[Event], at: datetime | None = None
) -> dict[int, int]:
    """Customer id -> one of their open cases (opened or reopened, not resolved since), from
    the cases' lifecycle events (`CASE_LIFECYCLE`); with `at`, as they stood then."""
    latest: dict[int, Event] = {}
    for event in lifecycle:
        if at is not None and event.occurred_at > at:
            continue
        current = latest.get(event.subject_id)
        if current is None or (event.occurred_at, event.id) > (current.occurred_at, current.id):
            latest[event.subject_id] = event
    found: dict[int, int] = {}
    for case, event in sorted(latest.items()):
        if event.type != "case.resolved" and case in owners:
            found.setdefault(owners[case], case)
    return found


def judge(
    claimed: list[Claimed], rules: RuleSet, facts: Facts, *, now: datetime
) -> tuple[list[Claimed], list[Decided]]:
    """Split claimed notifications into those to render now and those decided otherwise."""
    passed: list[Claimed] = []
    decided: list[Decided] = []
    for item in claimed:
        verdict = judge_one(item, rules, facts, now=now)
        if verdict is None:
            passed.append(item)
        else:
            decided.append(verdict)
    return passed, decided


def judge_one(item: Claimed, rules: RuleSet, facts: Facts, *, now: datetime) -> Decided | None:
    """The first gate that stops this message now, or None: it goes."""
    rule = rules.by_name(item.rule)
    skip = _skip_reason(item, rule, facts, now)
    if skip is not None:
        return Decided(claimed=item, state=State.SKIPPED, reason=skip[0], detail=skip[1])
    return _keyless(item, facts, now) or _held(item, rule, facts, now) or _quiet(item, rules, facts, now)


def _skip_reason(item: Claimed, rule: Rule | None, facts: Facts, now: datetime) -> tuple[Reason, str] | None:
    if item.resend_of is None and (rule is None or not rule.enabled):
        return Reason.RULE_GONE, f"rule {item.rule!r} is no longer enabled in the rules file"
    if item.expires_at is not None and now > item.expires_at:
        return (
            Reason.EXPIRED,
            f"due {item.due_at:%Y-%m-%d %H:%M} UTC, {_words(now - item.due_at)} late; max_age passed",
        )
    if rule is not None and rule.unless:
        happened = facts.later.get((item.id, types_of(rule.unless)))
        if happened is not None:
            return (
                Reason.UNLESS_HAPPENED,
                f"{happened.type} #{happened.id} at {happened.occurred_at:%Y-%m-%d %H:%M} UTC",
            )
    if rule is not None and rule.superseded_by:
        newer = facts.later.get((item.id, types_of(rule.superseded_by)))
        if newer is not None:
            return Reason.SUPERSEDED, f"superseded: {newer.type} #{newer.id} is already known"
    if item.category == Category.MARKETING:
        if item.recipient and item.recipient.lower() in facts.suppressed:
            return Reason.SUPPRESSED, f"{item.recipient} unsubscribed or bounced"
    return None


def _keyless(item: Claimed, facts: Facts, now: datetime) -> Decided | None:
    """Marketing mail without NOTIFIER_SECRET_KEY waits for it (until max_age), never dropped
    for good: the key is a setting ops can still make."""
    if item.category != Category.MARKETING or facts.has_secret:
        return None
    return Decided(
        claimed=item,
        state=State.QUEUED,
        reason=Reason.NO_SECRET_KEY,
        detail=NO_KEY_WORDS,
        until=now + HOLD_RECHECK,
    )


def _held(item: Claimed, rule: Rule | None, facts: Facts, now: datetime) -> Decided | None:
    if rule is None or rule.hold_while != "case.open" or item.customer_id is None:
        return None
    case = facts.open_cases.get(item.customer_id)
    if case is None:
        return None
    return Decided(
        claimed=item,
        state=State.QUEUED,
        reason=Reason.HELD,
        detail=f"held: open case {case}",
        until=now + HOLD_RECHECK,
    )


def _quiet(item: Claimed, rules: RuleSet, facts: Facts, now: datetime) -> Decided | None:
    """Marketing mail inside the customer's quiet hours waits for them to end (never dropped)."""
    quiet = rules.defaults.quiet_hours
    if quiet is None or item.category != Category.MARKETING or item.customer_id is None:
        return None
    zone = zone_named(facts.zones.get(item.customer_id))
    until = quiet_hours_end(now, zone, quiet.start, quiet.end)
    if until is None:
        return None
    local_end = until.astimezone(zone)
    detail = f"quiet hours in {zone} until {local_end:%H:%M} local ({until:%Y-%m-%d %H:%M} UTC)"
    return Decided(claimed=item, state=State.QUEUED, reason=Reason.QUIET_HOURS, detail=detail, until=until)


RETRYABLE_SKIPS = (Reason.NO_SECRET_KEY, Reason.RULE_GONE)  # the skips reason_gone can see gone


def reason_gone(reason: str | None, rule: Rule | None, *, has_secret: bool) -> bool:
    """Whether what skipped a notification no longer holds, so `retry` may queue it again: the
    secret key is set now (mail skipped for the want of it, before it was held instead), or its
    rule is enabled again. Any other reason was about the message itself and stands."""
    if reason == Reason.NO_SECRET_KEY:
        return has_secret
    if reason == Reason.RULE_GONE:
        return rule is not None and rule.enabled
    return False


def zone_named(name: str | None) -> ZoneInfo:
    """The IANA zone of that name; UTC for none or an unknown one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _words(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"
