"""The commands that look at what notifier did, and put it right by hand: status, history,
retry, resend, simulate and report. Only retry and resend write (after asking, above 5)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from notifier.cli.options import order_id, read_settings
from notifier.cli.output import (
    errors,
    print_history,
    print_json,
    print_problems,
    print_replay,
    print_report,
    print_status,
    say,
)
from notifier.config.settings import Settings
from notifier.errors import EXIT_INVALID, RulesError

EXIT_USAGE = 2
CONFIRM_ABOVE = 5  # retry and resend ask before touching more than this many notifications


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What is queued, sent, retrying, failed; SMTP health; the rules in force and the last reload."""
    from notifier.core.timing import utcnow
    from notifier.db.engine import connect
    from notifier.tools.status import status

    settings = read_settings()
    now = utcnow()
    with connect(settings) as conn:
        report = status(conn, now)
    if as_json:
        print_json({**report.as_dict(), "settings": settings.describe()})
        return
    print_status(report, settings, now)


def _rules_to_explain(settings: Settings) -> Any:
    """The rules file as written (templates not checked), or None with a note when unreadable."""
    from notifier.config.rules_file import load_rules

    try:
        return load_rules(settings.rules, template_exists=lambda _name: True, capture=settings.capture)
    except (RulesError, OSError) as exc:
        errors.print(
            f"note: {settings.rules} could not be read, so rules that planned nothing are not listed: {exc}",
            markup=False,
            highlight=False,
        )
        return None


def history_command(
    customer: Annotated[
        str | None, typer.Option(metavar="EMAIL", help="The customer's email address.")
    ] = None,
    order: Annotated[
        str | None, typer.Option(metavar="ID", help="An order id, or the shop's order number.")
    ] = None,
    case: Annotated[int | None, typer.Option(metavar="ID", help="A case id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What a customer, order or case was sent, when, and why each rule did or did not send."""
    from notifier.core.timing import utcnow
    from notifier.db.engine import connect
    from notifier.tools.history import history

    if sum(x is not None for x in (customer, order, case)) != 1:
        errors.print("give exactly one of --customer EMAIL, --order ID, --case ID")
        raise typer.Exit(EXIT_USAGE)
    settings = read_settings()
    rules = _rules_to_explain(settings)
    order_key = order_id(settings, order) if order is not None else None
    with connect(settings) as conn:
        entries = history(
            conn, order=order_key, case=case, customer_email=customer, rules=rules, now=utcnow()
        )
    if as_json:
        print_json([entry.as_dict() for entry in entries])
        return
    if not entries:
        say("nothing was sent or planned for that yet")
        return
    print_history(entries)


def _since(text: str, now: datetime) -> datetime:
    from notifier.tools.replay import parse_since

    try:
        return parse_since(text, now)
    except ValueError as exc:
        errors.print(f"--since: {exc}", markup=False, highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc


def _confirmed(count: int, question: str, yes: bool) -> bool:
    """Ask before touching more than CONFIRM_ABOVE notifications, unless --yes."""
    if count <= CONFIRM_ABOVE or yes:
        return True
    return typer.confirm(question, default=False)


def _reason_gone(settings: Settings, candidates: list[Any]) -> dict[int, Any]:
    """Those skipped notifications whose reason no longer holds (core.gates.reason_gone)."""
    from notifier.core.gates import reason_gone

    rules = _rules_to_explain(settings) if candidates else None
    return {
        item.id: item
        for item in candidates
        if reason_gone(
            item.reason,
            rules.by_name(item.rule) if rules is not None else None,
            has_secret=settings.secret_key is not None,
        )
    }


def retry_command(
    ids: Annotated[
        list[int] | None,
        typer.Option(
            "--id", metavar="ID", help="A failed notification's id, as history shows it (repeat for more)."
        ),
    ] = None,
    rule: Annotated[
        str | None, typer.Option(metavar="NAME", help="Only failed notifications of this rule.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="WHEN", help="Only those that failed within this long (2d, 12h) or since a date."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be re-queued; change nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before re-queueing more than 5.")
    ] = False,
    skipped: Annotated[
        bool,
        typer.Option(
            "--skipped",
            help="Also skipped notifications whose reason is gone (the secret key set since, the rule "
            "enabled again).",
        ),
    ] = False,
) -> None:
    """Put failed notifications back in the queue to go out at once (the same message again);
    with --skipped (or --id), also skipped ones whose reason is gone."""
    from notifier.core.gates import RETRYABLE_SKIPS
    from notifier.core.timing import utcnow
    from notifier.db import store
    from notifier.db.engine import connect
    from notifier.tools.status import failed_notifications, notifications_by_id, skipped_notifications

    now = utcnow()
    start = _since(since, now) if since is not None else None
    settings = read_settings()
    with connect(settings) as conn:
        chosen = failed_notifications(conn, ids=ids or (), rule=rule, since=start)
        missing = sorted(set(ids or ()) - {item.id for item in chosen})
        others = notifications_by_id(conn, missing)
        candidates = [item for item in others.values() if item.state == "skipped"]
        if skipped:
            candidates += skipped_notifications(conn, reasons=RETRYABLE_SKIPS, rule=rule, since=start)
        cured = _reason_gone(settings, candidates)
        chosen += [item for item in cured.values() if item.id not in {c.id for c in chosen}]
        missing = [wrong for wrong in missing if wrong not in cured]
        conn.rollback()
        for wrong in missing:
            found = others.get(wrong)
            if found is None:
                errors.print(f"there is no notification {wrong}")
            elif found.state == "sent":
                errors.print(
                    f"notification {wrong} was sent, not failed; to send it again: notifier resend {wrong}"
                )
            elif found.state == "skipped":
                errors.print(f"notification {wrong} was skipped ({found.reason}), and that still holds")
            elif found.state == "failed":
                errors.print(f"notification {wrong} failed but does not match --rule/--since")
            else:
                errors.print(f"notification {wrong} is {found.state}, not failed")
        if not chosen:
            say("no failed notification matches; nothing changed")
            raise typer.Exit(EXIT_INVALID if missing else 0)
        for item in chosen:
            why = item.detail or item.reason
            say(f"  #{item.id} {item.rule} to {item.recipient or '-'} [{item.event}]: {why}")
        if dry_run:
            say(f"would re-queue {len(chosen)} failed notification(s) (dry run: nothing changed)")
            return
        if not _confirmed(len(chosen), f"Re-queue these {len(chosen)} failed notifications?", yes):
            say("nothing changed")
            raise typer.Exit(EXIT_INVALID)
        with conn.begin():
            count = store.requeue_failed(conn, [item.id for item in chosen], now)
    say(f"re-queued {count} failed notification(s); they go out on the daemon's next poll")


def resend_command(
    ids: Annotated[
        list[int],
        typer.Argument(
            metavar="ID", help="The id(s) of sent notifications to send again, as history shows them."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be resent; change nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before resending more than 5.")
    ] = False,
) -> None:
    """Send a fresh copy of sent notifications on purpose (rendered again, with a new Message-ID)."""
    from notifier.core.timing import utcnow
    from notifier.db import store
    from notifier.db.engine import connect
    from notifier.tools.status import notifications_by_id

    now = utcnow()
    settings = read_settings()
    with connect(settings) as conn:
        found = notifications_by_id(conn, ids)
        conn.rollback()
        wrong = False
        for wanted in dict.fromkeys(ids):
            item = found.get(wanted)
            if item is None:
                errors.print(f"there is no notification {wanted}")
                wrong = True
            elif item.state != "sent":
                hint = f"; to try it again: notifier retry --id {wanted}" if item.state == "failed" else ""
                errors.print(
                    f"notification {wanted} is {item.state}, not sent: only a sent one is resent{hint}"
                )
                wrong = True
        if wrong:
            raise typer.Exit(EXIT_INVALID)
        chosen = [found[i] for i in dict.fromkeys(ids)]
        for item in chosen:
            say(f"  #{item.id} {item.rule} to {item.recipient or '-'} [{item.event}], sent {item.at}")
        if dry_run:
            say(f"would resend {len(chosen)} notification(s) (dry run: nothing changed)")
            return
        if not _confirmed(len(chosen), f"Resend these {len(chosen)} notifications?", yes):
            say("nothing changed")
            raise typer.Exit(EXIT_INVALID)
        with conn.begin():
            made = [(item, store.insert_resend(conn, item.id, now)) for item in chosen]
    for item, new in made:
        say(f"queued #{new}: a resend of #{item.id} ({item.rule} to {item.recipient or '-'})")
    say(f"{len(made)} resend(s) queued; they go out on the daemon's next poll")


def simulate_command(
    rules: Annotated[Path, typer.Option("--rules", metavar="FILE", help="The candidate rules file to try.")],
    since: Annotated[
        str, typer.Option(metavar="WHEN", help="How far back to replay: 30d, 12h, or a date.")
    ] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Replay past events against candidate rules: what WOULD have been sent, beside what WAS.

    Reads only: nothing is written to the database and nothing is sent."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from notifier.config.live import load_checked
    from notifier.core.timing import utcnow
    from notifier.tools.replay import count_events, read_only, simulate

    now = utcnow()
    start = _since(since, now)
    settings = read_settings()
    try:
        candidate, _renderer = load_checked(rules, settings.templates, capture=settings.capture)
    except RulesError as exc:
        errors.print(f"[red]the candidate rules are not valid:[/red] {rules}")
        print_problems(exc)
        raise typer.Exit(EXIT_INVALID) from exc
    current = _rules_to_explain(settings)
    with read_only(settings.database_url.reveal()) as conn:
        total = count_events(conn, start)
        columns = (TextColumn("replaying events"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        quiet = as_json or not errors.is_terminal
        with Progress(*columns, console=errors, transient=True, disable=quiet) as progress:
            task = progress.add_task("replay", total=total)
            replay = simulate(
                conn,
                candidate,
                since=start,
                now=now,
                batch_size=settings.batch_size,
                current=current,
                has_secret=settings.secret_key is not None,
                progress=lambda n: progress.advance(task, n),
            )
    if as_json:
        print_json(replay.as_dict())
        return
    print_replay(replay)


def report_command(
    since: Annotated[str, typer.Option(metavar="WHEN", help="The period: 30d, 12h, or a date.")] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per rule: sent, failed, and for order rules how often a case followed within 7 days -
    with the message, and for orders of the same kind without it."""
    from notifier.core.timing import utcnow
    from notifier.tools.replay import read_only
    from notifier.tools.report import report

    now = utcnow()
    start = _since(since, now)
    settings = read_settings()
    rules = _rules_to_explain(settings)
    with read_only(settings.database_url.reveal()) as conn:
        rows = report(conn, rules, since=start, now=now)
    if as_json:
        print_json(
            {"since": start.isoformat(), "until": now.isoformat(), "rules": [r.as_dict() for r in rows]}
        )
        return
    print_report(rows, start)
