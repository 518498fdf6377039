"""The bounds every render keeps: output size, loop iterations and time.

Templates are untrusted input; a runaway `{% for %}` inside another must fail the one
message (render_failed, in plain words) and be refused at reload, never grow the daemon
without end. The check is cooperative and cheap: the sandbox (compose/sandbox.py) counts
`range()` items, refuses a `*`, `**` or `+` whose result would be too big, looks at the clock
every few outputs, attribute lookups and calls, and rendering.py counts each part's output
while it is generated.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass

MAX_PART_BYTES = 1_000_000  # characters of one part (subject, HTML or text) of one message
MAX_SECONDS = 2.0  # to render one message, all parts together
MAX_ITERATIONS = 200_000  # range() items in one message, all loops together
# Look at the clock once per 64 checks: time.monotonic() is not free (sandbox.finalize
# inlines Budget.tick with the same `ticks & 63`).
_CLOCK_EVERY = 64


class BudgetExceeded(Exception):
    """A render went over one of the bounds; str() says which, in plain words."""


@dataclass(slots=True)
class Budget:
    """What one message's render may still spend."""

    deadline: float
    iterations: int = MAX_ITERATIONS
    ticks: int = 0

    def tick(self) -> None:
        """Called often; looks at the clock now and then."""
        self.ticks += 1
        if not self.ticks & (_CLOCK_EVERY - 1) and time.monotonic() > self.deadline:
            raise BudgetExceeded(too_slow())

    def spend(self, iterations: int) -> None:
        self.iterations -= iterations
        if self.iterations < 0:
            raise BudgetExceeded(
                f"the loops ran over {MAX_ITERATIONS:,} range() items in one message (the iteration limit)"
            )
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(too_slow())


def too_slow() -> str:
    return f"rendering took over {MAX_SECONDS:g} s (the time limit for one message)"


def too_big(what: str) -> str:
    return f"{what} is over {MAX_PART_BYTES // 1_000_000} MB (the size limit for one part)"


CURRENT: ContextVar[Budget | None] = ContextVar("notifier_render_budget", default=None)


def fresh() -> Budget:
    """A budget for one message; rendering.py makes it CURRENT while the message renders."""
    return Budget(deadline=time.monotonic() + MAX_SECONDS)
