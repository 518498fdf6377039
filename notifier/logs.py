"""Log lines on stderr, one format for the main process and its workers."""

from __future__ import annotations

import logging
import sys

NOISY = ("apscheduler", "mail.log", "alembic")  # other libraries' chatter, shown only with -vv


def configure(level: int, *, worker: int | None = None) -> None:
    """Log at `level`; a worker's lines say which worker wrote them."""
    who = f" [worker {worker}]" if worker is not None else ""
    logging.basicConfig(
        level=level, stream=sys.stderr, format=f"%(asctime)s %(levelname)s{who} %(name)s: %(message)s"
    )
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
