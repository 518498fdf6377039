"""TLS by default: the client's TLS context, STARTTLS whenever the server offers it, and
no password over a connection that is not encrypted unless the URL says so.

A relay that offers STARTTLS gets it even when the URL does not ask (`?starttls=false`
says never); its certificate is checked against the system's CAs, or the private CA of
`?cafile=PATH`, so a failed check stalls sending with words that say which option to use.
"""

from __future__ import annotations

import ssl

from aiosmtplib import SMTP

from notifier.smtp.url import SmtpConfig

__all__ = ["CleartextLogin", "client_context", "encrypted", "may_log_in", "wants_starttls"]


class CleartextLogin(Exception):
    """The password would go over a connection that is not encrypted: it is not sent."""

    def __init__(self, config: SmtpConfig, *, offered: bool) -> None:
        why = "the URL says starttls=false" if offered else "the server does not offer STARTTLS"
        super().__init__(
            f"not logging in to {config.address} as {config.username!r}: the connection is not "
            f"encrypted ({why}), so the password would travel in clear. Use a server that offers "
            "STARTTLS, or smtps://; if the network to it is private, add ?insecure_auth=true to "
            "NOTIFIER_SMTP_URL"
        )


def client_context(config: SmtpConfig) -> ssl.SSLContext:
    """The TLS context for every connection of one pool: made once, as loading the CAs
    costs more than a handshake. ssl.SSLError or OSError if `cafile` cannot be read."""
    if not config.validate_certs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    # With a cafile, that CA alone is trusted: a private relay's certificate, nothing else.
    return ssl.create_default_context(cafile=config.cafile)


def encrypted(smtp: SMTP) -> bool:
    """Whether this connection is TLS now (smtps://, or after STARTTLS)."""
    return smtp.get_transport_info("sslcontext") is not None


def wants_starttls(config: SmtpConfig, smtp: SMTP) -> bool:
    """Whether to upgrade this connection, after its first EHLO. With starttls=true a
    server that does not offer it fails the upgrade (and stalls sending), as asked."""
    if config.implicit_tls or encrypted(smtp) or config.starttls is False:
        return False
    return config.starttls is True or smtp.supports_extension("starttls")


def may_log_in(config: SmtpConfig, smtp: SMTP) -> None:
    """Raise CleartextLogin unless the password may go over this connection."""
    if encrypted(smtp) or config.insecure_auth:
        return
    raise CleartextLogin(config, offered=smtp.supports_extension("starttls"))
