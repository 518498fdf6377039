"""Pytest fixtures for the real, fault-injecting SMTP test server.

tests/conftest.py imports these; a test module can also import them itself:

    from tests.conftest_smtp import smtp_server  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smtp_server import FaultySmtpServer


@pytest.fixture
def smtp_server() -> Iterator[FaultySmtpServer]:
    """A fresh FaultySmtpServer for this test, on a free port, stopped afterwards."""
    with FaultySmtpServer() as server:
        yield server
