"""Signed links in emails: one-click unsubscribe and "not solved".

A token is the payload and an HMAC-SHA256 of it under NOTIFIER_SECRET_KEY, both base64url.
The purpose is part of what is signed, so an unsubscribe token cannot be used as a
"not solved" token, and the address is part of it, so it cannot unsubscribe anyone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote


class InvalidToken(ValueError):
    """The link is not one notifier made (forged, altered or for another purpose)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose.encode() + b"\x00" + payload, hashlib.sha256).digest()


def sign(secret: str, purpose: str, value: str) -> str:
    payload = value.encode("utf-8")
    return f"{_b64(payload)}.{_b64(_mac(secret, purpose, payload))}"


def verify(secret: str, purpose: str, token: str) -> str:
    """The signed value, or InvalidToken."""
    try:
        payload_text, mac_text = token.split(".", 1)
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (ValueError, TypeError) as exc:
        raise InvalidToken("the link is malformed") from exc
    if not hmac.compare_digest(mac, _mac(secret, purpose, payload)):
        raise InvalidToken("the link's signature does not match")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidToken("the link is malformed") from exc


def unsubscribe_url(public_url: str, secret: str, address: str) -> str:
    return f"{public_url.rstrip('/')}/unsubscribe/{quote(sign(secret, 'unsubscribe', address.lower()))}"


def not_solved_url(public_url: str, secret: str, case_id: int) -> str:
    return f"{public_url.rstrip('/')}/not-solved/{quote(sign(secret, 'not-solved', str(case_id)))}"
