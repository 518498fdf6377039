"""Rendered parts -> the RFC 5322 bytes handed to SMTP.

Built by hand rather than with `email.message.EmailMessage`: the stdlib's header
machinery costs milliseconds per message, this costs microseconds, and the daemon must
send well over a thousand emails a second. The tests parse every shape of output back
with the stdlib parser to prove the bytes say exactly what we meant.

Every email is `multipart/alternative` (plain text first, HTML last, as RFC 2046 asks),
both parts UTF-8 in base64. Values that come from the database (names, subjects, header
values) can never add or break a header: control characters and line breaks become a
space, names are quoted or encoded-words, addresses must pass `check_address`. The bodies
lose the same characters (`_body`): a raw U+2028 or NUL in an HTML part is how a mail
filter tells a hand-made message from a careless one. `Auto-Submitted: auto-generated`
(RFC 3834) on every message keeps vacation responders from writing back to the From address.
The Date here is the render's; `handover.stamped` replaces it when the message goes.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache

from notifier.core.addresses import InvalidAddress, _ascii_domain, _clean, _show, check_address, parse_from

__all__ = [
    "Envelope",
    "InvalidAddress",
    "Rendered",
    "build_message",
    "check_address",
    "make_message_id",
    "parse_from",
]

_MAX_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
_HARD_LINE = 998  # RFC 5322 2.1.1: lines MUST be at most 998 characters
_EW_MAX = 75  # RFC 2047 2: an encoded-word is at most 75 characters
_EW_PREFIX = "=?utf-8?b?"
_EW_OVERHEAD = len(_EW_PREFIX) + len("?=")
_B64_LINE = 76  # RFC 2045 6.8: base64 lines are at most 76 characters

# A display name made only of atext and spaces can go out as plain atoms (RFC 5322 3.2.3).
_NOT_ATEXT_OR_SPACE_RE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]")
_QUOTED_SPECIAL_RE = re.compile(r'["\\]')


_MESSAGE_ID_RE = re.compile(r"<[!-;=?-~]{1,200}@[!-;=?-~]{1,200}>\Z")
_FIELD_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,59}\Z")
_OWN_FIELDS = frozenset({
    "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
    "content-transfer-encoding", "cc", "bcc", "sender", "reply-to", "auto-submitted",
})

# What a body never carries (as a header never does): C0 and C1 controls except tab and
# line feed, and DEL. CR goes too: the parts are LF text and a CR alone is read as a line
# break by some clients and not by others. The separators NEL (U+0085), U+2028 and U+2029
# are line breaks written another way, so they become one (first, in the text). The rest is
# done on the UTF-8 bytes, where bytes.translate and a search for one lead byte are ten times
# faster than a regular expression over the text (a continuation byte is never below 0x80
# and 0xC2 always starts a character, so nothing is cut in two).
_C0_DELETED = bytes([*range(0x09), *range(0x0B, 0x20), 0x7F])
_C1_RE = re.compile(b"\xc2[\x80-\x9f]")  # U+0080..U+009F in UTF-8
_SEPARATORS = ("\x85", "\u2028", "\u2029")

_TEXT_PART_HEAD = (b'Content-Type: text/plain; charset="utf-8"\r\n'
                   b"Content-Transfer-Encoding: base64\r\n\r\n")
_HTML_PART_HEAD = (b'Content-Type: text/html; charset="utf-8"\r\n'
                   b"Content-Transfer-Encoding: base64\r\n\r\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rendered:
    """What a template produced: the three parts of one email."""

    subject: str
    html: str
    text: str
    subject_lines: int = 1  # lines of text the subject template gave, before they were joined


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """Who a message is from and to, and its identity."""

    from_header: str  # 'Blossom & Co <care@blossom.example>', from rules.yaml
    to_name: str | None  # the customer's name as stored; may be None or empty
    to_address: str
    message_id: str  # '<...@domain>', angle brackets included
    date: datetime  # timezone-aware
    # Names are ours; values may carry database data and are cleaned like a subject.
    extra_headers: tuple[tuple[str, str], ...] = ()


# --- addresses ---------------------------------------------------------------------


# --- identity ----------------------------------------------------------------------


def make_message_id(key: str, domain: str, database: str = "") -> str:
    """A Message-ID that depends on the notification key, this database's random id and the
    sending domain only.

    Every retry of one notification carries the same id, so a receiving system that saw
    the first copy can tell the second is the same message; `database` (store.identity)
    keeps two databases that send the same keys (staging, a restored copy, a second shop
    on the domain) from giving different messages one id.
    """
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    local = f"{digest}.{database}" if database else digest
    return f"<{local}@{_ascii_domain(domain.strip(), _show(domain))}>"


def _boundary(message_id: str) -> str:
    # "=_" cannot occur in base64 text, so the boundary can never occur in a body; the
    # hash makes it deterministic per message (RFC 2046 5.1.1 allows "=" and "_").
    return "=_" + hashlib.sha256(message_id.encode("ascii")).hexdigest()[:24]


# --- the message -------------------------------------------------------------------


def build_message(rendered: Rendered, envelope: Envelope) -> bytes:
    """The whole message as CRLF-terminated bytes."""
    if not _MESSAGE_ID_RE.match(envelope.message_id):
        raise ValueError(f"{_show(envelope.message_id)} is not a Message-ID like '<id@domain>'")
    boundary = _boundary(envelope.message_id)
    head = _header_block(rendered.subject, envelope, boundary).encode("ascii")
    delimiter = b"\r\n--" + boundary.encode("ascii")
    return b"".join((
        head, delimiter[2:], b"\r\n", _TEXT_PART_HEAD, _base64_lines(_body(rendered.text)),
        delimiter, b"\r\n", _HTML_PART_HEAD, _base64_lines(_body(rendered.html)),
        delimiter, b"--\r\n",
    ))


def _header_block(subject: str, envelope: Envelope, boundary: str) -> str:
    lines = [
        _from_line(envelope.from_header),
        _mailbox_line("To", envelope.to_name or "", check_address(envelope.to_address)),
        _fold("Subject", _text_tokens(_clean(subject), _room("Subject"))),
        "Date: ", _date_value(envelope.date), "\r\n",
        "Message-ID: ", envelope.message_id, "\r\n",
        "MIME-Version: 1.0\r\n",
        'Content-Type: multipart/alternative; boundary="', boundary, '"\r\n',
        "Auto-Submitted: auto-generated\r\n",
    ]
    lines.extend(_extra_line(name, value) for name, value in envelope.extra_headers)
    lines.append("\r\n")
    return "".join(lines)


@lru_cache(maxsize=64)
def _from_line(from_header: str) -> str:
    # One From for almost every message: parse and encode it once.
    name, address = parse_from(from_header)
    return _mailbox_line("From", name, address)


def _mailbox_line(field: str, name: str, address: str) -> str:
    tokens = _phrase_tokens(_clean(name), _room(field))
    tokens.append(f"<{address}>" if tokens else address)
    return _fold(field, tokens)


def _date_value(date: datetime) -> str:
    offset = date.utcoffset()
    if offset is None:
        raise ValueError("the Date must be a timezone-aware datetime")
    # The text depends on the instant and the offset only; aware datetimes that are the
    # same instant compare (and hash) equal whatever their offset, hence the offset in the key.
    return _date_text(date, offset)


@lru_cache(maxsize=256)
def _date_text(date: datetime, offset: timedelta) -> str:
    # Messages built together share their Date (the batch's "now"): format it once.
    return format_datetime(date)


def _extra_line(name: str, value: str) -> str:
    if not _FIELD_NAME_RE.match(name) or name.lower() in _OWN_FIELDS:
        raise ValueError(f"{name!r} cannot be used as an extra header name")
    value = _clean(value)
    words = value.split(" ") if value else []
    # ASCII values (List-Unsubscribe's URLs) go out verbatim: encoding them would break
    # them. They may pass 78 characters; a word too long for any line is encoded instead.
    if value.isascii() and all(len(word) <= _HARD_LINE - len(name) - 2 for word in words):
        return _fold(name, words)
    return _fold(name, _encoded_words(value, _room(name)))


# --- header values -----------------------------------------------------------------


def _room(field: str) -> int:
    """Characters left on a header's first line after 'Field: '."""
    return _MAX_LINE - len(field) - 2


def _text_tokens(text: str, room: int) -> list[str]:
    """An unstructured value (Subject) as foldable words, or encoded-words when needed."""
    if not text:
        return []
    # "=?" could be read back as an encoded-word, so such text is encoded itself.
    if text.isascii() and "=?" not in text:
        words = text.split(" ")
        if max(map(len, words)) <= room:
            return words
    return _encoded_words(text, room)


def _phrase_tokens(name: str, room: int) -> list[str]:
    """A display name as atoms, one quoted string, or encoded-words (RFC 5322 3.2.5)."""
    if not name:
        return []
    if name.isascii() and "=?" not in name:
        if _NOT_ATEXT_OR_SPACE_RE.search(name):
            name = '"' + _QUOTED_SPECIAL_RE.sub(r"\\\g<0>", name) + '"'
        # Folding inside a quoted string is allowed and unfolds back to the one space.
        words = name.split(" ")
        if max(map(len, words)) <= room:
            return words
    return _encoded_words(name, room)


def _encoded_words(text: str, room: int) -> list[str]:
    """`text` as RFC 2047 base64 encoded-words, the first fitting in `room` characters.

    Whitespace between encoded-words is not part of the text (RFC 2047 6.2), so words
    are cut anywhere except inside a UTF-8 sequence: each must decode on its own.
    """
    data = text.encode("utf-8")
    words: list[str] = []
    start, size = 0, _ew_capacity(room)
    while start < len(data):
        end = start + size
        if end < len(data):
            while data[end] & 0xC0 == 0x80:  # a continuation byte: back up to the start
                end -= 1
        chunk = binascii.b2a_base64(data[start:end], newline=False).decode("ascii")
        words.append(f"{_EW_PREFIX}{chunk}?=")
        start, size = end, _EW_FULL_BYTES
    return words


def _ew_capacity(room: int) -> int:
    """UTF-8 bytes one encoded-word can carry in `room` characters (never below one character)."""
    return max((min(room, _EW_MAX) - _EW_OVERHEAD) // 4 * 3, 6)


_EW_FULL_BYTES = _ew_capacity(_MAX_LINE - 1)


def _fold(field: str, tokens: list[str]) -> str:
    """'Field: tokens' with a CRLF + space between tokens wherever a line would pass 78."""
    parts = [field, ":"]
    width = len(field) + 1
    for token in tokens:
        if width + 1 + len(token) > _MAX_LINE and width > len(field) + 1:
            parts.append("\r\n ")
            width = 1 + len(token)
        else:
            parts.append(" ")
            width += 1 + len(token)
        parts.append(token)
    parts.append("\r\n")
    return "".join(parts)


def _body(text: str) -> bytes:
    """`text` in UTF-8 without control characters (tab and line feed stay), separators as line
    feeds; a lone surrogate (which UTF-8 cannot carry) as "?"."""
    for separator in _SEPARATORS:  # looking for one character in a str is the fastest search
        if separator in text:
            text = text.replace(separator, "\n")
    data = text.encode("utf-8", "replace")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    data = data.translate(None, _C0_DELETED)
    if b"\xc2" in data and _C1_RE.search(data):
        data = _C1_RE.sub(b"", data)
    return data


def _base64_lines(data: bytes) -> bytes:
    """`data` in base64, 76-character CRLF lines; bytes kept exactly as given."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join([encoded[i : i + _B64_LINE] for i in range(0, len(encoded), _B64_LINE)])
