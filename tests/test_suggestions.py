"""Help that helps: a near miss in rules.yaml is answered with the name that exists, YAML
errors read in plain words, every bad value of a key is reported, and `check`'s line for
each template says only what is true - all through `notifier check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from notifier.cli import app

ROOT = Path(__file__).resolve().parent.parent
HEAD = """\
version: 1
defaults:
  from: "Shop <care@shop.example>"
"""


def _check(tmp_path: Path, text: str, templates: Path = ROOT / "templates") -> tuple[int, str]:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["--rules", str(path), "--templates", str(templates), "check"],
        env={"NOTIFIER_SECRET_KEY": "k" * 32},  # the shipped rules have marketing mail
    )
    return result.exit_code, result.output


def _lines(output: str, tmp_path: Path) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    prefix = f"{tmp_path / 'rules.yaml'}:"
    for line in output.splitlines():
        line = line.strip()
        if line.startswith(prefix):
            number, _, message = line[len(prefix) :].partition(": ")
            found.setdefault(int(number), []).append(message)
    return found


RULE = "rules:\n  - name: a\n    on: order.placed\n    template: order_confirmation\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (HEAD + RULE + "    supersceded_by: [order.delivered]\n", 8, "did you mean 'superseded_by'?"),
        (HEAD + RULE.replace("order.placed", "order.deliverd"), 6, "did you mean 'order.delivered'?"),
        (
            HEAD + RULE + "    unless: [order.dispatchd]\n    after: 48h\n",
            8,
            "unknown event 'order.dispatchd'; did you mean 'order.dispatched'?",
        ),
        (
            HEAD + RULE.replace("order_confirmation", "order_delivred"),
            7,
            "template 'order_delivred' not found; did you mean 'order_delivered'?",
        ),
        (HEAD + "calendar:\n  timezone: Asia/Taipie\n" + RULE, 5, "did you mean 'Asia/Taipei'?"),
        (
            HEAD + "rules:\n  - name: roses\n    schedule: { cron: '0 10 20 1 *', timezone: Asia/Taipie }\n"
            "    audience: { ordered_within: 365d }\n    template: thank_you\n",
            6,
            "schedule timezone 'Asia/Taipie' is not an IANA timezone; did you mean 'Asia/Taipei'?",
        ),
        (
            HEAD + RULE + "    locale: zh-TV\n",
            8,
            "locale 'zh-TV' is not a template locale; did you mean 'zh-TW'?",
        ),
        (HEAD.replace("  from:", "  quite_hours: {}\n  from:") + RULE, 3, "did you mean 'quiet_hours'?"),
    ],
)
def test_a_near_miss_is_answered_with_the_name_that_exists(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    code, output = _check(tmp_path, text)
    assert code == 1, output
    assert any(words in message for message in _lines(output, tmp_path).get(line, [])), output


def test_nothing_close_suggests_nothing() -> None:
    from notifier.core.suggest import closest, closest_timezone

    assert closest("completely_unrelated", ["superseded_by", "hold_while"]) is None
    assert closest_timezone("Mars/Base") is None
    assert closest_timezone("taipei") == "Asia/Taipei"  # a city alone, any case


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("version: 1\nrules:\n\t- name: a\n", 3, "tabs are not allowed; indent with spaces"),
        (
            HEAD + "rules:\n  - name: a\n     on: order.placed\n",
            6,
            "check this line's indentation",
        ),
        (
            HEAD + "rules:\n  - name: a\n    on: order.placed\n   template: x\n",
            7,
            "indentation does not match the lines above",
        ),
        (
            'version: 1\ndefaults:\n  from: "Shop <care@shop.example>\nrules: []\n',
            3,
            "a quote opened on this line is never closed",
        ),
        (
            HEAD + "rules:\n  - name: a\n    unless: [order.dispatched\n    after: 48h\n",
            6,
            "the [ opened on this line is not closed with ]",
        ),
        (
            HEAD + "rules:\n  - name: a\n    on: order.placed\n    on: order.delivered\n",
            7,
            "'on' is written twice in the same mapping ('order.placed', then 'order.delivered'); keep one",
        ),
    ],
)
def test_yaml_errors_read_in_plain_words(tmp_path: Path, text: str, line: int, words: str) -> None:
    code, output = _check(tmp_path, text)
    assert code == 1, output
    messages = _lines(output, tmp_path).get(line, [])
    assert any(words in message for message in messages), output
    assert "cannot start any token" not in output and "<block end>" not in output


def test_every_bad_value_of_quiet_hours_is_reported(tmp_path: Path) -> None:
    text = HEAD + '  quiet_hours: { start: "21h", end: "8:00am" }\n' + RULE
    code, output = _check(tmp_path, text)
    assert code == 1
    messages = _lines(output, tmp_path)[4]
    assert any("quiet_hours.start: '21h'" in m for m in messages), output
    assert any("quiet_hours.end: '8:00am'" in m for m in messages), output


def test_a_team_template_in_one_locale_is_not_said_to_fall_back(tmp_path: Path) -> None:
    code, output = _check(tmp_path, (ROOT / "rules.yaml").read_text(encoding="utf-8"))
    assert code == 0, output
    [team] = [line for line in output.splitlines() if "case_overdue_team:" in line]
    assert team.strip() == "case_overdue_team: rendered en (its rules always send in en)"
    assert "falls back" not in output


def test_a_customer_template_missing_a_locale_says_who_gets_english(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    for part in (templates / "order_confirmation").glob("zh-TW.*"):
        part.unlink()
    code, output = _check(tmp_path, (ROOT / "rules.yaml").read_text(encoding="utf-8"), templates)
    assert code == 0, output
    [line] = [line for line in output.splitlines() if line.strip().startswith("order_confirmation:")]
    assert line.strip() == "order_confirmation: rendered en, zh-CN (no zh-TW version: those customers get en)"
