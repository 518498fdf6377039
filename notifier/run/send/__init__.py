"""The send side as stages, one module each:

    load.py        every row a claimed batch needs, read once per batch
    judge.py       the pure gates (notifier.core.gates), one message's error failing it alone
    render.py      the language chosen once, rendered and built into bytes, one message at a time
    transmit.py    to SMTP in each thread's order; no new transaction once stopping
    record.py      group commit of outcomes beside the sending
    dispatcher.py  claim -> load -> judge -> render -> send -> record, for one batch
"""

from __future__ import annotations

from notifier.run.results import BatchResult
from notifier.run.send.dispatcher import Dispatcher
from notifier.run.send.record import RECORD_TRIES
from notifier.run.send.render import Ready

__all__ = ["RECORD_TRIES", "BatchResult", "Dispatcher", "Ready"]
