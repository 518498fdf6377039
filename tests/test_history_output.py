"""`history` and `status` as customer service reads them, through the real `notifier` command
on the demo's database: the ids `retry --id` and `resend` need, the customer's local time beside
UTC, lines that fit the terminal, colours only on a terminal (and never with NO_COLOR), and
durations as people write them."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # any style: colour, bold, dim
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[0-9;]*m")  # a foreground colour


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    return {**env, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **extra}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The global options that point at a finished demo's database."""
    folder = tmp_path_factory.mktemp("demo")
    files = ["--rules", str(ROOT / "rules.yaml"), "--templates", str(ROOT / "templates")]
    ran = subprocess.run(
        [sys.executable, "-m", "notifier", *files, "demo", "--out", str(folder / "out")],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=folder,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ["--database-url", f"sqlite:///{folder / 'out' / 'demo.db'}", *files]


def notifier(*args: str, columns: int = 80, **env: str) -> str:
    """stdout of `notifier ARGS` written to a pipe (not a terminal)."""
    ran = subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        capture_output=True,
        text=True,
        env=_env(COLUMNS=str(columns), **env),
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def on_a_terminal(*args: str, columns: int = 80, **env: str) -> str:
    """stdout of `notifier ARGS` written to a pseudo-terminal, as a person at a keyboard sees it."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "notifier", *args],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=_env(COLUMNS=str(columns), **env),
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the command exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=120) == 0
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [60, 100])
def test_history_shows_ids_and_local_time_within_the_width(demo: list[str], columns: int) -> None:
    entries = json.loads(notifier(*demo, "history", "--order", "1044", "--json"))
    human = notifier(*demo, "history", "--order", "1044", columns=columns)
    widths = [cell_len(line) for line in human.splitlines()]
    assert max(widths) <= columns, human
    assert not ANSI.search(human), "no colours in a pipe"
    ids = [entry["id"] for entry in entries if entry["id"] is not None]
    assert ids, entries
    for notification in ids:
        assert re.search(rf"^#{notification}\s", human, re.MULTILINE), (notification, human)
    # Order 1044 is Ms Lin's, in Taipei: placed 01:24 UTC, 09:24 her time.
    flat = " ".join(human.split())
    assert "2026-02-09 01:24 UTC (09:24 Asia/Taipei)" in flat, human
    # The dispatch at 23:00 UTC was the next morning for her.
    assert "2026-02-09 23:00 UTC (2026-02-10 07:00 Asia/Taipei)" in flat, human
    sent = [entry["id"] for entry in entries if entry["state"] == "sent"]
    assert f"notifier resend {sent[-1]}" in flat, human


def test_history_has_colours_on_a_terminal_only_and_not_with_no_color(demo: list[str]) -> None:
    coloured = on_a_terminal(*demo, "history", "--order", "1042")
    assert COLOUR.search(coloured), coloured
    assert "#1" in ANSI.sub("", coloured)
    # NO_COLOR (no-color.org) takes the colours away; bold and dim may stay.
    plain = on_a_terminal(*demo, "history", "--order", "1042", NO_COLOR="1")
    assert not COLOUR.search(plain), plain
    assert max(cell_len(line) for line in ANSI.sub("", plain).splitlines()) <= 80, plain


def test_status_durations_read_like_people_write_them(demo: list[str]) -> None:
    shown = notifier(*demo, "status", columns=100)
    assert "poll_interval: 2s" in shown and "retry_for: 1d" in shown and "lease: 1m" in shown, shown
    assert not re.search(r"(?<!\d)\d:\d\d:\d\d", shown), shown  # not 0:00:02
    assert "oldest due message waiting: none" in shown
