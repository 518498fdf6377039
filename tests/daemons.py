"""Run notifier daemons as real subprocesses, the way ops run them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from notifier.config.settings import Settings


def start_daemon(
    settings: Settings,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = ("run",),
    stdout: int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """`notifier run` in its own process; its log goes to a file (a pipe could fill and block it)."""
    environment = {
        **os.environ,
        "NOTIFIER_DATABASE_URL": settings.database_url.reveal(),
        "NOTIFIER_SMTP_URL": settings.smtp_url.reveal(),
        "NOTIFIER_RULES": str(settings.rules),
        "NOTIFIER_TEMPLATES": str(settings.templates),
        "NOTIFIER_POLL_INTERVAL": "1s",
        **(env or {}),
    }
    with log.open("ab") as stderr:  # the child keeps its own copy of the file
        return subprocess.Popen(
            [sys.executable, "-m", "notifier", *args],
            env=environment,
            stdout=stdout,
            stderr=stderr,
        )


def wait_for(condition: Callable[[], bool], limit: float = 60.0, what: str = "the daemons") -> None:
    """Poll a condition about another process, with a bound (this waits for work, not for time)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
