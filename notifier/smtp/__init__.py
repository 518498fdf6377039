"""Handing mail to an SMTP server, one concern a module:

    url.py         SmtpConfig, read from NOTIFIER_SMTP_URL (no SMTP library needed)
    refusals.py    THE table from an exception to an outcome (`classify`)
    pool.py        Sender: a pool of reused connections; never raises for SMTP trouble
    tls.py         STARTTLS whenever offered, the TLS context (cafile), no password in clear
    limits.py      Capacity: the connections the relay allows, lowered by its 421 greeting
    wire.py        one message at a time: envelope checks, the DATA payload, MAIL/RCPT/DATA
    pipelining.py  the same in one round trip when the server offers PIPELINING
    pacing.py      at most NOTIFIER_SMTP_RATE a second, slower when the relay says 421
"""
