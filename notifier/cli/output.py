"""Printing for people and for programs: the consoles, plain text, JSON, and each command's tables.

Values from the database are printed as they are (never read as Rich markup); `--json` prints
plain JSON on stdout and nothing else there.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from notifier.config.settings import Settings
from notifier.errors import RulesError

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def say(text: str) -> None:
    """Print text as it is: values from the database are never read as Rich markup."""
    console.print(text, markup=False, highlight=False)


def print_json(data: Any) -> None:
    """Plain JSON on stdout: no colours, no markup, whatever the terminal."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))  # noqa: T201


def print_problems(exc: RulesError) -> None:
    """Each problem of invalid rules or templates on its own line, on stderr."""
    errors.print(f"[red]{len(exc.problems)} problem(s):[/red]")
    for problem in exc.problems:
        errors.print(f"  {problem}", markup=False, highlight=False)


def print_status(report: Any, settings: Settings, now: datetime) -> None:
    """`status` for people: the counts by state and by rule, SMTP, the rules in force, settings."""
    table = Table(title="notifications by state")
    table.add_column("state")
    table.add_column("count", justify="right")
    for state, count in report.by_state.items():
        table.add_row(state, str(count))
    console.print(table)
    rules = Table(title="by rule")
    rules.add_column("rule")
    states = list(report.by_state)
    for state in states:
        rules.add_column(state, justify="right")
    for rule, counts in sorted(report.by_rule.items()):
        rules.add_row(rule, *(str(counts.get(state, 0)) for state in states))
    console.print(rules)
    age = _age(now, report.oldest_queued_due)
    say(f"oldest due message waiting: {age}; sent in the last minute: {report.sent_last_minute}")
    if report.rule_errors_line:
        say(report.rule_errors_line)
    say(report.bounces_line)
    say(_smtp_line(report.as_dict()["smtp"]))
    for line in _config_lines(report.as_dict(), settings):
        say(line)
    say("settings:")
    for key, value in settings.describe().items():
        raw = getattr(settings, key, None)
        say(f"  {key}: {human_duration(raw) if isinstance(raw, timedelta) else value}")


def _smtp_line(smtp: dict[str, Any]) -> str:
    last = smtp["last_attempt"]
    tried = f"last hand-over {last['at']}: {last['outcome']} {last['code'] or ''}".rstrip() if last else ""
    if smtp["healthy"] is False:
        return f"SMTP: UNUSABLE since {smtp['last_error_at']}: {smtp['last_error']}" + (
            f" ({tried})" if tried else ""
        )
    if smtp["healthy"] is None:
        return "SMTP: nothing handed over yet"
    error = f"; last error {smtp['last_error_at']}: {smtp['last_error']}" if smtp["last_error"] else ""
    return f"SMTP: ok ({tried}){error}"


def _config_lines(report: dict[str, Any], settings: Settings) -> list[str]:
    rules, reload = report["rules"], report["reload"]
    if rules["path"] is None:
        return [
            f"rules in force: no daemon has started on this database yet (configured: {settings.rules}, "
            f"templates {settings.templates})"
        ]
    lines = [
        f"rules in force: {rules['path']} (digest {rules['digest']}, {rules['count']} rules); "
        f"templates: {rules['templates']}"
    ]
    if reload["ok"]:
        lines.append(f"last reload: ok ({reload['at']})")
    else:
        lines.append(
            f"last reload: FAILED ({reload['at']}); the last good rules stay in force:\n{reload['error']}"
        )
    return lines


def _age(now: datetime, moment: datetime | None) -> str:
    if moment is None:
        return "none"
    return human_duration(now - moment)


def human_duration(value: timedelta) -> str:
    """THE way `status` shows a length of time: '2s', '3h 10m', '1d 4h', '500ms' - the two
    largest units, rounded down, rather than Python's '0:00:02'."""
    seconds = value.total_seconds()
    if 0 < abs(seconds) < 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    sign, whole = ("-", -whole) if whole < 0 else ("", whole)
    parts = [
        (whole // 86400, "d"),
        (whole % 86400 // 3600, "h"),
        (whole % 3600 // 60, "m"),
        (whole % 60, "s"),
    ]
    shown = [f"{amount}{unit}" for amount, unit in parts if amount]
    return sign + (" ".join(shown[:2]) if shown else "0s")


_STATE_STYLES = {"sent": "green", "failed": "red", "retrying": "yellow", "queued": "cyan", "sending": "cyan"}


def print_history(entries: list[Any]) -> None:
    """`history` for people: per rule and event, its id (for `retry --id` and `resend`), state,
    rule and event; then when (UTC and the customer's local time) and to whom; then the why,
    wrapped to the terminal's width. Colours only on a terminal (Rich; NO_COLOR respected)."""
    for entry in entries:
        for line in _history_block(entry):
            console.print(line, soft_wrap=True)
    ids = {entry.state: entry.id for entry in entries if entry.id is not None}
    hints = []
    if "failed" in ids:
        hints.append(f"to send a failed one again: notifier retry --id {ids['failed']}")
    if "sent" in ids:
        hints.append(f"a fresh copy of a sent one: notifier resend {ids['sent']}")
    for line in _wrapped(Text("; ".join(hints), style="dim"), 0) if hints else []:
        console.print(line, soft_wrap=True)


def _history_block(entry: Any) -> list[Text]:
    head = Text()
    head.append(f"#{entry.id}" if entry.id is not None else "-", style="bold")
    head.append("  ")
    state = entry.state + (f" ({entry.reason})" if entry.reason else "")
    head.append(state, style=_STATE_STYLES.get(entry.state, "dim"))
    head.append(f"  {entry.rule}", style="bold")
    head.append(f"  [{entry.event or 'no event yet'}]")
    when = Text(f"{_when(entry.moment, entry.timezone)}  to {entry.recipient or '-'}")
    why = Text(entry.explanation if not entry.subject else f'"{entry.subject}" - {entry.explanation}')
    return [*_wrapped(head, 0), *_wrapped(when, 4), *_wrapped(why, 4), Text()]


def _wrapped(text: Text, indent: int) -> list[Text]:
    """`text` wrapped to the console's width after `indent` spaces, with no trailing blanks."""
    lines = text.wrap(console, max(console.width - indent, 20))
    for line in lines:
        line.rstrip()
    return [Text(" " * indent) + line for line in lines]


def _when(moment: datetime | None, zone: str | None) -> str:
    """'2026-02-10 14:01 UTC (22:01 Asia/Taipei)': the customer's local time beside UTC."""
    if moment is None:
        return "not yet"
    shown = f"{moment:%Y-%m-%d %H:%M} UTC"
    if not zone or zone == "UTC":
        return shown
    try:
        local = moment.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        return shown  # a timezone notifier cannot use: the customer's mail is skipped for it anyway
    clock = f"{local:%H:%M}" if local.date() == moment.date() else f"{local:%Y-%m-%d %H:%M}"
    return f"{shown} ({clock} {zone})"


def print_replay(replay: Any) -> None:
    """`simulate` for people: per rule, then per day, candidate beside what was sent."""
    say(
        f"{replay.events} event(s) from {replay.since:%Y-%m-%d %H:%M} to {replay.until:%Y-%m-%d %H:%M} UTC "
        f"against {replay.rules_file}"
    )
    per_rule = Table(title="per rule: would send (candidate) beside was sent (in force)")
    per_rule.add_column("rule", no_wrap=True)
    per_rule.add_column("candidate", no_wrap=True)
    for name in ("would send", "not due yet", "would skip", "was sent"):
        per_rule.add_column(name, justify="right")
    for name, tally in sorted(replay.rules.items()):
        per_rule.add_row(
            name,
            replay.status.get(name, ""),
            str(tally.would_send),
            str(tally.not_due_yet),
            str(tally.would_skip),
            str(tally.sent),
        )
    console.print(per_rule)
    for name, tally in sorted(replay.rules.items()):
        if tally.skip_reasons:
            reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(tally.skip_reasons.items()))
            say(f"  {name} would skip: {reasons}")
    per_day = Table(title="per day (UTC)")
    per_day.add_column("day", no_wrap=True)
    per_day.add_column("rule", no_wrap=True)
    for name in ("would send", "would skip", "was sent"):
        per_day.add_column(name, justify="right")
    for (day, rule), tally in sorted(replay.days.items()):
        if tally.would_send or tally.would_skip or tally.sent:
            per_day.add_row(str(day), rule, str(tally.would_send), str(tally.would_skip), str(tally.sent))
    console.print(per_day)


def print_report(rows: Any, start: datetime) -> None:
    """`report` for people: one row a rule, with the case rates told and not told."""
    say(f"since {start:%Y-%m-%d %H:%M} UTC; 'case in 7d': a case opened about the same order within 7 days")
    say("after the message (told), or after the rule's event for orders that got no such message (not told)")
    table = Table(box=box.SIMPLE_HEAD)
    # A long rule name folds onto a second line rather than the figures being cut short.
    table.add_column("rule", overflow="fold")
    # Two-line headings, so that the table fits 80 columns without cutting them short.
    for name in ("sent", "failed", "told", "case\nin 7d", "not\ntold", "case\nin 7d"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row.rule,
            str(row.sent),
            str(row.failed),
            _count(row.messaged_orders),
            _share(row.messaged_with_case, row.rate_with),
            _count(row.unmessaged_orders),
            _share(row.unmessaged_with_case, row.rate_without),
        )
    console.print(table)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _share(count: int | None, rate: float | None) -> str:
    if count is None:
        return "-"
    return f"{count} ({rate:.0%})" if rate is not None else str(count)
