"""What a template folder holds: its files and complete locales, read again only when it changed.

A message exists in a locale when both its subject and its HTML file do; rendering.py asks
here (one os.stat per render instead of listing the folder).
"""

from __future__ import annotations

import os
import re
import time as _time
from dataclasses import dataclass

from notifier.core.locale import LOCALES

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
LOCALE_FILE = re.compile(r"(?P<locale>[A-Za-z0-9-]+)\.(?P<part>subject\.txt|html|txt)")
# A template folder's listing is reused while the folder (same device, inode and mtime)
# has not changed. A file added within the filesystem's timestamp granularity of the
# listing can leave the folder's mtime as it was, so a listing taken less than
# _LISTING_SETTLE_NS after the folder's mtime is not reused; and in case a filesystem's
# folder mtimes cannot be trusted at all (a network share, a skewed clock), no listing is
# reused for longer than _LISTING_MAX_AGE seconds.
_LISTING_SETTLE_NS = 2_000_000_000
_LISTING_MAX_AGE = 5.0


@dataclass(frozen=True, slots=True)
class Listing:
    """One template folder's files as last read, and what it takes to trust them still."""

    files: frozenset[str]
    locales: tuple[str, ...]  # the complete ones, in complete_locales order
    identity: tuple[int, int, int]  # the folder's (st_dev, st_ino, st_mtime_ns) when read
    trusted: bool  # read long enough after the folder's last change (see _LISTING_SETTLE_NS)
    read_at: float  # time.monotonic()


NO_LISTING = Listing(frozenset(), (), (0, 0, 0), False, 0.0)


class Listings:
    """The listings of one templates folder; without auto_reload each folder is listed once."""

    def __init__(self, root: str, *, auto_reload: bool) -> None:
        self._root_text = root
        self._auto_reload = auto_reload
        self._listings: dict[str, Listing] = {}

    def kept(self) -> dict[str, frozenset[str]]:
        """The files of every folder listed and kept (without auto_reload: for good)."""
        return {template: listing.files for template, listing in self._listings.items()}

    def get(self, template: str) -> Listing:
        """The template folder's files, read again only when the folder has changed.

        One os.stat per call instead of listing the folder: a file added, removed or
        renamed changes the folder's mtime, so a new or deleted locale shows at the next
        render. (Edits to a file's content are Jinja's auto_reload business.) Without
        auto_reload a folder is listed once, like its files are read once: the daemon's
        check at (re)load lists them all, and a locale file added within a refused edit must
        not reach customers either.
        """
        if not valid_template_name(template):
            return NO_LISTING
        if not self._auto_reload and template in self._listings:
            return self._listings[template]
        folder = os.path.join(self._root_text, template)
        try:
            stat = os.stat(folder)
        except OSError:
            self._listings.pop(template, None)
            return NO_LISTING
        identity = (stat.st_dev, stat.st_ino, stat.st_mtime_ns)
        cached = self._listings.get(template)
        now = _time.monotonic()
        if (
            cached is not None
            and cached.trusted
            and cached.identity == identity
            and now - cached.read_at < _LISTING_MAX_AGE
        ):
            return cached
        read_at_ns = _time.time_ns()
        try:
            files = frozenset(entry.name for entry in os.scandir(folder))
        except OSError:
            self._listings.pop(template, None)
            return NO_LISTING
        listing = Listing(
            files=files,
            locales=tuple(complete_locales(files)),
            identity=identity,
            trusted=read_at_ns - stat.st_mtime_ns > _LISTING_SETTLE_NS,
            read_at=now,
        )
        self._listings[template] = listing
        return listing


def complete_locales(files: frozenset[str]) -> list[str]:
    found = {
        match["locale"]
        for name in files
        if (match := LOCALE_FILE.fullmatch(name)) and match["part"] == "html"
    }
    present = {code for code in found if f"{code}.subject.txt" in files}
    return [code for code in LOCALES if code in present] + sorted(present - set(LOCALES))


def valid_template_name(template: str) -> bool:
    return bool(NAME.fullmatch(template)) and not template.startswith("_") and ".." not in template
