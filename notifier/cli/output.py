"""Printing for people and for programs: the consoles, plain text, JSON, and each command's tables.

Values from the database are printed as they are (never read as Rich markup); `--json` prints
plain JSON on stdout and nothing else there.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

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
        say(f"  {key}: {value}")


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
    seconds = int((now - moment).total_seconds())
    return f"{seconds // 3600}h {seconds % 3600 // 60}m {seconds % 60}s"


def print_entry(entry: Any) -> None:
    """Two lines per rule and event: what and when, then the why (or the server's reply)."""
    state = entry.state + (f" ({entry.reason})" if entry.reason else "")
    moment = f"{entry.moment:%Y-%m-%d %H:%M} UTC" if entry.moment else "-"
    say(
        f"{moment:<20}  {entry.rule:<22} {state:<22} to {entry.recipient or '-'}"
        f"  [{entry.event or 'no event yet'}]"
    )
    why = entry.explanation
    if entry.subject:
        why = f'"{entry.subject}" - {why}'
    say(f"{'':22}{why}")


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
    table.add_column("rule", no_wrap=True)
    for name in ("sent", "failed", "told", "case in 7d", "not told", "case in 7d"):
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
