"""`--help` through the real `notifier` command: no type noise after a flag, an example at the
end of every command's help, and `-v` a count (-v, -vv) as the help says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from notifier.cli import app

ROOT = Path(__file__).resolve().parent.parent
NOISE = re.compile(r"<(bool|str|int|path|list\[int\])>")


def notifier(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def _commands() -> list[str]:
    import typer.main

    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_the_top_level_help_shows_no_types_and_v_as_a_count() -> None:
    shown = notifier("--help")
    assert shown.returncode == 0, shown.stderr
    assert not NOISE.search(shown.stdout), shown.stdout
    [verbose] = [line for line in shown.stdout.splitlines() if "--verbose" in line]
    assert "-vv" in verbose and "default" not in verbose, verbose
    assert re.search(r"--database-url\s+URL", shown.stdout), shown.stdout


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_without_types_and_an_example(command: str) -> None:
    shown = notifier(command, "--help")
    assert shown.returncode == 0, shown.stderr
    assert not NOISE.search(shown.stdout), shown.stdout
    examples = [line.strip() for line in shown.stdout.splitlines() if line.strip().startswith("Example: ")]
    assert examples, f"no example in `notifier {command} --help`:\n{shown.stdout}"
    assert examples[0].startswith("Example: notifier ") and command in examples[0], examples


def test_the_examples_name_their_own_command() -> None:
    from notifier.cli import EXAMPLES

    for command, example in EXAMPLES.items():
        assert f" {command}" in example, (command, example)


def test_values_are_named_for_what_they_are() -> None:
    shown = notifier("history", "--help").stdout
    assert re.search(r"--customer\s+EMAIL", shown) and re.search(r"--order\s+ID", shown), shown
    assert re.search(r"--json\s+Machine-readable", shown), shown  # a flag: nothing between
    preview = notifier("preview", "--help").stdout
    assert "TEMPLATE" in preview and not NOISE.search(preview), preview


def test_v_counts_and_a_number_after_it_is_not_a_level(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'shop.db'}"
    made = notifier("--database-url", database, "init-db", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    for flags in (["-v"], ["-vv"], ["-v", "-v"]):
        ran = notifier(*flags, "--database-url", database, "status", "--json", cwd=tmp_path)
        assert ran.returncode == 0, (flags, ran.stderr)
    files = ["--rules", str(ROOT / "rules.yaml"), "--templates", str(ROOT / "templates")]
    debug = notifier("-vv", "--database-url", database, *files, "run", "--once", cwd=tmp_path)
    assert debug.returncode == 0 and "DEBUG" in debug.stderr, debug.stderr
    info = notifier("--database-url", database, *files, "run", "--once", cwd=tmp_path)
    assert info.returncode == 0 and "DEBUG" not in info.stderr, info.stderr
