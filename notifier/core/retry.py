"""After the SMTP server answers: what becomes of the message, decided as a value.

notifier.smtp turns whatever happened on the wire into a `SendResult` (one table, in
notifier.smtp.sending); this module decides what that means for the notification.
"""

from __future__ import annotations

import math
import random

_JITTER = 0.2


_RNG = random.Random()


def backoff(attempt: int, *, first: float, cap: float = 3600.0, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1-based).

    first * 2**(attempt - 1), capped at `cap` (even when `first` alone is more), times a
    random factor within ±20% so that many messages failing together do not all come
    back at the same moment. The jitter is small enough that each wait is still longer
    than the one before (0.8 * 2 > 1.2), until the cap. A `first` of 0 means "at once".
    Deterministic when given a seeded `rng`.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, not {attempt}")
    if first < 0 or cap < 0:
        raise ValueError(f"waits cannot be negative (first={first}, cap={cap})")
    if first == 0 or cap == 0:
        return 0.0  # "retry at once", as configured
    # Compare exponents rather than computing 2**attempt: a long outage could otherwise
    # overflow a float.
    doublings = attempt - 1
    base = cap if doublings >= math.log2(cap / first) else first * 2**doublings
    factor = (rng or _RNG).uniform(1 - _JITTER, 1 + _JITTER)
    return min(cap, base * factor)
