"""`notifier init [DIR]`: a new deployment's rules.yaml, templates/ and a commented notifier.toml.

The rules and templates are the shipped ones (config/shipped.py); notifier.toml lists every
setting the loader reads (config/settings.py), commented out at its default, and a secret key
made for this deployment, so `check` passes there at once. Nothing is ever overwritten: if
any of the three exists, nothing is written and the caller is told which.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from notifier.config.settings import Secret, Settings
from notifier.config.shipped import shipped
from notifier.core.timing import format_duration

CONFIG_NAME = "notifier.toml"

# What each setting means, one line each (README: Configuration has the long form).
_MEANING = {
    "database_url": "sqlite:///path.db, postgresql://user:pass@host/db or mysql://user:pass@host/db",
    "smtp_url": "smtp://user:pass@host:587?starttls=true, or smtps://host:465",
    "rules": "the rules file, relative to the working directory",
    "templates": "the templates folder, relative to the working directory",
    "poll_interval": "how often the daemon looks for new events and due messages (500ms, 2s)",
    "retry_backoff": "the first wait after a transient SMTP failure; doubles up to 1h",
    "retry_for": "after failing this long, a message is given up as failed",
    "public_url": "the base of links in emails (unsubscribe, 'not solved')",
    "smtp_connections": "SMTP connections kept open and used at once",
    "smtp_rate": "at most this many messages a second (unset: as fast as the relay takes them)",
    "smtp_timeout": "how long to wait for the SMTP server",
    "batch_size": "events read, and messages claimed, per batch",
    "workers": "sending processes; one per core sends faster",
    "lease": "how long a claimed message is reserved for the daemon that claimed it",
    "gap_timeout": "how long a skipped event id is looked for before it is taken as rolled back",
    "capture": "the capture mapping: which changes in the shop's tables are which events (none: no capture)",
    "smtp_ehlo_name": "the name said in EHLO (unset: this machine's; strict relays want a full domain name)",
    "dkim_key_file": "DKIM: the private key (PEM); set all three DKIM settings, or none (the relay signs)",
    "dkim_selector": "DKIM: the selector published in DNS (<selector>._domainkey.<domain>)",
    "dkim_domain": "DKIM: the signing domain (d=)",
    "bounce_domain": "the envelope sender's domain for bounce addresses (unset: the From address)",
    "bounce_imap_url": "a mailbox polled for bounce reports: imaps://user:pass@host/INBOX (unset: none)",
    "editor": "the template editor of `notifier web`: off unless turned on",
    "editor_users": "the editor's users and password hashes (`notifier web --add-user NAME` writes it)",
    "web_tls_cert": "with web_tls_key: `notifier web` serves HTTPS itself (unset: HTTP)",
    "web_tls_key": "the private key for web_tls_cert",
    "web_proxy_tls": "a reverse proxy in front terminates TLS and sends X-Forwarded-Proto",
}
# Settings that are unset by default: an example value instead (commented out, like the rest).
_EXAMPLES = {
    "smtp_rate": "20",
    "smtp_ehlo_name": '"mail.example.com"',
    "dkim_key_file": '"dkim.pem"',
    "dkim_selector": '"mail"',
    "dkim_domain": '"example.com"',
    "bounce_domain": '"bounces.example.com"',
    "bounce_imap_url": '"imaps://user:pass@imap.example.com/INBOX"',
    "web_tls_cert": '"cert.pem"',
    "web_tls_key": '"key.pem"',
}


@dataclass(frozen=True, slots=True)
class Started:
    """What `start_deployment` wrote, or the files that stopped it."""

    written: tuple[Path, ...] = ()
    in_the_way: tuple[Path, ...] = ()


def start_deployment(folder: Path) -> Started:
    """Write the starter files into `folder` (made if missing), unless any of them exists."""
    targets = (folder / "rules.yaml", folder / "templates", folder / CONFIG_NAME)
    in_the_way = tuple(path for path in targets if path.exists() or path.is_symlink())
    if in_the_way:
        return Started(in_the_way=in_the_way)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shipped("rules.yaml"), targets[0])
    shutil.copytree(shipped("templates"), targets[1])
    # The file holds the secret key: readable by its owner only.
    descriptor = os.open(targets[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as config:
        config.write(config_text(secrets.token_hex(32)))
    return Started(written=targets)


def config_text(secret_key: str) -> str:
    """A notifier.toml with every setting at its default, commented out, and this secret key."""
    lines = [
        "# notifier's settings (README: Configuration). notifier reads notifier.toml from the",
        "# working directory, or the file named by --config. An environment variable",
        "# (NOTIFIER_DATABASE_URL, ...) or an option before the command wins over this file.",
        "# Durations are written 500ms, 30s, 15m, 48h, 3d.",
        "[notifier]",
        "",
        "# Signs the unsubscribe and 'not solved' links; marketing mail waits without it.",
        "# Made for this deployment: keep this file private, out of version control",
        "# (or delete the line and set NOTIFIER_SECRET_KEY instead).",
        f'secret_key = "{secret_key}"',
    ]
    for name, meaning in _MEANING.items():
        lines += ["", f"# {meaning}", f"# {name} = {_default(name)}"]
    return "\n".join(lines) + "\n"


def _default(name: str) -> str:
    """A setting's default as TOML, in the form the loader reads."""
    value = getattr(Settings(), name)
    if isinstance(value, Secret):
        value = value.reveal()
    if value is None:
        return _EXAMPLES[name]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return f'"{format_duration(value)}"'
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'
