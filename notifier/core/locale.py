"""Which language a message goes out in.

A customer's locale is normalized ("zh_TW", "zh-Hant-HK" -> "zh-TW"; "zh-Hans", "zh-SG" ->
"zh-CN"; "en-GB" -> "en") and a template that lacks that locale falls back to "en". This is
the one place that choice is made: the daemon, `check`, `preview` and the gallery all ask it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

LOCALES: tuple[str, ...] = ("en", "zh-CN", "zh-TW")


FALLBACK_LOCALE = "en"


_TRADITIONAL_REGIONS = frozenset({"tw", "hk", "mo"})


_LANGUAGE = re.compile(r"[a-z]{2,3}")


_REGION = re.compile(r"[a-z]{2}|[0-9]{3}")


_SUBTAG_SEPARATOR = re.compile(r"[-_]")


def normalize_locale(value: str | None) -> str:
    """Return the template locale code for a customer's locale.

    Chinese maps to "zh-TW" (Traditional script, or Taiwan, Hong Kong, Macau) or
    "zh-CN" (everything else); any other language to its lower-case code ("en-GB" ->
    "en", "fr_FR" -> "fr"); nothing usable to "en". Whether a template has that
    locale is Renderer.choose_locale's business.
    """
    return _candidates(value)[-1]


@lru_cache(maxsize=1024)
def _candidates(value: str | None) -> tuple[str, ...]:
    """Template locales worth trying for a customer locale, most specific first.

    Cached: customers share a handful of locale spellings, and this runs twice per email.
    """
    if not value:
        return (FALLBACK_LOCALE,)
    base = value.strip().split(".")[0].split("@")[0]
    parts = [part.lower() for part in _SUBTAG_SEPARATOR.split(base) if part]
    if not parts or not _LANGUAGE.fullmatch(parts[0]):
        return (FALLBACK_LOCALE,)
    language, subtags = parts[0], parts[1:]
    regions = [tag for tag in subtags if _REGION.fullmatch(tag)]
    specific = [f"{language}-{regions[0].upper()}"] if regions else []
    if language != "zh":
        return (*specific, language)
    if "hant" in subtags:
        chinese = "zh-TW"
    elif "hans" in subtags:
        chinese = "zh-CN"
    else:
        chinese = "zh-TW" if set(regions) & _TRADITIONAL_REGIONS else "zh-CN"
    return (*(code for code in specific if code != chinese), chinese)


def _pick(available: tuple[str, ...] | list[str], wanted: str | None) -> str:
    for code in _candidates(wanted):
        if code in available:
            return code
    return FALLBACK_LOCALE


def message_locale(
    available: Sequence[str], customer_locale: str | None, rule_locale: str | None = None
) -> str:
    """THE choice of a message's language: the rule's own `locale:` (internal notices) or
    else the customer's, if the template has it (normalized: "zh_TW" -> "zh-TW"), else "en".
    `available` are the template's complete locales (Renderer.locales_of)."""
    return _pick(tuple(available), rule_locale or customer_locale)
