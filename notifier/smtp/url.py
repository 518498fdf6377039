"""Where and how to hand mail over: `SmtpConfig`, read from NOTIFIER_SMTP_URL.

Pure by import (no SMTP library): settings, `status` and the tests build one without
opening anything. A URL that cannot work is refused here with a ConfigError that says why.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from dataclasses import dataclass, field, fields
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from notifier.core.timing import parse_duration
from notifier.errors import ConfigError

__all__ = ["SmtpConfig"]

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_QUERY_KEYS = ("starttls", "verify", "cafile", "insecure_auth", "timeout")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# What EHLO may carry: a domain name, or an address literal such as [192.0.2.1] (RFC 5321 4.1.3).
_EHLO_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f.:IPv]+\]")


@functools.cache
def machine_name() -> str:
    """This machine's fully qualified name, as socket.getfqdn() finds it (asked once: it
    can take a DNS lookup)."""
    return socket.getfqdn()


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpConfig:
    """Where and how to hand mail over; usually built from NOTIFIER_SMTP_URL."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None  # never printed: see __repr__ and redacted_url()
    implicit_tls: bool = False  # smtps://
    # None: upgrade whenever the server offers STARTTLS; True (?starttls=true): the server
    # must offer it; False (?starttls=false): never upgrade.
    starttls: bool | None = None
    timeout: float = 30.0
    connections: int = 4  # how many SMTP connections to keep open and use at once
    validate_certs: bool = True  # ?verify=false disables, for self-signed test relays
    cafile: str | None = None  # ?cafile=PATH: trust this CA (PEM) instead of the system's
    insecure_auth: bool = False  # ?insecure_auth=true: a password may go over plain text
    ehlo_name: str = field(default_factory=machine_name)  # NOTIFIER_SMTP_EHLO_NAME

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("the SMTP URL names no host")
        if not 0 < self.port < 65536:
            raise ConfigError(f"SMTP port {self.port} is not between 1 and 65535")
        if self.implicit_tls and self.starttls:
            raise ConfigError("smtps:// is TLS from the start; starttls=true does not apply to it")
        if self.cafile is not None and not os.path.isfile(self.cafile):
            raise ConfigError(
                f"SMTP URL option cafile={self.cafile!r}: no such file (a PEM file of CA certificates)"
            )
        if not _EHLO_NAME.fullmatch(self.ehlo_name):
            raise ConfigError(
                f"the EHLO name {self.ehlo_name!r} is not a host name like mail.example.com"
            )
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

    @property
    def ehlo_warning(self) -> str | None:
        """Words for the start-up log when the EHLO name is not fully qualified (no dot)."""
        if "." in self.ehlo_name or self.ehlo_name.startswith("["):
            return None
        return (
            f"the EHLO name {self.ehlo_name!r} is not a fully qualified domain name, and strict "
            "relays refuse it (504 5.5.2 need fully-qualified hostname); set NOTIFIER_SMTP_EHLO_NAME "
            "to this machine's name in DNS, such as mail.example.com"
        )

    @classmethod
    def from_url(
        cls, url: str, *, connections: int = 4, timeout: float = 30.0, ehlo_name: str | None = None
    ) -> SmtpConfig:
        """smtp://host[:port] (port 25), smtp://user:pass@host:587?starttls=true, smtps://host[:465].

        User and password are percent-decoded. Query keys: starttls (true: required,
        false: never; unset: whenever the server offers it), verify, insecure_auth
        (true/false), cafile (a path) and timeout (seconds, or a duration like 10s); a
        timeout in the URL wins over the `timeout` argument. `ehlo_name` None: the
        machine's fully qualified name. Anything else is refused with a ConfigError (a
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
            starttls=_flag(options, "starttls", default=None),
            validate_certs=bool(_flag(options, "verify", default=True)),
            cafile=options.get("cafile") or None,
            insecure_auth=bool(_flag(options, "insecure_auth", default=False)),
            timeout=_seconds(options["timeout"]) if "timeout" in options else timeout,
            connections=connections,
            ehlo_name=ehlo_name if ehlo_name is not None else machine_name(),
        )

    def redacted_url(self) -> str:
        """The URL with the password shown as '***', for logs and `status`."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        login = ""
        if self.username is not None:
            login = quote(self.username, safe="")
            login += ":***@" if self.password is not None else "@"
        query = []
        if self.starttls is not None and not self.implicit_tls:
            query.append(f"starttls={'true' if self.starttls else 'false'}")
        if not self.validate_certs:
            query.append("verify=false")
        if self.cafile is not None:
            query.append(f"cafile={quote(self.cafile)}")
        if self.insecure_auth:
            query.append("insecure_auth=true")
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


def _flag(options: dict[str, str], key: str, *, default: bool | None) -> bool | None:
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

