"""A user's mistake never shows a traceback: every command of the real `notifier` executable,
with the common wrong inputs, answers in words with a documented exit code.

The commands are listed from the Typer app, so a new command is covered without editing this
file; REQUIRED only gives a command what it needs to get past its own usage check."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import typer.main

from notifier.cli import app

ROOT = Path(__file__).resolve().parent.parent
EXIT_CODES = {1, 2, 75}  # README: invalid input, bad usage, a server that does not answer
# What a command needs beyond the global options to get as far as doing its work.
REQUIRED: dict[str, list[str]] = {
    "preview": ["order_confirmation"],
    "resend": ["1", "--yes"],
    "retry": ["--yes"],
    "run": ["--once"],
    "simulate": ["--rules", "rules.yaml"],
    "demo": ["--out", "demo-out"],
    "init": ["starter"],
    "position set": ["order", "0", "--dry-run"],
    "suppressions add": ["someone@example.com", "--reason", "asked by phone"],
    "suppressions remove": ["someone@example.com"],
    "suppressions import": ["no-such-list.txt"],
}
# Commands that serve until stopped are given a port that is taken, so that they answer.
SERVING = {"web", "bounces listen"}
# The common wrong inputs, as global options before the command.
MISTAKES: dict[str, list[str]] = {
    "malformed database URL": ["--database-url", "postgresql://user:pw@host:port/db"],
    "database that does not answer": ["--database-url", "postgresql://nobody@127.0.0.1:1/shop"],
    "missing rules file": ["--rules", "no-such-rules.yaml"],
    "bad duration in the environment": ["NOTIFIER_POLL_INTERVAL=48"],
}

pytestmark = pytest.mark.slow


def _commands() -> list[str]:
    """Every command, a group's as "group sub" (`bounces listen`, `position set`)."""
    found = []
    for name, command in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        found += [f"{name} {sub}" for sub in subcommands] if subcommands else [name]
    return sorted(found)


def _executable() -> str:
    found = Path(sys.executable).parent / "notifier"
    return str(found) if found.exists() else (shutil.which("notifier") or "notifier")


def _run(folder: Path, args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFIER_SECRET_KEY": "k" * 32, **(env or {})}
    environment.pop("NOTIFIER_DATABASE_URL", None)
    try:
        done = subprocess.run(
            [_executable(), *args],
            cwd=folder,
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        return -1, f"{exc.stdout or ''}{exc.stderr or ''}"
    return done.returncode, done.stdout + done.stderr


def _case(folder: Path, command: str, mistake: str, busy: int) -> tuple[str, int, str]:
    options = MISTAKES[mistake]
    env = dict(item.split("=", 1) for item in options if "=" in item and not item.startswith("-"))
    global_options = [item for item in options if item not in {f"{k}={v}" for k, v in env.items()}]
    where = folder / f"{command.replace(' ', '-')}-{mistake.replace(' ', '-')}"
    shutil.copytree(folder / "project", where)
    extra = ["--port", str(busy)] if command in SERVING else REQUIRED.get(command, [])
    code, output = _run(where, [*global_options, *command.split(), *extra], env)
    return f"notifier {' '.join(global_options)} {command} ({mistake})", code, output


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "rules.yaml", project / "rules.yaml")
    shutil.copytree(ROOT / "templates", project / "templates")
    return tmp_path


def test_every_command_answers_mistakes_in_words(folder: Path) -> None:
    cases = [(command, mistake) for command in _commands() for mistake in MISTAKES]
    with socket.socket() as taken, ThreadPoolExecutor(max_workers=3) as pool:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        results = list(pool.map(lambda case: _case(folder, *case, busy), cases))
    shown = [f"{what}: exit {code}\n{output}" for what, code, output in results if "Traceback" in output]
    assert not shown, "\n\n".join(shown)
    # Those that refused said so with a documented exit code, in a line or two.
    for what, code, output in results:
        if code not in (0, -1):
            assert code in EXIT_CODES, f"{what}: exit {code}\n{output}"
            assert 0 < len(output.strip().splitlines()) <= 4, f"{what}:\n{output}"


def test_preview_of_an_order_against_no_database_says_so_and_leaves_no_file(folder: Path) -> None:
    project = folder / "project"
    code, output = _run(project, ["preview", "order_confirmation", "--order", "1044"])
    assert code == 1 and "Traceback" not in output
    assert "there is no database at notifier.db" in output and "notifier init-db" in output
    assert not (project / "notifier.db").exists()


def test_preview_of_a_template_with_an_undefined_name_says_where(folder: Path) -> None:
    project = folder / "project"
    (project / "templates" / "order_confirmation" / "en.html").write_text(
        '{% extends "_layout.html" %}{% block body %}{{ order.nickname }}{% endblock %}', encoding="utf-8"
    )
    code, output = _run(project, ["preview", "order_confirmation"])
    assert code == 1 and "Traceback" not in output
    assert "order_confirmation/en.html" in output and "nickname" in output


def test_a_missing_config_file_and_a_taken_port_are_said_in_words(folder: Path) -> None:
    project = folder / "project"
    code, output = _run(project, ["--config", "no-such.toml", "check"])
    assert code == 1 and "no-such.toml: no such configuration file" in output and "Traceback" not in output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, output = _run(project, ["web", "--port", str(taken.getsockname()[1])])
    assert code == 1 and "cannot listen on 127.0.0.1" in output and "Traceback" not in output


def test_verbose_shows_the_traceback_for_a_bug_report(folder: Path) -> None:
    project = folder / "project"
    args = ["--database-url", "postgresql://nobody@127.0.0.1:1/shop", "status"]
    code, output = _run(project, args)
    assert code == 75 and "the database does not answer" in output and "Traceback" not in output
    code, output = _run(project, ["-v", *args])
    assert code == 75 and "Traceback" in output
