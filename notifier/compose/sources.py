"""The template sources a renderer has read, kept as read: what was checked is what renders.

Jinja compiles a file when it is first rendered. The loader keeps the source of every file it
hands to Jinja, so inlining.py analyses what was compiled, not a later edit of the file; and
without auto_reload (the daemon, whose files are checked when they are loaded) it hands Jinja
the kept source again rather than reading the file anew. `digest` names every source and every
folder listing a renderer holds: a sending process that did not check the files itself
(notifier.run.workers) reads them all at once and renders them only if their digest is the
one of the files the main process checked (config/validate.py `load_accepted`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

import jinja2


class KeptLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader that keeps what it read; `pinned`: and serves that from then on."""

    def __init__(self, root: str, *, pinned: bool) -> None:
        super().__init__(root)
        self.pinned = pinned
        self.sources: dict[str, str] = {}
        self._filenames: dict[str, str] = {}

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if self.pinned and template in self.sources:
            return self.sources[template], self._filenames[template], _unchanged
        source, filename, uptodate = super().get_source(environment, template)
        self.sources[template] = source
        self._filenames[template] = filename
        return source, filename, uptodate


def _unchanged() -> bool:
    return True


def sources_digest(sources: Mapping[str, str], listings: Mapping[str, frozenset[str]]) -> str:
    """One sha256 of the sources by name and the files each template folder was listed with."""
    digest = hashlib.sha256()
    for name in sorted(sources):
        text = hashlib.sha256(sources[name].encode("utf-8", "surrogatepass")).hexdigest()
        digest.update(f"{name}\0{text}\n".encode("utf-8", "surrogatepass"))
    for template in sorted(listings):
        files = "/".join(sorted(listings[template]))
        digest.update(f"{template}/\0{files}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
