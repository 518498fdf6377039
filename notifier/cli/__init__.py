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
    operate.py  init-db, run, check, preview, demo, web
    inspect.py  status, history, retry, resend, simulate, report
    bounces.py  bounces listen | poll, suppressions list | add | remove | import
    position.py position show / set: each event table's read position
    output.py   the consoles, plain text and JSON, each command's tables
"""

from __future__ import annotations

import typer

from notifier.cli import bounces, inspect, operate, position
from notifier.cli.options import main_options

__all__ = ["app", "main"]

app = typer.Typer(
    help="notifier: tells customers what is happening with their orders before they ask.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.callback()(main_options)
# In this order in --help: setting up and running first, then looking and putting right.
for _name, _command in (
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
    app.command(_name)(_command)
app.add_typer(bounces.bounces_app, name="bounces")
app.add_typer(bounces.suppressions_app, name="suppressions")
app.add_typer(position.app, name="position")


def main() -> None:
    """The `notifier` console script."""
    app()
