"""The command line (SPEC §6). Thin: parse options, call the pipeline, print.

Exit codes:

    0   done (also: nothing matched, nothing to do)
    1   invalid input: rules, templates or settings (the message says which file, which
        line and why), an id that is not what the command needs, or a question answered no
    2   bad usage: an unknown option, a missing or malformed argument
    75  `run --once` could not reach the SMTP server (nothing lost: the messages stay queued)

Output is for people on a terminal (Rich tables, colours only when stdout is a terminal);
every `--json` prints plain JSON on stdout and nothing else there. The modules:

    options.py  the global options, and the settings read through them
    init.py     init: a new deployment's starter files
    operate.py  init-db, run, check, preview, demo, web
    inspect.py  status, history, retry, resend, simulate, report
    bounces.py  bounces listen | poll, suppressions list | add | remove | import
    position.py position show / set: each event table's read position
    capture.py  capture install | check | remove: triggers that write events from the shop's tables
    output.py   the consoles, plain text and JSON, each command's tables
    failures.py an error that escapes a command, in plain words, with its exit code
"""

from __future__ import annotations

import typer

from notifier.cli import bounces, capture, init, inspect, operate, position
from notifier.cli.failures import guarded
from notifier.cli.options import HelpCommand, HelpGroup, main_options

__all__ = ["app", "main"]

# One example per command, shown at the end of its --help (Rich markup: no square brackets).
EXAMPLES = {
    "init": "notifier init shop      (then: cd shop and notifier check)",
    "init-db": "notifier --database-url sqlite:///shop.db init-db",
    "run": "notifier run --once      (everything due now, then exit)",
    "check": "notifier --rules rules.yaml --templates templates check",
    "preview": "notifier preview order_confirmation --locale zh-TW --order 1042",
    "demo": "notifier demo --out demo-out",
    "status": "notifier status --json",
    "history": "notifier history --order 1042      (or --customer lin@example.tw, --case 501)",
    "retry": "notifier retry --id 17 --dry-run      (the ids are in history)",
    "resend": "notifier resend 12      (a sent notification's id, from history)",
    "simulate": "notifier simulate --rules candidate.yaml --since 30d",
    "report": "notifier report --since 2026-02-01",
    "web": "notifier web --host 127.0.0.1 --port 8025",
    "bounces": "notifier bounces poll --every 1m      (or: notifier bounces listen --port 2525)",
    "suppressions": "notifier suppressions add lin@example.tw      (or: list, remove, import FILE)",
    "position": "notifier position set order 5000 --dry-run      (or: notifier position show)",
    "capture": "notifier capture install --dry-run      (or: notifier capture check, capture remove)",
}

app = typer.Typer(
    cls=HelpGroup,
    help="notifier: tells customers what is happening with their orders before they ask.",
    epilog="Example: notifier check, then notifier run. Each command's --help shows an example.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.callback()(main_options)
# In this order in --help: setting up and running first, then looking and putting right.
for _name, _command in (
    ("init", init.init_command),
    ("init-db", operate.init_db_command),
    ("run", operate.run_command),
    ("check", operate.check_command),
    ("preview", operate.preview_command),
    ("demo", operate.demo_command),
    ("status", inspect.status_command),
    ("history", inspect.history_command),
    ("retry", inspect.retry_command),
    ("resend", inspect.resend_command),
    ("simulate", inspect.simulate_command),
    ("report", inspect.report_command),
    ("web", operate.web_command),
):
    example = EXAMPLES.get(_name)  # tests/test_help.py asks every command for one
    app.command(_name, cls=HelpCommand, epilog=f"Example: {example}" if example else None)(_command)
for _name, _group in (
    ("bounces", bounces.bounces_app),
    ("suppressions", bounces.suppressions_app),
    ("position", position.app),
    ("capture", capture.app),
):
    app.add_typer(_group, name=_name, cls=HelpGroup, epilog=f"Example: {EXAMPLES[_name]}")


def main() -> None:
    """The `notifier` console script: no traceback for a user's mistake (cli/failures.py)."""
    guarded(app)
