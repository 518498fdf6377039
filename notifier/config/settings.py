"""Settings: environment variables, an optional notifier.toml, and command-line overrides.

Precedence, highest first: a command-line option, a `NOTIFIER_*` environment variable,
`notifier.toml` (in the working directory, or the file named by `--config`), the default.
Secrets are held as `Secret`, which never prints its value.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from notifier.core.timing import parse_duration
from notifier.errors import ConfigError


class Secret:
    """A string that shows as '<secret>' in logs, reprs and status output."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<secret>')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact_url(url: str) -> str:
    """The URL with any password replaced by '***' (for logs and `status`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything notifier can be configured with (README: Configuration)."""

    database_url: Secret = field(default_factory=lambda: Secret("sqlite:///notifier.db"))
    smtp_url: Secret = field(default_factory=lambda: Secret("smtp://localhost:25"))
    rules: Path = Path("rules.yaml")
    templates: Path = Path("templates")
    # The capture mapping (README: Capture): which changes in the shop's tables are which
    # events; no such file, no capture.
    capture: Path = Path("capture.yaml")
    poll_interval: timedelta = timedelta(seconds=2)
    retry_backoff: timedelta = timedelta(minutes=1)
    retry_for: timedelta = timedelta(hours=24)
    public_url: str = "http://127.0.0.1:8025"
    secret_key: Secret | None = None
    smtp_connections: int = 4
    smtp_rate: float | None = None  # messages per second; None: as fast as the server takes them
    smtp_timeout: timedelta = timedelta(seconds=30)
    smtp_ehlo_name: str | None = None  # the name said in EHLO; None: this machine's (socket.getfqdn)
    batch_size: int = 500
    workers: int = 1  # sending processes; more than 1 uses more cores (README: Performance)
    lease: timedelta = timedelta(seconds=60)
    gap_timeout: timedelta = timedelta(minutes=10)
    # DKIM signing (compose/signing.py): all three, or none to leave signing to the relay.
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    # The envelope sender's domain for bounce addresses (README: Deliverability); None: From.
    bounce_domain: str | None = None
    bounce_imap_url: Secret | None = None  # imaps://user:pass@host/INBOX, polled for reports
    # The template editor of `notifier web` (README: The web app): off unless turned on.
    editor: bool = False
    editor_users: Path = Path("editors.passwd")  # `notifier web --add-user NAME` writes it
    web_tls_cert: Path | None = None  # with web_tls_key: `notifier web` serves HTTPS itself
    web_tls_key: Path | None = None
    web_proxy_tls: bool = False  # a reverse proxy in front terminates TLS and sends X-Forwarded-Proto

    def describe(self) -> dict[str, str]:
        """Settings as strings, secrets masked: for `status` and start-up logs."""
        shown: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in ("database_url", "smtp_url") or (item.name == "bounce_imap_url" and value):
                shown[item.name] = redact_url(value.reveal())
            elif isinstance(value, Secret):
                shown[item.name] = "<secret>"
            elif value is None:
                shown[item.name] = "(not set)"
            else:
                shown[item.name] = str(value)
        return shown


_DURATIONS = {"poll_interval", "retry_backoff", "retry_for", "smtp_timeout", "lease", "gap_timeout"}
_SECRETS = {"database_url", "smtp_url", "secret_key", "bounce_imap_url"}
_PATHS = {"rules", "templates", "capture", "editor_users", "web_tls_cert", "web_tls_key", "dkim_key_file"}
_BOOLS = {"editor", "web_proxy_tls"}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
_INTS = {"smtp_connections", "batch_size", "workers"}
_RATES = {"smtp_rate"}
NAMES = tuple(item.name for item in fields(Settings))


def env_name(name: str) -> str:
    """'poll_interval' -> 'NOTIFIER_POLL_INTERVAL'."""
    return f"NOTIFIER_{name.upper()}"


def _convert(name: str, raw: Any, origin: str) -> Any:
    try:
        if name in _DURATIONS:
            return parse_duration(raw)
        if name == "database_url":
            return Secret(_database_url(str(raw)))
        if name in _SECRETS:
            return Secret(str(raw))
        if name in _PATHS:
            return Path(str(raw))
        if name in _BOOLS:
            if isinstance(raw, bool):
                return raw
            if str(raw).strip().lower() not in _TRUE | _FALSE:
                raise ValueError(f"{raw!r} is not on or off (write true or false)")
            return str(raw).strip().lower() in _TRUE
        if name in _RATES:
            rate = float(raw)
            if rate <= 0:
                raise ValueError(f"{raw!r} must be more than 0 messages per second")
            return rate
        if name == "bounce_domain":
            return _domain(str(raw))
        if name in _INTS:
            number = int(raw)
            if number < 1:
                raise ValueError(f"{raw!r} must be 1 or more")
            return number
        return str(raw)
    except ValueError as exc:
        raise ConfigError(f"{origin}: {exc}") from exc


def _domain(raw: str) -> str:
    domain = raw.strip().lower().rstrip(".")
    labels = domain.split(".")
    if len(labels) < 2 or not all(label and label.replace("-", "").isalnum() for label in labels):
        raise ValueError(f"{raw!r} is not a domain name (e.g. bounces.blossom.example)")
    return domain


DATABASE_URL_HINT = (
    "write sqlite:///path.db, postgresql://user:pass@host/db or mysql://user:pass@host/db (MariaDB or MySQL)"
)


def _database_url(text: str) -> str:
    """A database URL notifier can use, or ValueError saying what one looks like."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    hint = DATABASE_URL_HINT
    try:
        backend = make_url(text).get_backend_name()
    except (ArgumentError, ValueError):
        raise ValueError(f"{redact_url(text)!r} is not a database URL; {hint}") from None
    if backend not in ("sqlite", "postgresql", "postgres", "mysql", "mariadb"):
        raise ValueError(f"{backend!r} databases are not supported; {hint}")
    return text


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    table = data.get("notifier", data)
    unknown = sorted(set(table) - set(NAMES))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(NAMES)}")
    return {name: _convert(name, value, f"{path}: {name}") for name, value in table.items()}


def load_settings(
    overrides: dict[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build Settings from notifier.toml, then the environment, then `overrides`."""
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    toml_path = config_file or Path("notifier.toml")
    if config_file is not None and not config_file.exists():
        raise ConfigError(f"{config_file}: no such configuration file")
    if toml_path.exists():
        values.update(_from_toml(toml_path))
    for name in NAMES:
        raw = environ.get(env_name(name))
        if raw not in (None, ""):
            values[name] = _convert(name, raw, env_name(name))
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = (
                raw if not isinstance(raw, str) else _convert(name, raw, f"--{name.replace('_', '-')}")
            )
    return replace(Settings(), **values)
