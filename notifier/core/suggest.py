"""'Did you mean ...?': the one helper every check uses for a near miss.

A misspelt key, event, template, timezone or locale is reported with the closest name that
exists ("unknown event 'order.deliverd'; did you mean 'order.delivered'?"), so ops fix it
without reading the README. Matching ignores case, so `asia/taipei` finds `Asia/Taipei`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import available_timezones

__all__ = ["closest", "closest_timezone", "did_you_mean", "is_timezone", "timezone_hint"]

_CUTOFF = 0.6  # difflib's own default: close enough that the suggestion is rarely silly


def closest(word: object, choices: Iterable[str], cutoff: float = _CUTOFF) -> str | None:
    """The choice nearest to `word` (itself, in the choices' spelling, if only its case differs),
    or None when nothing is close."""
    text = str(word)
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    found = difflib.get_close_matches(text.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[found[0]] if found else None


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """The words "; did you mean 'x'?" to end a message with, or "" when nothing is close."""
    found = closest(word, choices)
    return f"; did you mean {found!r}?" if found is not None else ""


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_timezone(name: object) -> bool:
    """Whether `name` is an IANA timezone this machine knows (as ZoneInfo would open it)."""
    return str(name) in _zones() or str(name) == "UTC"


def closest_timezone(name: object) -> str | None:
    """The IANA timezone nearest to `name`: 'Asia/Taipie' -> 'Asia/Taipei', and a bare city
    ('Taipei', 'new york') -> 'Asia/Taipei', 'America/New_York'."""
    text = str(name).strip().replace(" ", "_")
    found = closest(text, _zones())
    if found is not None:
        return found
    cities = {zone.rsplit("/", 1)[-1]: zone for zone in sorted(_zones()) if "/" in zone}
    # A city alone is short, so only a near-exact one is offered ('Base' is not 'Casey').
    city = closest(text.rsplit("/", 1)[-1], cities, cutoff=0.8)
    return cities[city] if city is not None else None


def timezone_hint(name: object) -> str:
    """The words "; did you mean 'Asia/Taipei'?" for a timezone near `name`, or ""."""
    found = closest_timezone(name)
    return f"; did you mean {found!r}?" if found is not None else ""
