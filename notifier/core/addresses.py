"""Email addresses: which ones can be used safely, and the From header's parts.

Pure, and cached: one recipient is checked when each rule is planned and again when its
message is built, so the later checks are a lookup.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Runs of anything that could end a header line or hide in one (C0/C1 controls, DEL,
# Unicode line/paragraph separators, lone surrogates) together with spaces: one space.
_UNSAFE_RUN_RE = re.compile("[\x00-\x20\x7f-\x9f\u2028\u2029\ud800-\udfff]+")


_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


_QUOTED_PAIR_RE = re.compile(r"\\(.)")


# Characters that never belong in an address we send to, even where RFC 5322 would
# allow them inside quotes: they are how one address turns into two, or into a header.
_FORBIDDEN_IN_ADDRESS_RE = re.compile(r'[\s\x00-\x1f\x7f-\x9f,<>";:()\[\]\\]')


_NOT_ATEXT_RE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")


_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


# IDNA 2003 (the stdlib codec) maps these to other letters where IDNA 2008 keeps them,
# so the two disagree about which domain is meant (UTS #46 "deviations"): refuse them.
_IDNA_DEVIATIONS = frozenset("\u00df\u03c2\u200c\u200d")


_FORBIDDEN_WORDS = {
    "\r": "a line break", "\n": "a line break", "\x00": "a NUL character",
    " ": "a space", "\t": "a tab", ",": "a comma", ";": "a semicolon",
    "<": "an angle bracket", ">": "an angle bracket", '"': "a quote",
}


class InvalidAddress(ValueError):
    """An email address that cannot be used safely."""


@lru_cache(maxsize=64)
def parse_from(from_header: str) -> tuple[str, str]:
    """'Blossom & Co <care@blossom.example>' -> ('Blossom & Co', 'care@blossom.example').

    A bare address gives ('', address); a quoted name is unquoted. Raises InvalidAddress
    when the header is malformed or its address fails `check_address`. Cached: a
    daemon has one From for almost every message (a refusal is not cached).
    """
    text = from_header.strip()
    shown = _show(text)
    if _CONTROL_RE.search(text):
        raise InvalidAddress(f"{shown} contains a line break or control character")
    if not text.endswith(">"):
        return "", check_address(text)
    start = text.rfind("<")
    if start < 0:
        raise InvalidAddress(f"{shown} has a '>' without a '<'")
    name = _from_display_name(text[:start].strip(), shown)
    return _clean(name), check_address(text[start + 1 : -1])


def _from_display_name(raw: str, shown: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return _QUOTED_PAIR_RE.sub(r"\1", raw[1:-1])
    if any(ch in raw for ch in '<>"'):
        raise InvalidAddress(f"{shown} has a name with '<', '>' or '\"' that is not quoted")
    return raw


@lru_cache(maxsize=8192)
def check_address(address: str) -> str:
    """Return `address` stripped if it is one plausible addr-spec, else raise InvalidAddress.

    Plausible: `local@domain`, an ASCII dot-atom local part, and a domain of at least two
    labels (or `localhost`). An international domain comes back in its ASCII (IDNA) form,
    which is what SMTP and the To header need. The exception says why in plain words.

    A pure function, cached: one recipient is checked when each rule is planned and again
    when its message is built, so the later checks are a lookup. (A refusal is not cached:
    each one raises a fresh InvalidAddress.)
    """
    candidate = address.strip()
    if not candidate:
        raise InvalidAddress("the address is empty")
    shown = _show(candidate)
    bad = _FORBIDDEN_IN_ADDRESS_RE.search(candidate)
    if bad:
        raise InvalidAddress(f"{shown} contains {_describe(bad.group())}")
    local, at, domain = candidate.rpartition("@")
    if not at:
        raise InvalidAddress(f"{shown} has no @")
    if "@" in local:
        raise InvalidAddress(f"{shown} has more than one @")
    _check_local_part(local, shown)
    if not domain:
        raise InvalidAddress(f"{shown} has no domain")
    result = f"{local}@{_ascii_domain(domain, shown)}"
    if len(result) > 254:  # RFC 5321 4.5.3.1.3: a path holds at most 256 with the <>
        raise InvalidAddress(f"{shown} is longer than 254 characters")
    return result


def same_mailbox(address: str | None, other: str | None) -> bool:
    """Whether two spellings name one mailbox: the same once `check_address` has written them
    (an international domain in its ASCII form), the domain in any case.

    A recipient is stored as check_address wrote it, the customer's email as they typed it:
    'user@xn--bcher-kva.example' is 'user@bücher.example', and keeps the customer's name.
    """
    if not isinstance(address, str) or not isinstance(other, str):
        return False
    try:
        local, _, domain = check_address(address).rpartition("@")
        other_local, _, other_domain = check_address(other).rpartition("@")
    except InvalidAddress:
        return False
    return local == other_local and domain.lower() == other_domain.lower()


def _check_local_part(local: str, shown: str) -> None:
    if not local:
        raise InvalidAddress(f"{shown} has nothing before the @")
    if not local.isascii():
        raise InvalidAddress(f"{shown} has non-ASCII characters before the @, "
                             "which most mail servers cannot deliver to")
    bad = _NOT_ATEXT_RE.search(local)
    if bad:
        raise InvalidAddress(f"{shown} contains {_describe(bad.group())} before the @")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidAddress(f"{shown} has a misplaced dot before the @")
    if len(local) > 64:  # RFC 5321 4.5.3.1.1
        raise InvalidAddress(f"{shown} has more than 64 characters before the @")


def _ascii_domain(domain: str, shown: str) -> str:
    """The domain in ASCII (IDNA) form, or InvalidAddress saying what is wrong with it."""
    if not domain.isascii():
        domain = _idna(domain, shown)
    labels = domain.split(".")
    if len(labels) < 2 and domain.lower() != "localhost":
        raise InvalidAddress(f"{shown} has no dot in its domain")
    if not all(labels):
        raise InvalidAddress(f"{shown} has an empty part in its domain")
    for label in labels:
        if not _LABEL_RE.match(label):
            raise InvalidAddress(f"{shown} has {label!r} in its domain, "
                                 "which is not a valid domain name part")
    if labels[-1].isdigit():
        raise InvalidAddress(f"{shown} ends in a number, not a domain name")
    if len(domain) > 253:
        raise InvalidAddress(f"{shown} has a domain longer than 253 characters")
    return domain


def _idna(domain: str, shown: str) -> str:
    if _IDNA_DEVIATIONS.intersection(domain):
        raise InvalidAddress(f"{shown} has a domain with a letter (such as 'ß') that "
                             "mail systems disagree about")
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidAddress(f"{shown} has a domain that is not a valid "
                             "international domain name") from None


def _describe(ch: str) -> str:
    if ch in _FORBIDDEN_WORDS:
        return _FORBIDDEN_WORDS[ch]
    if ch.isspace():
        return f"whitespace ({ch!r})"
    return f"the character {ch!r}"


def _show(value: str) -> str:
    """The value for an error message: quoted, escaped, and never a screenful."""
    return repr(value if len(value) <= 80 else value[:80] + "...")


def _clean(value: str) -> str:
    """Controls and line breaks become a space, runs of spaces one space, ends trimmed."""
    return _UNSAFE_RUN_RE.sub(" ", value).strip(" ")
