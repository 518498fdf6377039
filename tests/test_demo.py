"""`notifier demo`: the embedded default runs, in three languages, and saves what it sent."""

from __future__ import annotations

import email
from email.policy import default as default_policy
from pathlib import Path

from typer.testing import CliRunner

from notifier.cli import app


def test_demo_sends_three_emails_per_order_in_three_languages(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted((out / "mail").glob("*.eml"))
    subjects = [email.message_from_bytes(f.read_bytes(), policy=default_policy)["Subject"] for f in files]
    for order, words in (
        ("1042", ("confirmed", "on its way", "delivered")),
        ("1043", ("已确认", "已发货", "已送达")),
        ("1044", ("已確認", "已出貨", "已送達")),
    ):
        mine = [s for s in subjects if order in s]
        assert [any(w in s for s in mine) for w in words] == [True, True, True], (order, mine)
    assert any("1045" in s and "sorry" in s for s in subjects), "the late order got an apology"
    assert any("Case 501" in s and "solved" in s for s in subjects), "the follow-up went"
    assert f"{len(files)} emails caught" in result.output
    assert (out / "demo.db").exists()
