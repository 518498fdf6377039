"""Who may use the template editor of `notifier web`, and where it may listen.

- **Users** live in a file of their own (`NOTIFIER_EDITOR_USERS`, default `editors.passwd`), one
  `name:scrypt$n$r$p$salt$hash` a line, written by `notifier web --add-user NAME`. Passwords are
  hashed with scrypt (hashlib, RFC 7914) and a random salt; the file is written 0600.
- **Sessions** are a cookie signed with HMAC-SHA256 (key derived from NOTIFIER_SECRET_KEY, or a
  random one per process without it, which only means signing in again after a restart). It holds
  the user, a CSRF token and the time it was made; it expires after SESSION_FOR, and ends when the
  user's password changes or the user is removed from the file.
- **CSRF**: every form post carries the session's token; a post without it, or from another site
  (Sec-Fetch-Site, Origin), is refused. The cookie is SameSite=Strict and HttpOnly.
- **Public addresses**: the editor refuses to start on a non-loopback address unless TLS is served
  (`NOTIFIER_WEB_TLS_CERT`/`_KEY`) or a reverse proxy in front terminates it (`NOTIFIER_WEB_PROXY_TLS`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from notifier.config.settings import Settings
from notifier.errors import ConfigError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MB of memory a guess: OWASP's minimum for scrypt
SESSION_FOR = 12 * 3600  # seconds: a working day
COOKIE = "notifier_editor"
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_FAILURES, FAILURE_WINDOW = 5, 15 * 60  # then that name waits out the window


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encoded[0]}${encoded[1]}"


def check_password(stored: str, password: str) -> bool:
    """True if `password` gives `stored`; False for a wrong password or a malformed entry."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=256 * 1024 * 1024,
        )  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


_DUMMY = hash_password(secrets.token_urlsafe(12))  # checked for unknown names: the same time taken


def read_users(path: Path) -> dict[str, str]:
    """name -> stored hash; {} when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the editor's users file: {exc.strerror}") from exc
    users = {}
    for line in text.splitlines():
        name, _, stored = line.strip().partition(":")
        if name and stored and not name.startswith("#"):
            users[name] = stored
    return users


def add_user(path: Path, name: str, password: str) -> bool:
    """Add `name` or change its password; True if the name is new. The file is kept 0600."""
    if not USER_NAME.fullmatch(name):
        raise ConfigError(f"{name!r} cannot be a user name: use letters, digits and . _ @ - (at most 64)")
    if len(password) < 10:
        raise ConfigError("the password is too short: use at least 10 characters")
    users = read_users(path)
    new = name not in users
    users[name] = hash_password(password)
    lines = "".join(f"{user}:{stored}\n" for user, stored in users.items())
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(f"# template editor users (name:scrypt hash): notifier web --add-user NAME\n{lines}")
    os.replace(temporary, path)
    return new


@dataclass(frozen=True, slots=True)
class Session:
    user: str | None  # None: not signed in yet (the login form still needs a CSRF token)
    csrf: str
    issued: int
    password: str = ""  # a few characters of the password hash's digest: a new password ends the session


class Sessions:
    """Signed session cookies; the users file read again when it changes."""

    def __init__(self, users_file: Path, secret: str | None) -> None:
        self.users_file = users_file
        seed = secret.encode("utf-8") if secret else secrets.token_bytes(32)
        self._key = hmac.new(seed, b"notifier template editor session", hashlib.sha256).digest()
        self._users: tuple[tuple[int, int, int], dict[str, str]] = ((0, 0, 0), {})
        self._failures: dict[str, list[float]] = {}

    def users(self) -> dict[str, str]:
        try:
            found = self.users_file.stat()
        except OSError:
            return {}
        changed = (found.st_ino, found.st_mtime_ns, found.st_size)  # add_user replaces the file
        if changed != self._users[0]:
            self._users = (changed, read_users(self.users_file))
        return self._users[1]

    def new(self, user: str | None = None) -> Session:
        stored = self.users().get(user, "") if user else ""
        return Session(user, secrets.token_urlsafe(24), int(time.time()), _tag(stored) if user else "")

    def dump(self, session: Session) -> str:
        data = {"u": session.user, "c": session.csrf, "t": session.issued, "p": session.password}
        payload = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def load(self, cookie: str | None) -> Session | None:
        """The session in a cookie, or None if it is missing, forged, expired or its user is gone."""
        payload, _, signature = (cookie or "").partition(".")
        if not payload or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(data["u"], str(data["c"]), int(data["t"]), str(data.get("p", "")))
        except (ValueError, KeyError, TypeError):
            return None
        if not 0 <= time.time() - session.issued <= SESSION_FOR:
            return None
        if session.user is not None:
            stored = self.users().get(session.user)
            if stored is None or not hmac.compare_digest(_tag(stored).encode(), session.password.encode()):
                return None
        return session

    def sign_in(self, name: str, password: str) -> str | None:
        """None if the name and password are right, else why not, in words."""
        now = time.time()
        recent = [t for t in self._failures.get(name, []) if now - t < FAILURE_WINDOW]
        if len(recent) >= MAX_FAILURES:
            return "Too many wrong passwords for this name: wait 15 minutes, then try again."
        stored = self.users().get(name)
        if check_password(stored or _DUMMY, password) and stored is not None:
            self._failures.pop(name, None)
            return None
        self._failures[name] = [*recent, now][-MAX_FAILURES:]
        return "That name and password do not match. Try again, or ask for a new password."

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()


def _tag(stored: str) -> str:
    return hashlib.sha256(stored.encode()).hexdigest()[:16]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def listener_refusal(host: str, *, tls: bool, proxy_tls: bool) -> str | None:
    """Why the editor may not listen on `host`, or None: passwords and sessions must not cross a
    network in clear text, so a public address needs TLS here or in front."""
    if is_loopback(host) or tls or proxy_tls:
        return None
    return (
        f"the template editor will not listen on {host} without TLS: passwords would cross the network "
        "in clear text. Set NOTIFIER_WEB_TLS_CERT and NOTIFIER_WEB_TLS_KEY, or put it behind an HTTPS "
        "reverse proxy and set NOTIFIER_WEB_PROXY_TLS=true, or listen on 127.0.0.1."
    )


def start_refusal(settings: Settings, host: str) -> str | None:
    """Why `notifier web` may not start with the editor on, or None."""
    if (settings.web_tls_cert is None) != (settings.web_tls_key is None):
        return "NOTIFIER_WEB_TLS_CERT and NOTIFIER_WEB_TLS_KEY go together: set both, or neither."
    tls = settings.web_tls_cert is not None
    if (why := listener_refusal(host, tls=tls, proxy_tls=settings.web_proxy_tls)) is not None:
        return why
    if not read_users(settings.editor_users):
        return (
            f"nobody can sign in to the template editor: {settings.editor_users} has no users. "
            "Add one with: notifier web --add-user NAME"
        )
    return None
