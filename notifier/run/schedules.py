"""Calendar rules: messages that go on a date, not after an event ("Valentine's is coming").

A rule with `schedule: { cron: "0 10 20 1 *", timezone: Asia/Taipei }` fires at each tick.
Each cycle looks for the latest tick since the one last fired (remembered in notifier_state)
and fans it out to the rule's audience with the same set-based INSERT ... SELECT as product
events. A tick is a synthetic event (source "schedule", id = the tick's Unix time), so every
recipient's key `rule:schedule:<tick>:<customer>` is unique: two daemons firing the same tick
store it once. A tick missed for longer than the rule's max_age (a daemon down for weeks) is
not fired late.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from notifier.core.context import brand_of
from notifier.core.rules import Rule, RuleSet
from notifier.core.values import Event, Subject
from notifier.db import store
from notifier.db.store import STATE
from notifier.run.intake import fan_out

log = logging.getLogger("notifier.run.schedules")

SOURCE = "schedule"
_SECOND = timedelta(seconds=1)


def tick_event(tick: datetime) -> Event:
    """The synthetic event a calendar tick stands for."""
    return Event(
        source=SOURCE,
        id=int(tick.timestamp()),
        type="schedule.tick",
        subject_id=0,
        occurred_at=tick.astimezone(UTC),
    )


def latest_tick(rule: Rule, after: datetime, now: datetime) -> datetime | None:
    """The last tick of the rule's schedule in (after, now], or None."""
    assert rule.schedule is not None
    trigger = rule.schedule.trigger
    latest: datetime | None = None
    moment = trigger.get_next_fire_time(None, after)
    while moment is not None and moment <= now:
        if moment > after:
            latest = moment
        moment = trigger.get_next_fire_time(moment, moment.replace(microsecond=0) + _SECOND)
    return latest.astimezone(UTC) if latest is not None else None


def fire_due(engine: Engine, rules: RuleSet, *, clock: Callable[[], datetime]) -> int:
    """Fire every calendar rule whose tick has come; returns notifications stored."""
    planned = 0
    for rule in rules.rules:
        if rule.enabled and rule.schedule is not None:
            planned += _fire(engine, rule, rules, clock())
    return planned


def _fire(engine: Engine, rule: Rule, rules: RuleSet, now: datetime) -> int:
    key = f"schedule.{rule.name}"
    with engine.begin() as conn:
        last = _last_fired(conn, key)
        after = max(last, now - rules.max_age(rule)) if last is not None else now - rules.max_age(rule)
        tick = latest_tick(rule, after, now)
        if tick is None:
            return 0
        planned = fan_out(
            conn, rule, tick_event(tick), rules, subject=Subject(), brand=brand_of(rules), now=now
        )
        store.publish(conn, {key: tick.isoformat()}, now)
    log.info("calendar rule %s fired for %s: %d message(s)", rule.name, tick.isoformat(), planned)
    return planned


def _last_fired(conn: sa.Connection, key: str) -> datetime | None:
    query = sa.select(STATE.c.value).where(STATE.c.key == key)
    if conn.dialect.name in ("postgresql", "mysql"):
        query = query.with_for_update()  # one daemon fires a tick; the other then sees it fired
    value = conn.execute(query).scalar()
    return datetime.fromisoformat(value) if value else None
