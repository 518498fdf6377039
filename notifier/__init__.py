"""notifier: tells customers what is happening with their orders and cases before they ask.

The package reads like the pipeline it runs:

    events.py     new rows from the event tables -> Event values
    rules.py      rules.yaml -> a frozen, validated RuleSet
    conditions.py sandboxed `when:` and `send_at:` expressions
    planning.py   Event + RuleSet -> notifications to queue (or the reason not to)
    context.py    the documented template context, loaded from the order system's tables
    rendering.py  sandboxed Jinja templates -> subject, HTML and text
    mail.py       rendered parts -> RFC 5322 bytes
    sending.py    pooled SMTP connections; every failure classified once
    dispatch.py   claim due notifications, render, send, record
    store.py      notifier's own tables, and the only code that writes them
    daemon.py     the scheduler that runs it all, reloads, stops gracefully
"""

__version__ = "0.1.0"
