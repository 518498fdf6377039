"""Prometheus metrics: what the pipeline did (counters, a histogram) and what the outbox holds
now (read from the database at scrape time). docs/metrics.md lists every series and example
alerts.

The daemon records as it goes:

    metrics.events_read(source, n)          event rows evaluated
    metrics.decided(rule, state, n=1)       a notification entered a state (queued, sent, ...)
    metrics.smtp_reply(code)                an SMTP server's reply to one hand-over
    metrics.sent_latency(seconds)           event occurred_at -> the SMTP server accepted it
    metrics.reloaded(ok)                    rules.yaml / templates reloaded, or refused

and two helpers take what intake and dispatch already hold: `planned(plans)` after a batch
of events is stored, `recorded(settled, now=...)` as each group of outcomes is stored. They
add up a batch first and count each series once (a labelled increment costs microseconds,
which counted per message was some 5% of the daemon's CPU).

`metrics_app(settings, engine)` is an ASGI app for the web app's `/metrics`;
`serve_metrics(port)` serves the same registry from a thread of the daemon. Both read the
outbox gauges (`notifier_outbox{state}`, `notifier_oldest_due_seconds`) when scraped.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from notifier.core.timing import as_utc, utcnow
from notifier.core.values import State
from notifier.db.store.stats import outbox_counts

if TYPE_CHECKING:
    from notifier.config.settings import Settings
    from notifier.core.planning import Planned
    from notifier.core.retry import Settled

log = logging.getLogger("notifier.run.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_READ = Counter(
    "notifier_events_read",
    "Event rows read and evaluated, by source (order, case, product, feedback).",
    ["source"],
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "notifier_notifications",
    "Notifications that entered a state, by rule: queued or skipped when planned; sent, "
    "retrying, failed or skipped when their turn came.",
    ["rule", "state"],
    registry=REGISTRY,
)
EVENT_TO_SEND = Histogram(
    "notifier_event_to_send_seconds",
    "From the event's occurred_at to the SMTP server's acceptance of its message (includes "
    "deliberate waits: delay, after, send_at).",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 30 * 86400),
    registry=REGISTRY,
)
SMTP_REPLIES = Counter(
    "notifier_smtp_replies",
    "SMTP replies to hand-overs, by reply code ('none' when the connection failed without one).",
    ["code"],
    registry=REGISTRY,
)
RELOADS = Counter(
    "notifier_reload",
    "Reloads of rules.yaml and templates after an edit: result ok, or error (the last good stay).",
    ["result"],
    registry=REGISTRY,
)


# --- recording -------------------------------------------------------------------------------


def events_read(source: str, n: int) -> None:
    if n:
        EVENTS_READ.labels(source=source).inc(n)


def decided(rule: str, state: str, n: int = 1) -> None:
    if n:
        NOTIFICATIONS.labels(rule=rule, state=str(state)).inc(n)


def smtp_reply(code: int | None, n: int = 1) -> None:
    SMTP_REPLIES.labels(code=str(code) if code is not None else "none").inc(n)


def sent_latency(seconds: float) -> None:
    EVENT_TO_SEND.observe(max(seconds, 0.0))


def reloaded(ok: bool) -> None:
    RELOADS.labels(result="ok" if ok else "error").inc()


def planned(plans: Iterable[Planned]) -> None:
    """Count a batch of stored plans (queued or skipped), by rule."""
    for (rule, state), n in Tally((plan.rule.name, plan.state) for plan in plans).items():
        decided(rule, state, n)


def recorded(settled: Sequence[Settled], *, now: datetime) -> None:
    """Count a group of outcomes as they are stored: the states entered (a message handed back
    to the queue, or deferred, is not a decision yet), every SMTP reply, and the time from the
    event to the acceptance (`now`, when it is recorded) of each message sent. Reads nothing."""
    replies: Tally[int | None] = Tally()
    states: Tally[tuple[str, State]] = Tally()
    for item in settled:
        state = item.verdict.state
        if item.reply is not None:
            replies[item.reply.code] += 1
        if state is State.QUEUED:
            continue
        states[item.claimed.rule, state] += 1
        if state is State.SENT and item.occurred_at is not None:
            sent_latency((as_utc(now) - as_utc(item.occurred_at)).total_seconds())
    for code, n in replies.items():
        smtp_reply(code, n)
    for (rule, state), n in states.items():
        decided(rule, state, n)


# --- the outbox, read at scrape time ------------------------------------------------------------


class OutboxCollector(Collector):
    """`notifier_outbox{state}` and `notifier_oldest_due_seconds` from the database, per scrape."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "notifier_outbox", "Notifications in the outbox now, by state.", labels=["state"]
            ),
            GaugeMetricFamily(
                "notifier_oldest_due_seconds",
                "Age of the oldest message that is due and not sent yet (queued or retrying); 0 if none.",
            ),
            GaugeMetricFamily("notifier_database_up", "1 if the last scrape could read the outbox, else 0."),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        outbox, oldest, up = self._families()
        try:
            counts, age = read_outbox(self.engine, utcnow())
        except sa.exc.SQLAlchemyError as exc:
            log.warning("metrics: cannot read the outbox: %s", str(exc).splitlines()[0])
            up.add_metric([], 0)
            yield up
            return
        for state, count in counts.items():
            outbox.add_metric([state], count)
        oldest.add_metric([], age)
        up.add_metric([], 1)
        yield from (outbox, oldest, up)


def read_outbox(engine: sa.Engine, now: datetime) -> tuple[dict[str, int], float]:
    """Counts by state (every state, zeros included) and the oldest due message's age in seconds."""
    with engine.connect() as conn:
        found = outbox_counts(conn, now)
        conn.rollback()
    return found


_collector_lock = threading.Lock()
_collector: OutboxCollector | None = None


def watch_outbox(engine: sa.Engine) -> None:
    """Read the outbox gauges from this engine's database at every scrape (replaces any before)."""
    global _collector
    with _collector_lock:
        if _collector is not None:
            REGISTRY.unregister(_collector)
        _collector = OutboxCollector(engine)
        REGISTRY.register(_collector)


class _MetricsApp:
    """An ASGI app object (not a function), so Starlette's Route serves it as it is."""

    def __init__(self) -> None:
        self._app = make_asgi_app(registry=REGISTRY)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


def metrics_app(settings: Settings | None, engine: sa.Engine) -> _MetricsApp:
    """The text exposition as an ASGI app for the web app: `Route("/metrics", metrics_app(...))`.

    `settings` is accepted for symmetry with the other app factories; nothing in it is needed."""
    del settings
    watch_outbox(engine)
    return _MetricsApp()


def serve_metrics(port: int, *, addr: str = "0.0.0.0", engine: sa.Engine | None = None) -> Any:
    """Serve `/metrics` on `port` from a background thread; with an engine, the outbox too.

    Returns prometheus_client's (server, thread); `server.shutdown()` stops it."""
    if engine is not None:
        watch_outbox(engine)
    return start_http_server(port, addr=addr, registry=REGISTRY)


# --- rule errors (appended: intake contains them per rule and event) --------------------------

RULE_ERRORS = Counter(
    "notifier_rule_errors",
    "Rule-and-event pairs whose rule raised (condition, due time, audience fan-out), by rule; "
    "each is stored as a failed notification with reason rule_error, and the batch went on.",
    ["rule"],
    registry=REGISTRY,
)


def rule_error(rule: str, n: int = 1) -> None:
    if n:
        RULE_ERRORS.labels(rule=rule).inc(n)
