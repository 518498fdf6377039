"""A file of addresses for `suppressions import`: one address per line, or CSV `address,reason`.

Every problem is found before anything is written, each with its line number, so a file with a
typo imports nothing rather than half of itself.
"""

from __future__ import annotations

import csv
from pathlib import Path

from notifier.core.addresses import InvalidAddress, check_address

__all__ = ["read_suppression_file"]

_HEADERS = {"address", "email", "e-mail"}


def read_suppression_file(path: Path, default_reason: str) -> tuple[list[tuple[str, str]], list[str]]:
    """((address, reason) for each usable line, problems as 'file:line: why')."""
    entries: list[tuple[str, str]] = []
    problems: list[str] = []
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    for number, row in enumerate(csv.reader(lines), start=1):
        cells = [cell.strip() for cell in row]
        if not cells or not cells[0] or cells[0].startswith("#"):
            continue
        if number == 1 and cells[0].lower() in _HEADERS:
            continue
        try:
            address = check_address(cells[0]).lower()
        except InvalidAddress as exc:
            problems.append(f"{path}:{number}: {exc}")
            continue
        reason = cells[1] if len(cells) > 1 and cells[1] else default_reason
        entries.append((address, reason))
    return entries, problems
