"""The bounds every render keeps: output size, loop iterations and time.

Templates are untrusted input; a runaway `{% for %}` inside another must fail the one
message (render_failed, in plain words) and be refused at reload, never grow the daemon
without end. The check is cooperative and cheap: the sandbox (compose/sandbox.py) counts
`range()` items, refuses a `*`, `**` or `+` whose result would be too big, looks at the clock
every few outputs and attribute lookups, and rendering.py counts each part's output
while it is generated. A loop over a long text or list with no output, call or attribute
in it is not counted (each such value is itself bounded by the size limit).
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one message's render may take."""

    part_bytes: int = 1_000_000  # characters of one part (subject, HTML or text)
    seconds: float = 2.0  # all parts together
    iterations: int = 200_000  # range() items, all loops together


LIMITS = Limits()  # what the daemon, `check`, `preview` and the gallery render within


class BudgetExceeded(Exception):
    """A render went over one of the bounds; str() says which, in plain words."""


@dataclass(slots=True)
class Budget:
    """What one message's render may still spend."""

    limits: Limits
    deadline: float = 0.0
    iterations: int = 0

    def spend(self, iterations: int) -> None:
        self.iterations -= iterations
        if self.iterations < 0:
            raise BudgetExceeded(
                f"the loops ran over {self.limits.iterations:,} range() items in one message "
                "(the iteration limit)"
            )
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(self.too_slow())

    def check_size(self, size: int, what: str) -> None:
        if size > self.limits.part_bytes:
            raise BudgetExceeded(self.too_big(what))

    def too_slow(self) -> str:
        return f"rendering took over {self.limits.seconds:g} s (the time limit for one message)"

    def too_big(self, what: str) -> str:
        return f"{what} is over {_size(self.limits.part_bytes)} (the size limit for one part)"


def _size(characters: int) -> str:
    if characters >= 1_000_000:
        return f"{characters / 1_000_000:g} MB"
    return f"{characters / 1000:g} kB" if characters >= 1000 else f"{characters} characters"


def fresh(limits: Limits) -> Budget:
    """A budget for one message; rendering.py makes it CURRENT while the message renders."""
    return Budget(limits, deadline=time.monotonic() + limits.seconds, iterations=limits.iterations)


CURRENT: ContextVar[Budget | None] = ContextVar("notifier_render_budget", default=None)
