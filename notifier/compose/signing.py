"""DKIM signatures (RFC 6376), with dkimpy: optional, configured by three settings.

`NOTIFIER_DKIM_KEY_FILE` (a PEM RSA private key), `NOTIFIER_DKIM_SELECTOR` and
`NOTIFIER_DKIM_DOMAIN`: all three or none. The key is read and tried once, at start, so a
missing or unusable key stops the daemon with a sentence rather than failing every message.

Signed: the headers a receiver shows or acts on, List-Unsubscribe and List-Unsubscribe-Post
among them (RFC 8058 4 asks for both to be covered, or one-click is not offered). A header
named in `h=` but absent may not be added later, so a relay cannot give a transactional
message an unsubscribe link. relaxed/relaxed canonicalization survives relays that refold
headers. The signature covers the Date, so it is made after `handover.stamped`. dkimpy is
imported only when signing is configured: it takes a tenth of a second to import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from notifier.core.addresses import InvalidAddress, check_address
from notifier.errors import ConfigError

__all__ = ["SIGNED_HEADERS", "Signer", "load_signer"]

SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"auto-submitted", b"list-unsubscribe", b"list-unsubscribe-post",
)
_CANONICALIZE = (b"relaxed", b"relaxed")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SELECTOR_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")  # RFC 6376 3.1: a DNS name's labels
_MIN_BITS = 1024  # RFC 8301 3.2: verifiers must not accept fewer; 2048 is what to use
_NAMES = ("NOTIFIER_DKIM_KEY_FILE", "NOTIFIER_DKIM_SELECTOR", "NOTIFIER_DKIM_DOMAIN")


@dataclass(frozen=True, slots=True)
class Signer:
    """Signs with one key, for one selector and domain."""

    key: bytes  # the PEM, as read
    selector: bytes
    domain: bytes

    def sign(self, message: bytes) -> bytes:
        """`message` with a DKIM-Signature header in front."""
        import dkim

        header = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.key,
            canonicalize=_CANONICALIZE,
            include_headers=list(SIGNED_HEADERS),
            linesep=b"\r\n",
        )
        return header + message


def load_signer(key_file: Path | None, selector: str | None, domain: str | None) -> Signer | None:
    """The signer the three settings ask for (None: no DKIM), or ConfigError saying what to fix."""
    values = (key_file, selector, domain)
    if all(value is None for value in values):
        return None
    missing = [name for name, value in zip(_NAMES, values, strict=True) if value is None]
    if key_file is None or selector is None or domain is None:
        raise ConfigError(
            f"DKIM signing needs {', '.join(_NAMES)} together; {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set (or unset all three to send unsigned)"
        )
    signer = Signer(key=_read_key(key_file), selector=_selector(selector), domain=_domain(domain))
    _try(signer, key_file)
    return signer


def _read_key(path: Path) -> bytes:
    from dkim.crypto import UnparsableKeyError, parse_pem_private_key

    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"NOTIFIER_DKIM_KEY_FILE: cannot read {path}: {exc.strerror or exc}") from None
    try:
        bits = parse_pem_private_key(key)["modulus"].bit_length()
    except (UnparsableKeyError, KeyError, ValueError, TypeError, IndexError):
        raise ConfigError(
            f"NOTIFIER_DKIM_KEY_FILE: {path} is not an RSA private key in PEM form "
            "(make one with: openssl genrsa -out dkim.pem 2048)"
        ) from None
    if bits < _MIN_BITS:
        raise ConfigError(
            f"NOTIFIER_DKIM_KEY_FILE: {path} is a {bits}-bit key; receivers ignore signatures "
            f"with fewer than {_MIN_BITS} bits (use 2048)"
        )
    return key


def _selector(value: str) -> bytes:
    if not _SELECTOR_RE.match(value):
        raise ConfigError(
            f"NOTIFIER_DKIM_SELECTOR: {value!r} is not a selector (letters, digits and '-', "
            "parts joined by '.', as in the DNS name SELECTOR._domainkey.DOMAIN)"
        )
    return value.encode("ascii")


def _domain(value: str) -> bytes:
    try:
        return check_address(f"dkim@{value}").rpartition("@")[2].encode("ascii")
    except InvalidAddress:
        raise ConfigError(f"NOTIFIER_DKIM_DOMAIN: {value!r} is not a domain name") from None


def _try(signer: Signer, path: Path) -> None:
    """Sign a small message once, so a key dkimpy cannot use fails now rather than per message."""
    import dkim

    try:
        signer.sign(b"From: a@example.com\r\nSubject: key check\r\n\r\nkey check\r\n")
    except dkim.DKIMException as exc:
        raise ConfigError(f"NOTIFIER_DKIM_KEY_FILE: {path} cannot sign: {exc}") from None
