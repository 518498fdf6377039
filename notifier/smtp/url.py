"""Where and how to hand mail over: `SmtpConfig`, read from NOTIFIER_SMTP_URL.

Pure by import (no SMTP library): settings, `status` and the tests build one without
opening anything. A URL that cannot work is refused here with a ConfigError that says why.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from notifier.core.timing import parse_duration
from notifier.errors import ConfigError

__all__ = ["SmtpConfig"]

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_QUERY_KEYS = ("starttls", "verify", "timeout")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpConfig:
    """Where and how to hand mail over; usually built from NOTIFIER_SMTP_URL."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None  # never printed: see __repr__ and redacted_url()
    implicit_tls: bool = False  # smtps://
    starttls: bool = False  # ?starttls=true
    timeout: float = 30.0
    connections: int = 4  # how many SMTP connections to keep open and use at once
    validate_certs: bool = True  # ?verify=false disables, for self-signed test relays

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("the SMTP URL names no host")
        if not 0 < self.port < 65536:
            raise ConfigError(f"SMTP port {self.port} is not between 1 and 65535")
        if self.implicit_tls and self.starttls:
            raise ConfigError("smtps:// is TLS from the start; starttls=true does not apply to it")
        if not self.timeout > 0:
            raise ConfigError(f"SMTP timeout must be more than 0 seconds, not {self.timeout}")
        if self.connections < 1:
            raise ConfigError(f"SMTP connections must be at least 1, not {self.connections}")

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            secret = item.name == "password" and value is not None
            shown.append(f"{item.name}={'<secret>' if secret else repr(value)}")
        return f"SmtpConfig({', '.join(shown)})"

    @property
    def address(self) -> str:
        """'mail.example:587', for messages about this server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, *, connections: int = 4, timeout: float = 30.0) -> SmtpConfig:
        """smtp://host[:port] (port 25), smtp://user:pass@host:587?starttls=true, smtps://host[:465].

        User and password are percent-decoded. Query keys: starttls, verify (true/false)
        and timeout (seconds, or a duration like 10s); a timeout in the URL wins over
        the `timeout` argument. Anything else is refused with a ConfigError (a
        ValueError) that says why.
        """
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ConfigError(
                f"SMTP URL must start with smtp:// or smtps://, not {parts.scheme or 'nothing'!r}"
            )
        if parts.path not in ("", "/") or parts.fragment:
            raise ConfigError("SMTP URL must not have a path or #fragment after the host")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError("SMTP URL has a port that is not a number from 1 to 65535") from None
        options = _query_options(parts.query)
        return cls(
            host=parts.hostname or "",
            port=port if port is not None else _DEFAULT_PORTS[scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            implicit_tls=scheme == "smtps",
            starttls=_flag(options, "starttls", default=False),
            validate_certs=_flag(options, "verify", default=True),
            timeout=_seconds(options["timeout"]) if "timeout" in options else timeout,
            connections=connections,
        )

    def redacted_url(self) -> str:
        """The URL with the password shown as '***', for logs and `status`."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        login = ""
        if self.username is not None:
            login = quote(self.username, safe="")
            login += ":***@" if self.password is not None else "@"
        query = []
        if self.starttls:
            query.append("starttls=true")
        if not self.validate_certs:
            query.append("verify=false")
        if self.timeout != 30.0:
            query.append(f"timeout={self.timeout:g}")
        return f"{scheme}://{login}{self.address}" + (f"?{'&'.join(query)}" if query else "")


def _query_options(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError(f"SMTP URL options {query!r} are not key=value pairs") from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key not in _QUERY_KEYS:
            raise ConfigError(f"SMTP URL option {key!r} is not known (known: {', '.join(_QUERY_KEYS)})")
        if key in options:
            raise ConfigError(f"SMTP URL option {key!r} is given twice")
        options[key] = value
    return options


def _flag(options: dict[str, str], key: str, *, default: bool) -> bool:
    if key not in options:
        return default
    value = options[key].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"SMTP URL option {key}={options[key]!r} must be true or false")


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        raise ConfigError(
            f"SMTP URL option timeout={text!r} is not a number of seconds or a duration like 10s"
        ) from None

