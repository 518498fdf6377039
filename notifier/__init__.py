"""notifier: tells customers what is happening with their orders and cases before they ask.

The folders are the layers, and imports only go down this list (tests/test_architecture.py
keeps it so):

    core/      pure by import: the values, and every decision (does a rule apply, when is it
               due, is it still wanted, in which language, what after an SMTP reply, in which
               words to explain it)
    compose/   pure: templates rendered in a sandbox, CSS inlined, RFC 5322 bytes
    config/    rules.yaml read and validated, settings, the rules in force and their reload
    db/        the integration tables, the readers that load a batch once, the store (the only
               code that spells notifier's own tables), migrations
    smtp/      the wire: pooled connections, pipelining, pacing, the table of refusals
    run/       the daemon: events in, rules decide, messages claimed, judged, rendered, sent,
               recorded; workers, reload, signals
    tools/     check, preview and the gallery, status and history, simulate, report, web, demo
    cli/       the command line, thin: parse, call, print

README.md's design section names every module in one line.
"""

__version__ = "0.1.0"
